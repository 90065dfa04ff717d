"""What a learning-rate axis costs (run by hand, never a test).

``.venv/bin/python benchmarks/lr_sweep.py [--steps 300] [--repeats 3] [--threads 2]``

A 5-value learning-rate sweep x the 12 Janocha losses (seed 0) on the Janocha toy MLP
(2-200x5-4, ReLU, Adam, batch 50, checkerboard data), trained three ways:

* ``one stack``: ONE :func:`losslab.train.train_many` call of the 60 models, each with its
  own lr (per-model (M, 1, ...) learning-rate tensors in the optimizer step);
* ``five stacks``: five calls of 12 models, one per lr (what an lr axis cost before);
* ``one stack, one lr``: the same 60 models all at one lr (the floor: no per-model lr).

The claim: the sweep costs about one stack, not five (ratio ``five / one`` ~ 3-5 on the
toy grid, where small stacks waste the machine on per-op overheads), and the per-model
lr costs little over a single lr. The machine is shared: compare ratios from one run
(the three are interleaved), not absolute numbers across runs. Last stdout line: JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from losslab.losses import JANOCHA_LOSSES
from losslab.models import mlp
from losslab.train import ModelSpec, TrainConfig, train_many

LOSSES = sorted(JANOCHA_LOSSES)
LRS = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)


def _toy_data(n: int = 800, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 2, generator=gen) * 2 - 1
    cells = ((x + 1) * 4).floor().clamp(max=7).long()
    return {"x_train": x, "y_train": (cells[:, 0] + cells[:, 1]) % 4}


def _seconds(specs: list[ModelSpec], steps: int) -> float:
    config = TrainConfig(
        batch_size=50, steps=steps, eval_every=steps, device="cpu", eval_train=False
    )
    start = time.perf_counter()
    train_many(lambda s: mlp(2, [200] * 5, 4, seed=s), specs, _toy_data(), config)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    sweep = [ModelSpec(loss, 0, lr=lr) for lr in LRS for loss in LOSSES]
    single = [ModelSpec(loss, 0, lr=3e-5, label=f"{loss}#{k}") for k in LRS for loss in LOSSES]
    one, five, floor = [], [], []
    _seconds(sweep[:2], 5)  # warm-up
    for _ in range(args.repeats):
        one.append(_seconds(sweep, args.steps))
        five.append(sum(_seconds([s for s in sweep if s.lr == lr], args.steps) for lr in LRS))
        floor.append(_seconds(single, args.steps))
    one_s, five_s, floor_s = (statistics.median(v) for v in (one, five, floor))
    print(f"5 lrs x 12 losses, {args.steps} steps, {args.threads} threads (medians):")
    print(f"  one stack of 60 (per-model lr):  {one_s:.2f} s")
    print(f"  five stacks of 12 (one per lr):  {five_s:.2f} s")
    print(f"  one stack of 60, a single lr:    {floor_s:.2f} s")
    print(
        f"five stacks / one stack = {five_s / one_s:.2f}; "
        f"one stack / single-lr stack = {one_s / floor_s:.2f}"
    )
    print(
        json.dumps(
            {
                "one_stack_s": round(one_s, 3),
                "five_stacks_s": round(five_s, 3),
                "single_lr_stack_s": round(floor_s, 3),
                "five_over_one": round(five_s / one_s, 2),
                "per_model_lr_overhead": round(one_s / floor_s, 2),
                "steps": args.steps,
                "threads": args.threads,
            }
        )
    )


if __name__ == "__main__":
    main()
