"""One training step of npnet against PyTorch CPU, measured in the same run.

Run by hand (never a test): ``.venv/bin/python benchmarks/npnet_speed.py [--repeats 30]``.

The step is forward, mean cross-entropy, backward and an optimizer update (SGD and
Adam) of a 784-512-512-10 ReLU MLP at batch 100 in float32. NumPy's BLAS and torch
get the same number of threads (``--threads``, default 2, the machine's cores), so
the ratio compares the engines, not the thread counts. The table gives the median
and the best of ``--repeats`` rounds of ``--inner`` steps after a warm-up (the best
is the steadier figure on a shared machine). The last line is JSON
``{"npnet_ms", "torch_ms", "ratio"}``: medians of the SGD step, ratio = npnet / torch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from benchmark_results import load_at_start, record
from threadpoolctl import threadpool_limits

from losslab import npnet

SIZES = (784, 512, 512, 10)
BATCH = 100
#: npnet's speed goal: a step at most this many times PyTorch's.
GOAL_RATIO = 1.5


def _timings_ms(steps, repeats: int, inner: int) -> list[tuple[float, float]]:
    """(median, best) ms per call of each step; rounds alternate between the steps so
    that a busy phase of a shared machine slows all of them alike."""
    for step in steps:
        for _ in range(5):
            step()
    times: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for step, timed in zip(steps, times, strict=True):
            start = time.perf_counter()
            for _ in range(inner):
                step()
            timed.append((time.perf_counter() - start) / inner)
    return [(1e3 * statistics.median(timed), 1e3 * min(timed)) for timed in times]


def _npnet_step(optimizer: str, x: np.ndarray, y: np.ndarray):
    net = npnet.MLP(SIZES, rng=0, dtype=np.float32)
    loss = npnet.get_loss("log")
    opt = npnet.get_optimizer(optimizer, lr=1e-3)

    def step():
        loss.forward(net.forward(x), y)
        # The data need no gradient: the first layer skips dx, as torch's autograd does.
        net.backward(loss.backward(), input_grad=False)
        opt.step(net.params, net.grads)

    return step


def _torch_step(optimizer: str, x: np.ndarray, y: np.ndarray):
    torch.manual_seed(0)
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:], strict=True):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers[:-1])
    make = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[optimizer]
    opt = make(net.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--inner", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    load = load_at_start()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, SIZES[0])).astype(np.float32)
    y = rng.integers(0, SIZES[-1], BATCH)

    rows = []
    with threadpool_limits(args.threads):
        for optimizer in ("sgd", "adam"):
            steps = [_npnet_step(optimizer, x, y), _torch_step(optimizer, x, y)]
            rows.append((optimizer, *_timings_ms(steps, args.repeats, args.inner)))

    print(f"784-512-512-10 MLP, batch {BATCH}, float32, {args.threads} threads; ms per step")
    print(f"{'optimizer':<10}{'statistic':<11}{'npnet':>10}{'torch':>10}{'ratio':>8}")
    for optimizer, np_t, torch_t in rows:
        for i, statistic in enumerate(("median", "best")):
            ratio = np_t[i] / torch_t[i]
            print(f"{optimizer:<10}{statistic:<11}{np_t[i]:>10.3f}{torch_t[i]:>10.3f}{ratio:>8.2f}")
    (np_ms, _), (torch_ms, _) = rows[0][1:]
    print(
        json.dumps(
            {
                "npnet_ms": round(np_ms, 4),
                "torch_ms": round(torch_ms, 4),
                "ratio": round(np_ms / torch_ms, 3),
            }
        )
    )
    record("npnet_speed", [
        {"title": "optimizer", "cell": "{optimizer}"},
        {"title": "npnet (ms per step, median)", "cell": "{npnet_ms}"},
        {"title": "PyTorch (ms per step, median)", "cell": "{torch_ms}"},
        {"title": "ratio", "cell": "{ratio}"}, {"title": "goal", "cell": "{goal}"}], [
        {"optimizer": {"sgd": "SGD", "adam": "Adam"}[optimizer], "npnet_ms": f"{np_t[0]:.1f}",
         "torch_ms": f"{torch_t[0]:.1f}", "ratio": f"{np_t[0] / torch_t[0]:.2f}",
         "goal": f"<= {GOAL_RATIO:g}"}
        for optimizer, np_t, torch_t in rows], load, threads=args.threads)


if __name__ == "__main__":
    main()
