"""Forward+backward speed of the model stack: fast MLP path vs vmap path vs a loop.

Run by hand (never a test): ``.venv/bin/python benchmarks/stack_speed.py [--repeats 7]``.
Shapes of the speed goals (MACHINE-NOTES.md): the Janocha toy grid (M = 60 models,
2-200x5-4, batch 50) and the Janocha MNIST net (M = 1 and 12, 784-512x5-10, dropout
0.5, batch 100). Each line reports the median and best time of one training step
(forward, cross-entropy summed over models, backward, and optionally a fused Adam step),
model-steps per second and achieved GFLOP/s counted as 6 x weights x batch per model
(forward 2, backward 4), next to the float32 matmul peak of a 2048^3 ``torch.mm``
measured in the same run. The machine is shared: compare ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from losslab.models import mlp, stack_models


def _time(step, repeats: int, inner: int) -> tuple[float, float]:
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            step()
        times.append((time.perf_counter() - start) / inner)
    return statistics.median(times), min(times)


def _matmul_peak(repeats: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    _, best = _time(lambda: a @ b, repeats, 3)
    return 2 * 2048**3 / best / 1e9


def _case(name, hidden, d, classes, n, m, dropout, repeats, inner, adam):
    gen = torch.Generator().manual_seed(0)
    models = [mlp(d, hidden, classes, dropout=dropout, seed=s) for s in range(m)]
    weights = sum(p.numel() for p in models[0].parameters() if p.dim() == 2)
    x = torch.randn(n, d, generator=gen)
    y = torch.randint(classes, (n,), generator=gen)
    results = {}

    def stack_step(stack, optimizer):
        def step():
            logits = stack(x)
            loss = F.cross_entropy(logits.reshape(m * n, classes), y.repeat(m), reduction="sum")
            (loss / n).backward()
            if optimizer is not None:
                optimizer.step()
            stack.zero_grad(set_to_none=False)

        return step

    for path in ("mlp", "vmap"):
        stack = stack_models(models, path=path, generator=torch.Generator().manual_seed(1))
        optimizer = torch.optim.Adam(stack.parameters(), lr=1e-5, fused=True) if adam else None
        results[path] = _time(stack_step(stack, optimizer), repeats, inner)

    copies = [mlp(d, hidden, classes, dropout=dropout, seed=s) for s in range(m)]
    optimizers = [
        torch.optim.Adam(c.parameters(), lr=1e-5, fused=True) if adam else None for c in copies
    ]

    def loop_step():
        for model, optimizer in zip(copies, optimizers):
            F.cross_entropy(model(x), y).backward()
            if optimizer is not None:
                optimizer.step()
            model.zero_grad(set_to_none=False)

    results["loop"] = _time(loop_step, repeats, inner)
    rows = {}
    for path, (median, best) in results.items():
        rows[path] = {
            "median_ms": round(median * 1e3, 3),
            "best_ms": round(best * 1e3, 3),
            "model_steps_per_s": round(m / median, 1),
            "gflops": round(6 * weights * n * m / best / 1e9, 1),
        }
        print(
            f"{name:<28} M={m:<3} {path:<5} median {median * 1e3:8.2f} ms  best "
            f"{best * 1e3:8.2f} ms  {m / median:9.1f} model-steps/s  "
            f"{rows[path]['gflops']:6.1f} GFLOP/s"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-adam", action="store_true", help="time forward+backward only")
    args = parser.parse_args()
    adam = not args.no_adam
    peak = _matmul_peak(args.repeats)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"mm 2048^3 peak {peak:.1f} GFLOP/s, adam step included: {adam}")
    report = {"matmul_peak_gflops": round(peak, 1), "adam": adam}
    report["toy_60"] = _case("toy 2-200x5-4, N=50", [200] * 5, 2, 4, 50, 60, 0.0,
                             args.repeats, 5, adam)
    for m in (1, 12):
        report[f"mnist_{m}"] = _case("mnist 784-512x5-10 drop.5", [512] * 5, 784, 10, 100, m,
                                     0.5, args.repeats, 5 if m == 1 else 1, adam)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
