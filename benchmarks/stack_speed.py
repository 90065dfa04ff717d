"""Training-step speed of the model stack (fast MLP path, vmap path) against a per-model loop.

Run by hand (never a test)::

    .venv/bin/python benchmarks/stack_speed.py [--repeats 9] [--threads 2] [--no-adam]
        [--cases toy mnist_1 mnist_12 mnist1d_cnn]

Cases (the engine's speed goals are ``GOALS`` of ``benchmarks/engine.py``, their one place):

* ``toy``: the Janocha toy grid, M = 60 models (12 losses x 5 seeds), 2-200x5-4, batch 50;
  goal: the stack ``GOALS["batched_speedup_vs_loop"]`` times the model-steps/s of the
  per-model loop.
* ``mnist_1`` / ``mnist_12``: the Janocha MNIST net 784-512x5-10 with dropout 0.5, batch
  100, M = 1 and 12; goal: ``GOALS["fraction_of_matmul_peak"]`` of the float32 matmul peak.
* ``mnist1d_cnn``: M = 12 MNIST-1D CNNs, batch 100 (vmap path only), for information.

One step = forward, cross-entropy summed over the models, backward and (unless
``--no-adam``) one fused Adam step, then ``zero_grad``. The candidates of a case are timed
in turns (round robin), so that the load of a shared machine hits them alike; each line
gives the median and best step time, model-steps per second (from the median) and
GFLOP/s counted as 6 x weights x batch per model (forward 2, backward 4; convolutions
not counted), next to the peak of a 2048^3 ``torch.mm`` measured in the same run.
The last line is the whole report as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from losslab.models import mlp, mnist1d_cnn, stack_models


def _time_in_turns(steps: dict[str, Callable[[], None]], repeats: int, inner: int):
    """Median and best seconds per call of each step, the steps timed in turns."""
    for step in steps.values():
        step()
        step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            for _ in range(inner):
                step()
            times[name].append((time.perf_counter() - start) / inner)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def _matmul_peak(repeats: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    best = _time_in_turns({"mm": lambda: a @ b}, repeats, 3)["mm"][1]
    return 2 * 2048**3 / best / 1e9


def _case(name, build, sample, classes, n, m, paths, repeats, inner, adam, peak):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, *sample, generator=gen)
    y = torch.randint(classes, (n,), generator=gen)
    y_stack = y.repeat(m)
    models = [build(s) for s in range(m)]
    weights = sum(p.numel() for p in models[0].parameters() if p.dim() == 2)

    def optimizer(params):
        return torch.optim.Adam(params, lr=1e-5, fused=True) if adam else None

    def stack_step(path: str) -> Callable[[], None]:
        stack = stack_models(models, path=path, seeds=range(m))
        opt = optimizer(stack.parameters())

        def step() -> None:
            logits = stack(x)
            F.cross_entropy(logits.reshape(m * n, classes), y_stack, reduction="sum").div(
                n
            ).backward()
            if opt is not None:
                opt.step()
            stack.zero_grad()

        return step

    copies: list[nn.Module] = [build(s).train() for s in range(m)]
    opts = [optimizer(c.parameters()) for c in copies]

    def loop_step() -> None:
        for model, opt in zip(copies, opts, strict=True):
            F.cross_entropy(model(x), y).backward()
            if opt is not None:
                opt.step()
            model.zero_grad()

    steps = {path: stack_step(path) for path in paths}
    steps["loop"] = loop_step
    results = _time_in_turns(steps, repeats, inner)
    rows = {}
    loop_median = results["loop"][0]
    for path, (median, best) in results.items():
        gflops = 6 * weights * n * m / best / 1e9
        rows[path] = {
            "median_ms": round(median * 1e3, 3),
            "best_ms": round(best * 1e3, 3),
            "model_steps_per_s": round(m / median, 1),
            "speedup_vs_loop": round(loop_median / median, 2),
            "gflops_best": round(gflops, 1),
            "fraction_of_peak": round(gflops / peak, 2),
        }
        print(
            f"{name:<26} M={m:<3} {path:<5} median {median * 1e3:8.2f} ms  best "
            f"{best * 1e3:8.2f} ms  {m / median:8.1f} model-steps/s  "
            f"x{loop_median / median:5.2f} vs loop  {gflops:6.1f} GFLOP/s ({gflops / peak:.0%})"
        )
    return rows


# name: (label, model factory of a seed, sample shape, C, N, M, stack paths, steps per timing)
CASES = {
    "toy": (
        "toy 2-200x5-4, N=50",
        lambda s: mlp(2, [200] * 5, 4, seed=s),
        (2,), 4, 50, 60, ("mlp", "vmap"), 3,
    ),
    "mnist_1": (
        "mnist 784-512x5-10 drop.5",
        lambda s: mlp(784, [512] * 5, 10, dropout=0.5, seed=s),
        (784,), 10, 100, 1, ("mlp", "vmap"), 5,
    ),
    "mnist_12": (
        "mnist 784-512x5-10 drop.5",
        lambda s: mlp(784, [512] * 5, 10, dropout=0.5, seed=s),
        (784,), 10, 100, 12, ("mlp", "vmap"), 1,
    ),
    "mnist1d_cnn": (
        "mnist1d_cnn, N=100",
        lambda s: mnist1d_cnn(seed=s),
        (40,), 10, 100, 12, ("vmap",), 3,
    ),
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-adam", action="store_true", help="time forward+backward only")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    adam = not args.no_adam
    peak = _matmul_peak(args.repeats)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"mm 2048^3 peak {peak:.1f} GFLOP/s, Adam step included: {adam}"
    )
    report: dict[str, object] = {"matmul_peak_gflops": round(peak, 1), "adam": adam}
    for case in args.cases:
        label, build, sample, classes, n, m, paths, inner = CASES[case]
        report[case] = _case(
            label, build, sample, classes, n, m, paths, args.repeats, inner, adam, peak
        )
    print(json.dumps(report))


if __name__ == "__main__":
    main()
