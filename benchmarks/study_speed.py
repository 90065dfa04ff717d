"""A small study through `losslab run` (its default parallelism) against the same cells one
by one with `losslab train`: what the runner's stacks save end to end, start-up included.

The study: 12 Janocha losses x 5 seeds = 60 cells on the checkerboard with the `losslab
train` default net for it (MLP 2-200x3-4, Adam 1e-3, batch 50). Both sides run the same
number of steps and evaluations, each as fresh `losslab` processes, one after another on
this machine. Run by hand (never part of the tests)::

    .venv/bin/python benchmarks/study_speed.py                 # all 60 cells both ways
    .venv/bin/python benchmarks/study_speed.py --sample 12     # 12 of the 60 one by one, x5

With ``--sample k`` only k of the one-by-one runs are timed (spread over losses and seeds)
and their sum is scaled to 60; the report says so. "Training only" compares the stacks'
own training time (stored per cell) with the seconds each `losslab train --json` reports
(data loading and training, without the process start-up).
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

from benchmark_results import load_at_start, record

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


def timed(command: list[str]) -> tuple[float, str]:
    """Wall seconds of a fresh process (start-up included) and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--eval-every", type=int, default=100)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sample", type=int, default=0, help="time only k one-by-one runs")
    args = parser.parse_args()
    load = load_at_start()
    cells = [(loss, seed) for loss in LOSSES for seed in range(args.seeds)]
    with tempfile.TemporaryDirectory() as tmp:
        study = Path(tmp) / "speed.toml"
        study.write_text(STUDY.format(seeds=args.seeds, losses=json.dumps(LOSSES),
                                      steps=args.steps, eval_every=args.eval_every))
        out = Path(tmp) / "out"
        runner, _ = timed([*losslab(), "run", str(study), "--out", str(out), "--device", "cpu",
                           "--quiet"])
        from losslab.study import load as load_store

        stacks = load_store(out).cells().drop_duplicates("seconds")["seconds"]
        runner_training = float(stacks.sum())
        chosen = cells
        if args.sample:
            step = max(1, len(cells) // args.sample)
            chosen = cells[::step][: args.sample]
        one_by_one, training = [], []
        for loss, seed in chosen:
            wall, stdout = timed(
                [*losslab(), "train", "--dataset", "checkerboard", "--loss", loss, "--seed",
                 str(seed), "--steps", str(args.steps), "--eval-every", str(args.eval_every),
                 "--hidden", "200,200,200", "--lr", "1e-3", "--batch-size", "50",
                 "--device", "cpu", "--json"])
            one_by_one.append(wall)
            training.append(json.loads(stdout.strip().splitlines()[-1])["seconds"])
    scale = len(cells) / len(one_by_one)
    loop, loop_training = sum(one_by_one) * scale, sum(training) * scale
    result = {
        "cells": len(cells),
        "steps": args.steps,
        "runner_seconds": round(runner, 1),
        "runner_training_seconds": round(runner_training, 1),
        "one_by_one_seconds": round(loop, 1),
        "one_by_one_training_seconds": round(loop_training, 1),
        "one_by_one_timed": len(one_by_one),
        "speedup": round(loop / runner, 2),
        "training_speedup": round(loop_training / runner_training, 2),
        "cpu_count": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    extrapolated = f" ({len(one_by_one)} timed, x{scale:g})" if scale != 1 else ""
    print(f"{len(cells)} cells x {args.steps} steps; wall time with start-up | training only")
    print(f"losslab run (defaults):        {runner:8.1f} s | {runner_training:8.1f} s")
    print(f"losslab train x {len(cells)}:{' ' * (14 - len(str(len(cells))))}"
          f"{loop:8.1f} s | {loop_training:8.1f} s{extrapolated}")
    print(f"speed-up: {result['speedup']}x end to end, {result['training_speedup']}x training "
          f"only (load average {result['load_average_1min']})")
    print(json.dumps(result))
    record("study_speed", [
        {"title": "", "cell": "{what}"},
        {"title": "wall time, process start-up included", "cell": "{wall}"},
        {"title": "training only", "cell": "{training}"}], [
        {"what": f"`losslab run` ({len(cells)} cells, its default parallelism; training summed "
                 "over the stacks, which run side by side)", "wall": f"{runner:,.0f} s",
         "training": f"{runner_training:,.0f} s"},
        {"what": f"`losslab train` x {len(cells)}, one by one{extrapolated}",
         "wall": f"{loop:,.0f} s ({loop / len(cells):,.0f} s each)",
         "training": f"{loop_training:,.0f} s"},
        {"what": "speed-up", "wall": f"**{result['speedup']:.1f}x**",
         "training": f"{result['training_speedup']:.1f}x"}], load, steps=args.steps)


if __name__ == "__main__":
    main()
