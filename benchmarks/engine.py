"""Speed of the training engine (run by hand, never a test).

``.venv/bin/python benchmarks/engine.py [--toy-steps 300] [--mnist-steps 60] [--threads 2]``

Two figures, printed as the last stdout line in JSON:

* ``batched_speedup_vs_loop``: model-steps per second of :func:`losslab.train.train_many`
  training the 12 Janocha losses x 5 seeds (M = 60) on the Janocha toy MLP (2-200x5-4,
  ReLU, Adam, batch 50, checkerboard data), divided by that of the usual per-model PyTorch
  loop (``nn.Sequential``, ``DataLoader``, ``torch.optim.Adam``, the same losses, one model
  after another). The engine's time includes everything inside ``train_many`` (building the
  stack, one evaluation); goal >= 5.
* ``fraction_of_matmul_peak``: achieved training FLOP/s, counted as 6 x weights x batch per
  model-step (forward 2, backward 4), of the Janocha MNIST MLP (784-512x5-10, ReLU, dropout
  0.5, Adam, batch 100) trained by the engine, divided by the float32 FLOP/s of a 2048^3
  ``torch.mm`` measured in the same run; goal >= 0.6. Reported for M = 1 (one model, the
  stack path) and M = 12 (the 12 losses at once, one seed); the JSON figure is the larger.
  Data are synthetic (speed does not depend on the pixels).

The machine is shared: compare ratios from one run, not absolute numbers across runs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from losslab.losses import JANOCHA_LOSSES, get_loss
from losslab.models import mlp
from losslab.train import ModelSpec, TrainConfig, train_many

LOSSES = sorted(JANOCHA_LOSSES)


def matmul_peak(repeats: int = 7) -> float:
    """float32 FLOP/s of a 2048 x 2048 x 2048 ``torch.mm`` (best of ``repeats``)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * 2048**3 / best


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _toy_data(n: int = 800, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=gen) * 2 - 1
    cells = ((x + 1) * 4).floor().clamp(max=7).long()
    y = (cells[:, 0] + cells[:, 1]) % 4  # checkerboard, 8x8 squares, classes cyclic
    return {"x_train": x, "y_train": y}


def engine_toy(steps: int) -> float:
    """Model-steps/s of train_many on the 12 losses x 5 seeds toy grid."""
    data = _toy_data()
    specs = [ModelSpec(loss, seed) for loss in LOSSES for seed in range(5)]
    config = TrainConfig(
        lr=3e-5, batch_size=50, steps=steps, eval_every=steps, device="cpu", eval_train=False
    )
    seconds = _timed(
        lambda: train_many(lambda s: mlp(2, [200] * 5, 4, seed=s), specs, data, config)
    )
    return len(specs) * steps / seconds


def _plain_loop(net, loss_fn, opt, loader, steps: int) -> None:
    done = 0
    while done < steps:
        for xb, yb in loader:
            loss = loss_fn(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += 1
            if done == steps:
                return


def loop_toy(steps: int, models: int) -> float:
    """Model-steps/s of the plain per-model PyTorch loop on the same grid (``models`` of it)."""
    data = _toy_data()
    loader_data = TensorDataset(data["x_train"], data["y_train"])
    total = 0.0
    for k in range(models):
        loss_fn = get_loss(LOSSES[k % len(LOSSES)])
        torch.manual_seed(k)
        layers: list[nn.Module] = []
        width = 2
        for _ in range(5):
            layers += [nn.Linear(width, 200), nn.ReLU()]
            width = 200
        net = nn.Sequential(*layers, nn.Linear(200, 4))
        opt = torch.optim.Adam(net.parameters(), lr=3e-5)
        loader = DataLoader(loader_data, batch_size=50, shuffle=True, drop_last=True)
        start = time.perf_counter()
        _plain_loop(net, loss_fn, opt, loader, steps)
        total += time.perf_counter() - start
    return models * steps / total


def engine_mnist(steps: int, m: int) -> tuple[float, float]:
    """(model-steps/s, FLOP/s) of the engine on the Janocha MNIST MLP, M models at once."""
    gen = torch.Generator().manual_seed(0)
    data = {
        "x_train": torch.randn(6000, 784, generator=gen),
        "y_train": torch.randint(0, 10, (6000,), generator=gen),
    }
    specs = [ModelSpec(LOSSES[k % len(LOSSES)], 0) for k in range(m)]
    config = TrainConfig(
        lr=3e-5, batch_size=100, steps=steps, eval_every=steps, device="cpu", eval_train=False
    )

    def net(seed):
        return mlp(784, [512] * 5, 10, dropout=0.5, seed=seed)

    weights = sum(p.numel() for p in net(0).parameters() if p.dim() == 2)
    train_many(net, specs, data, TrainConfig(**{**config.to_dict(), "steps": 3}))  # warm-up
    seconds = _timed(lambda: train_many(net, specs, data, config))
    rate = m * steps / seconds
    return rate, 6 * weights * 100 * rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toy-steps", type=int, default=300)
    parser.add_argument("--loop-models", type=int, default=12)
    parser.add_argument("--mnist-steps", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    engine_rates, loop_rates, peaks, mnist = [], [], [], {1: [], 12: []}
    for _ in range(args.repeats):
        # Interleaved so that a noisy neighbour on the machine hits both sides alike.
        peaks.append(matmul_peak())
        engine_rates.append(engine_toy(args.toy_steps))
        loop_rates.append(loop_toy(args.toy_steps // 3, args.loop_models))
        for m in mnist:
            mnist[m].append(engine_mnist(args.mnist_steps, m))
    peak = max(peaks)
    engine_rate, loop_rate = statistics.median(engine_rates), statistics.median(loop_rates)
    print(f"matmul peak (2048^3 torch.mm, best): {peak / 1e9:.1f} GFLOP/s")
    print(f"toy grid 12 losses x 5 seeds, engine: {engine_rate:.0f} model-steps/s")
    print(f"toy grid, per-model PyTorch loop:     {loop_rate:.0f} model-steps/s")
    fractions = {}
    for m, runs in mnist.items():
        rate, flops = max(runs, key=lambda r: r[1])
        fractions[m] = flops / peak
        print(
            f"MNIST MLP 784-512x5-10 dropout 0.5, M = {m:2d}: {rate:.1f} model-steps/s, "
            f"{flops / 1e9:.1f} GFLOP/s = {fractions[m]:.2f} of peak"
        )
    print(
        json.dumps(
            {
                "batched_speedup_vs_loop": round(engine_rate / loop_rate, 2),
                "fraction_of_matmul_peak": round(max(fractions.values()), 3),
                "fraction_of_matmul_peak_m1": round(fractions[1], 3),
                "fraction_of_matmul_peak_m12": round(fractions[12], 3),
                "engine_model_steps_per_s": round(engine_rate, 1),
                "loop_model_steps_per_s": round(loop_rate, 1),
                "matmul_peak_gflops": round(peak / 1e9, 1),
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
