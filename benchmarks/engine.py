"""Speed of the training engine (run by hand, never a test).

``.venv/bin/python benchmarks/engine.py [--toy-steps 300] [--mnist-steps 60] [--threads 2]``

Three figures, printed as the last stdout line in JSON:

* ``batched_speedup_vs_loop``: model-steps per second of :func:`losslab.train.train_many`
  training the 12 Janocha losses x 5 seeds (M = 60) on the Janocha toy MLP (2-200x5-4,
  ReLU, Adam, batch 50, checkerboard data), divided by that of the usual per-model PyTorch
  loop (``nn.Sequential``, ``DataLoader``, ``torch.optim.Adam``, the same losses, one model
  after another). The engine's time includes everything inside ``train_many`` (building the
  stack, one evaluation); goal: ``GOALS`` below.
* ``engine_over_torch_func``: the engine's model-steps per second on the same grid divided
  by those of what a PyTorch user would write instead of a per-model loop: the
  ``torch.func`` ensembling recipe (``stack_module_state`` + ``vmap(functional_call)`` +
  one fused Adam over the stacked parameters), every model on log loss (the recipe
  cannot mix losses in one call). Reported for the engine on the 12-loss grid and on
  the same all-log grid; goal: ``GOALS``.
* ``fraction_of_matmul_peak``: achieved training FLOP/s, counted as 6 x weights x batch per
  model-step (forward 2, backward 4), of the Janocha MNIST MLP (784-512x5-10, ReLU, dropout
  0.5, Adam, batch 100) trained by the engine, divided by the float32 FLOP/s of a 2048^3
  ``torch.mm`` measured in the same run; goal: ``GOALS``. Reported for M = 1 (one model, the
  stack path) and M = 12 (the 12 losses at once, one seed), each as the median over the
  repeats of (FLOP/s / the peak measured in the same repeat); the JSON figure is the
  larger. Data are synthetic (speed does not depend on the pixels).

The machine is shared: compare ratios from one run, not absolute numbers across runs.
The figures go to ``benchmarks/results/engine.json`` and the README's table
(:mod:`benchmark_results`).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
import torch.nn.functional as F
from benchmark_results import load_at_start, record
from torch import nn
from torch.func import functional_call, stack_module_state
from torch.utils.data import DataLoader, TensorDataset

from losslab.losses import JANOCHA_LOSSES, get_loss
from losslab.models import mlp
from losslab.train import ModelSpec, TrainConfig, train_many

#: The engine's speed goals: the one place they are stated (the README shows them from
#: benchmarks/results/engine.json, which this script writes).
GOALS = {"batched_speedup_vs_loop": 4.0, "engine_over_torch_func": 1.25,
         "fraction_of_matmul_peak": 0.6}

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


def engine_toy(steps: int, losses: list[str] = LOSSES) -> float:
    """Model-steps/s of train_many on the 12 losses x 5 seeds toy grid (or other losses)."""
    data = _toy_data()
    specs = [ModelSpec(loss, seed) for loss in losses for seed in range(5)]
    config = TrainConfig(
        lr=3e-5, batch_size=50, steps=steps, eval_every=steps, device="cpu", eval_train=False
    )
    seconds = _timed(
        lambda: train_many(lambda s: mlp(2, [200] * 5, 4, seed=s), specs, data, config)
    )
    return len(specs) * steps / seconds


def recipe_toy(steps: int, models: int = 60) -> float:
    """Model-steps/s of the torch.func ensembling recipe on the toy grid, all log loss.

    ``models`` MLPs (seeds 0..4 repeated, as the engine's grid), each reading its own
    seed's batch of 50 from a per-seed permutation, stacked with ``stack_module_state``,
    evaluated with ``vmap(functional_call)``, one fused Adam over the stacked parameters.
    Timed after building (the set-up is a one-off, as the engine's is included).
    """
    data = _toy_data()
    x, y = data["x_train"], data["y_train"]
    nets = [mlp(2, [200] * 5, 4, seed=k % 5) for k in range(models)]
    params, buffers = stack_module_state(nets)
    template = copy.deepcopy(nets[0]).to("meta")

    def one(p, b, xb):
        return functional_call(template, (p, b), (xb,))

    ensemble = torch.vmap(one, in_dims=(0, 0, 0))
    opt = torch.optim.Adam(params.values(), lr=3e-5, fused=True)
    gens = [torch.Generator().manual_seed(s) for s in range(5)]
    seed_of = torch.arange(models) % 5
    per_epoch = x.shape[0] // 50
    start = time.perf_counter()
    for step in range(steps):
        position = step % per_epoch
        if position == 0:
            perms = torch.stack([torch.randperm(x.shape[0], generator=g) for g in gens])
        index = perms[seed_of, position * 50 : (position + 1) * 50]  # (M, 50)
        logits = ensemble(params, buffers, x[index])
        # Sum over models of each model's mean loss: model m's gradient is its own.
        loss = F.cross_entropy(logits.reshape(-1, 4), y[index].reshape(-1)) * models
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return models * steps / (time.perf_counter() - start)


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
    load = load_at_start()

    engine_rates, log_rates, recipe_rates, loop_rates, peaks = [], [], [], [], []
    mnist: dict[int, list[tuple[float, float]]] = {1: [], 12: []}
    for _ in range(args.repeats):
        # Interleaved so that a noisy neighbour on the machine hits every side alike.
        peaks.append(matmul_peak())
        engine_rates.append(engine_toy(args.toy_steps))
        log_rates.append(engine_toy(args.toy_steps, ["log"] * len(LOSSES)))
        recipe_rates.append(recipe_toy(args.toy_steps))
        loop_rates.append(loop_toy(args.toy_steps // 3, args.loop_models))
        for m in mnist:
            rate, flops = engine_mnist(args.mnist_steps, m)
            mnist[m].append((rate, flops / peaks[-1]))
    peak = statistics.median(peaks)
    engine_rate, loop_rate = statistics.median(engine_rates), statistics.median(loop_rates)
    log_rate, recipe_rate = statistics.median(log_rates), statistics.median(recipe_rates)
    print(f"matmul peak (2048^3 torch.mm, median of repeats): {peak / 1e9:.1f} GFLOP/s")
    print(f"toy grid 12 losses x 5 seeds, engine:     {engine_rate:.0f} model-steps/s")
    print(f"toy grid all log loss x 5 seeds, engine:  {log_rate:.0f} model-steps/s")
    print(f"toy grid all log loss, torch.func recipe: {recipe_rate:.0f} model-steps/s")
    print(f"toy grid, per-model PyTorch loop:         {loop_rate:.0f} model-steps/s")
    print(
        f"engine / recipe: {engine_rate / recipe_rate:.2f} (12 losses), "
        f"{log_rate / recipe_rate:.2f} (all log); engine / loop: {engine_rate / loop_rate:.2f}"
    )
    fractions, spreads = {}, {}
    for m, runs in mnist.items():
        fractions[m] = statistics.median(f for _, f in runs)
        rate = statistics.median(r for r, _ in runs)
        spread = ", ".join(f"{f:.2f}" for _, f in runs)
        spreads[m] = spread
        print(
            f"MNIST MLP 784-512x5-10 dropout 0.5, M = {m:2d}: {rate:.1f} model-steps/s, "
            f"{fractions[m]:.2f} of peak (median; repeats: {spread})"
        )
    print(
        json.dumps(
            {
                "batched_speedup_vs_loop": round(engine_rate / loop_rate, 2),
                "engine_over_torch_func": round(engine_rate / recipe_rate, 2),
                "engine_all_log_over_torch_func": round(log_rate / recipe_rate, 2),
                "fraction_of_matmul_peak": round(max(fractions.values()), 3),
                "fraction_of_matmul_peak_m1": round(fractions[1], 3),
                "fraction_of_matmul_peak_m12": round(fractions[12], 3),
                "engine_model_steps_per_s": round(engine_rate, 1),
                "loop_model_steps_per_s": round(loop_rate, 1),
                "torch_func_model_steps_per_s": round(recipe_rate, 1),
                "matmul_peak_gflops": round(peak / 1e9, 1),
                "threads": args.threads,
            }
        )
    )
    record("engine", [{"title": "figure", "cell": "{figure}"},
                      {"title": "measured", "cell": "{measured}"},
                      {"title": "goal", "cell": "{goal}"}], [
        {"figure": "engine over the per-model loop (`nn.Sequential` + `DataLoader` + "
                   f"`torch.optim.Adam`), 12-loss grid: {engine_rate:,.0f} vs {loop_rate:,.0f} "
                   "model-steps/s",
         "measured": f"**{engine_rate / loop_rate:.2f}x**",
         "goal": f">= {GOALS['batched_speedup_vs_loop']:g}"},
        {"figure": "engine over the `torch.func` ensembling recipe (`stack_module_state` + "
                   "`vmap(functional_call)` + one fused Adam), all models on log loss (the "
                   f"recipe cannot mix losses): {log_rate:,.0f} vs {recipe_rate:,.0f} "
                   "model-steps/s",
         "measured": f"**{log_rate / recipe_rate:.2f}x**",
         "goal": f">= {GOALS['engine_over_torch_func']:g}"},
        {"figure": "the same with the engine on the 12-loss grid (12 loss calls per step)",
         "measured": f"{engine_rate / recipe_rate:.2f}x", "goal": "(for information)"},
        {"figure": "Janocha MNIST MLP 784-512x5-10, dropout 0.5, Adam, batch 100, 12 models "
                   "at once: fraction of matmul peak (6 x weights x batch FLOPs per "
                   "model-step)",
         "measured": f"**{fractions[12]:.2f}** (repeats {spreads[12]})",
         "goal": f">= {GOALS['fraction_of_matmul_peak']:g}"},
        {"figure": "the same, one model alone",
         "measured": f"{fractions[1]:.2f} (repeats {spreads[1]})",
         "goal": "(for information)"},
    ], load, threads=args.threads, repeats=args.repeats,
        matmul_peak_gflops=round(peak / 1e9, 1))


if __name__ == "__main__":
    main()
