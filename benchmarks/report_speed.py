"""How long ``build_report`` takes on a 500-cell study (the goal: under a minute on 2 cores).

A synthetic store in the StudyResults interface: 2 datasets x 2 models x 5 losses x 5
learning rates x 5 seeds = 500 cells, each with 25 evaluations of the 9 engine curves,
per-layer gradient norms (4 layers) and final top-k / acc_at rows; 5 cells pending, 5
failed and 5 diverged. The curves are smooth saturating functions plus seeded noise, so
the figures look like real ones. Run by hand::

    .venv/bin/python benchmarks/report_speed.py [--out DIR] [--workers N]

It prints the cold build time (every figure drawn) and the warm rebuild (all cached), wall
and CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from benchmark_results import load_at_start, record

from losslab.report import build_report

LOSSES = ("log", "hinge", "squared_hinge", "expectation", "cauchy_schwarz")
LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
CURVES = ("lr", "train_batch_accuracy", "train_batch_loss", "train_accuracy", "train_loss",
          "dev_accuracy", "dev_loss", "test_accuracy", "test_loss")
STEPS = np.arange(200, 5001, 200)


class SyntheticResults:
    """500 cells in the StudyResults interface (cells, curves, measurements, ...)."""

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        cells, curves, meas = [], [], []
        n = 0
        for dataset in ("checkerboard", "spirals"):
            for model in ("mlp[200x2]", "mlp[200x5]"):
                for li, loss in enumerate(LOSSES):
                    for lr in LRS:
                        condition = f"{dataset} / {model} / relu / {loss} / lr={lr:g}"
                        for s in range(5):
                            cid = f"c{n:04d}"
                            status = ("pending" if n % 100 == 7 else "failed" if n % 100 == 13
                                      else "diverged" if n % 100 == 29 else "done")
                            n += 1
                            top = 0.6 + 0.07 * li + 0.02 * rng.standard_normal()
                            rate = lr * 3e3 * (1 + 0.2 * li)
                            acc = top * (1 - np.exp(-rate * STEPS / 5000))
                            acc = np.clip(acc + 0.01 * rng.standard_normal(len(STEPS)), 0, 1)
                            row = {
                                "cell_id": cid, "condition_id": f"{condition}#",
                                "condition": condition, "status": status,
                                "error": "worker lost" if status == "failed" else None,
                                "diverged_at": 1400 if status == "diverged" else np.nan,
                                "dataset": dataset, "model": model, "activation": "relu",
                                "loss": loss, "loss_name": loss, "optimizer": "adam", "lr": lr,
                                "weight_decay": 0.0, "label_noise_rate": 0.0,
                                "label_noise_kind": "symmetric", "input_noise_eps": 0.0,
                                "steps": 5000, "seed": s,
                                "config": json.dumps({"loss": {"name": loss}}),
                                "seconds": float(rng.uniform(20, 40)), "steps_run": 5000,
                                "best_step": np.nan,
                            }
                            finished = status in ("done", "diverged")
                            final = {
                                "train_accuracy": acc[-1] + 0.02, "dev_accuracy": np.nan,
                                "test_accuracy": acc[-1], "train_loss": 1 - acc[-1],
                                "dev_loss": np.nan, "test_loss": 1.1 - acc[-1],
                            }
                            row.update({k: (v if finished else np.nan) for k, v in final.items()})
                            cells.append(row)
                            if not finished:
                                continue
                            for metric in CURVES:
                                value = {"lr": np.full(len(STEPS), lr),
                                         "train_accuracy": acc + 0.02,
                                         "test_accuracy": acc}.get(metric, 1 - acc)
                                curves.append(pd.DataFrame({"cell_id": cid, "step": STEPS,
                                                            "metric": metric, "value": value}))
                            for layer in range(4):
                                g = np.exp(-STEPS / 3000) * 0.5 ** (3 - layer) * (1 + li / 5)
                                meas.append(pd.DataFrame({
                                    "cell_id": cid, "step": STEPS, "name": "grad_norm",
                                    "index": f"layers.{layer}", "value": g}))
                            for k in (1, 2, 3):
                                meas.append(pd.DataFrame({
                                    "cell_id": [cid], "step": [5000], "name": ["test_top_k"],
                                    "index": [str(k)], "value": [min(1, acc[-1] + 0.1 * k)]}))
        self._cells = pd.DataFrame(cells)
        self._curves = pd.concat(curves, ignore_index=True)
        self._meas = pd.concat(meas, ignore_index=True)

    def cells(self):
        return self._cells.copy()

    def curves(self):
        return self._curves.copy()

    def measurements(self):
        return self._meas.copy()

    def axes(self):
        return ["dataset", "model", "loss", "lr", "seed"]

    def tuned(self):
        return ()

    def tuning(self):
        return pd.DataFrame(columns=["condition", "loss", "trial", "lr", "weight_decay",
                                     "metric", "score", "seeds", "diverged", "chosen"])

    def study_text(self):
        return 'name = "synthetic500"\ndescription = "report speed benchmark"\n'

    def environment(self):
        return {"cpus": os.cpu_count()}


def _cpu() -> float:
    """CPU seconds of this process and its finished children: on a shared machine the
    wall time depends on the load, the CPU time much less."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="report folder (default: temp)")
    parser.add_argument("--workers", type=int, default=None, help="drawing processes")
    args = parser.parse_args()
    load = load_at_start()
    t = time.perf_counter()
    results = SyntheticResults()
    print(f"synthetic store: {len(results.cells())} cells, {len(results.curves())} curve rows, "
          f"{len(results.measurements())} measurement rows ({time.perf_counter() - t:.1f} s)")
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "report"
        times = {}
        for what in ("cold build", "warm rebuild"):
            t, cpu = time.perf_counter(), _cpu()
            index = build_report(results, out, workers=args.workers)
            times[what] = (time.perf_counter() - t, _cpu() - cpu)
            print(f"{what}: {times[what][0]:.1f} s wall, {times[what][1]:.1f} s CPU "
                  f"(this process and the drawing processes) -> {index}")
        figures = len(list((out / "figures").glob("*.png")))
        print(f"{figures} figures (PNG + SVG each), os.cpu_count() = {os.cpu_count()}")
    record("report_speed", [
        {"title": "build of the synthetic 500-cell report", "cell": "{what}"},
        {"title": "measured", "cell": "{measured}"}], [
        {"what": f"cold build, {figures} figures (PNG + SVG), CPU time of all processes",
         "measured": f"{times['cold build'][1]:.0f} s"},
        {"what": "cold build, wall time", "measured": f"{times['cold build'][0]:.0f} s"},
        {"what": "rebuild with every figure cached, CPU time",
         "measured": f"{times['warm rebuild'][1]:.0f} s"}], load)


if __name__ == "__main__":
    main()
