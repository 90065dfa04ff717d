"""A small study through `losslab run` (in-process) against the same cells one by one with
`losslab train`: what the runner's stacks save end to end, start-up included.

The study: 12 Janocha losses x 5 seeds = 60 cells on the checkerboard with the `losslab
train` default net for it (MLP 2-200x3-4, Adam 1e-3, batch 50). Both sides run the same
number of steps and evaluations, each as fresh `losslab` processes, one after another on
this machine. Run by hand (never part of the tests)::

    .venv/bin/python benchmarks/study_speed.py                 # all 60 cells both ways
    .venv/bin/python benchmarks/study_speed.py --sample 12     # 12 of the 60 one by one, x5

With ``--sample k`` only k of the one-by-one runs are timed (spread over losses and seeds)
and their mean is multiplied by 60; the report says so.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOSSES = ["l1", "l2", "expectation", "regularised_expectation", "chebyshev", "hinge",
          "squared_hinge", "cubed_hinge", "log", "squared_log", "tanimoto", "cauchy_schwarz"]
STUDY = """
name = "speed"
description = "60 toy cells: 12 losses x 5 seeds, MLP 2-200x3-4 on the checkerboard"
seeds = {seeds}
datasets = ["checkerboard"]
models = [{{name = "mlp", hidden = [200, 200, 200]}}]
losses = {losses}
[train]
optimizer = "adam"
lr = 1e-3
batch_size = 50
steps = {steps}
eval_every = {eval_every}
"""


def losslab() -> list[str]:
    return [sys.executable, "-m", "losslab.cli"]


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sample", type=int, default=0, help="time only k one-by-one runs")
    args = parser.parse_args()
    cells = [(loss, seed) for loss in LOSSES for seed in range(args.seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "speed.toml"
        study.write_text(STUDY.format(seeds=args.seeds, losses=json.dumps(LOSSES),
                                      steps=args.steps, eval_every=args.eval_every))
        runner = timed([*losslab(), "run", str(study), "--out", str(Path(tmp) / "out"),
                        "--device", "cpu", "--quiet"])
        chosen = cells
        if args.sample:
            step = max(1, len(cells) // args.sample)
            chosen = cells[::step][: args.sample]
        one_by_one = [
            timed([*losslab(), "train", "--dataset", "checkerboard", "--loss", loss,
                   "--seed", str(seed), "--steps", str(args.steps), "--eval-every",
                   str(args.eval_every), "--hidden", "200,200,200", "--lr", "1e-3",
                   "--batch-size", "50", "--device", "cpu"])
            for loss, seed in chosen
        ]
    loop = sum(one_by_one) / len(one_by_one) * len(cells)
    result = {
        "cells": len(cells),
        "steps": args.steps,
        "runner_seconds": round(runner, 1),
        "one_by_one_seconds": round(loop, 1),
        "one_by_one_timed": len(one_by_one),
        "one_by_one_mean_per_cell": round(sum(one_by_one) / len(one_by_one), 2),
        "speedup": round(loop / runner, 2),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    extrapolated = " (extrapolated)" if len(one_by_one) < len(cells) else ""
    print(f"{len(cells)} cells x {args.steps} steps")
    print(f"losslab run (in-process, one process): {runner:8.1f} s")
    print(f"losslab train x {len(cells)}{extrapolated}:        {loop:8.1f} s "
          f"({len(one_by_one)} timed, {result['one_by_one_mean_per_cell']} s each)")
    print(f"speed-up: {result['speedup']}x   (load average {result['load_average_1min']})")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
