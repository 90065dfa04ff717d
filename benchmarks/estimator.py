"""How far the dry run's time estimates are from the measured stacks of the committed runs.

For every published run under ``results/<study>/<scale>/`` this plans the study as the run
did (the same workers, threads and stack size, from its ``run.json``), costs each stack
with the rates committed in ``results/estimates.json`` (measured on the machine the runs
were made on) and divides each stack's measured training seconds (``cells.csv``) by its
estimate. Nothing is trained: it reads files and counts FLOPs, so it takes seconds and
does not need a quiet machine. What it measures is the estimator
(:mod:`losslab.study.estimate`), whose FLOP / bandwidth / dispatch model has no term for
the per-loss kernels, the batch gathering or the evaluation overheads of small models: a
ratio far above 1 is where it under-estimates. Run by hand (never a test)::

    .venv/bin/python benchmarks/estimator.py            # print, write the result file
    .venv/bin/python benchmarks/estimator.py --no-write

Writes benchmarks/results/estimator.json (:mod:`benchmark_results`), shown in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

import pandas as pd
from benchmark_results import record

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def compare(study_name: str, scale: str, rates: dict[str, float]) -> dict[str, object]:
    """One published run: per-stack measured / estimated ratios and their sums."""
    from losslab.catalogue import resolve_study
    from losslab.study.executors import DataCache
    from losslab.study.forecast import forecast
    from losslab.study.results import load
    from losslab.study.spec import load_study

    results = load(RESULTS / study_name / scale)
    parallel = results.environment().get("parallelism") or {}
    study = load_study(resolve_study(study_name), scale)
    plan = forecast(study, DataCache(), device="cpu", executor=parallel.get("executor", "auto"),
                    jobs=parallel.get("jobs"), threads=parallel.get("threads"),
                    max_stack=parallel.get("max_stack", 64), rates=rates)
    # The stack of each cell is in the committed table, not in StudyResults.cells().
    cells = pd.read_csv(RESULTS / study_name / scale / "cells.csv")
    # Every cell of a stack carries the stack's training seconds.
    done = cells[(cells["status"] == "done") & cells["seconds"].notna()]
    measured = done.groupby("stack_id")["seconds"].first().to_dict()
    pairs = [(measured[g.stack_id], s)
             for g, s in zip(plan.plan.groups, plan.seconds, strict=True)
             if g.stack_id in measured and math.isfinite(s) and s > 0]
    if not pairs:
        raise SystemExit(f"{study_name} {scale}: no stack of the plan is in cells.csv (the "
                         "study file changed since the run was published?)")
    ratios = [m / s for m, s in pairs]
    return {
        "study": study_name, "scale": scale, "stacks": len(pairs),
        "unmatched": len(plan.plan.groups) - len(pairs),
        "estimated": sum(s for _, s in pairs), "measured": sum(m for m, _ in pairs),
        "median": statistics.median(ratios), "low": min(ratios), "high": max(ratios),
        "ratios": ratios,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    committed = json.loads((RESULTS / "estimates.json").read_text(encoding="utf-8"))
    rates = committed["rates"]
    found = sorted(p.parent for p in RESULTS.glob("*/*/run.json"))
    rows, every = [], []
    for folder in found:
        result = compare(folder.parent.name, folder.name, rates)
        every += result.pop("ratios")
        print(f"{result['study']:22s} {result['scale']:7s} {result['stacks']:3d} stacks  "
              f"estimated {result['estimated']:8.1f} s  measured {result['measured']:8.1f} s  "
              f"ratio {result['median']:.2f} ({result['low']:.2f}-{result['high']:.2f})",
              flush=True)
        rows.append({**result, "estimated": f"{result['estimated']:.0f}",
                     "measured": f"{result['measured']:.0f}",
                     "median": f"{result['median']:.2f}",
                     "range": f"{result['low']:.2f}-{result['high']:.2f}"})
    spread = math.exp(statistics.pstdev(math.log(r) for r in every))
    within = sum(1 for r in every if 0.5 <= r <= 2) / len(every)
    summary = (f"{len(every)} stacks: median ratio {statistics.median(every):.2f}, "
               f"range {min(every):.2f}-{max(every):.2f}, geometric sd {spread:.2f}; "
               f"{within:.0%} of the stacks within a factor 2")
    print(summary)
    if args.no_write:
        return
    columns = [{"title": "study", "cell": "`{study}` {scale}"},
               {"title": "stacks", "cell": "{stacks}"},
               {"title": "estimated (s)", "cell": "{estimated}"},
               {"title": "measured (s)", "cell": "{measured}"},
               {"title": "measured / estimated, median (range) per stack",
                "cell": "{median} ({range})"}]
    record("estimator", columns, rows, None, rates_from="results/estimates.json",
           machine_of_rates=committed.get("machine"),
           source=f"rates of results/estimates.json ({committed.get('measured_at')}); "
                  f"{summary}")


if __name__ == "__main__":
    main()
