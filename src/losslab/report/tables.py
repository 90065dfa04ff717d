"""The report's tables and page text, as plain strings for the template.

Final metrics (mean +/- 95 % CI per condition), ranks, paired tests with Holm-corrected
p-values and a verdict, the bias/variance diagnosis, tuned hyper-parameters (when the
study tuned any), what is missing and why, the environment and the run times. The numbers
come from :mod:`losslab.report.stats`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from losslab.report import stats

METRICS = ("test_accuracy", "train_accuracy", "dev_accuracy", "test_loss", "train_loss")


def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def mean_pm(mean: float, half: float, metric: str) -> str:
    """``97.31 ± 0.42`` (accuracies in %), ``0.123 ± 0.004`` (losses); ``-`` when absent."""
    if not math.isfinite(mean):
        return "-"
    scale, digits = (100.0, 2) if "accuracy" in metric else (1.0, 4)
    text = f"{mean * scale:.{digits}f}"
    return text + (f" ± {half * scale:.{digits}f}" if math.isfinite(half) else " (n = 1)")


def _table(title: str, note: str, columns: list[str], rows: list[list[str]],
           key: str) -> dict[str, Any]:
    return {"key": key, "title": title, "note": note, "columns": columns, "rows": rows}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def missing(cells: pd.DataFrame) -> list[str]:
    """One sentence per kind of unfinished cell, saying which and why."""
    lines = []
    counts = cells["status"].value_counts()
    for status, why in (("pending", "not run yet: run the study again to finish them"),
                        ("running", "still running (or their worker stopped)")):
        n = int(counts.get(status, 0))
        if n:
            lines.append(f"{n} of {len(cells)} cells {status}: {why}.")
    for row in cells[cells["status"] == "diverged"].itertuples():
        at = "" if pd.isna(row.diverged_at) else f" at step {int(row.diverged_at)}"
        lines.append(f"diverged{at} (loss became NaN/inf; lower the learning rate): "
                     f"{row.condition}, seed {row.seed}.")
    for row in cells[cells["status"] == "failed"].itertuples():
        error = str(row.error) if isinstance(row.error, str) and row.error else "no message"
        lines.append(f"failed: {row.condition}, seed {row.seed}: {error}")
    return lines


def _metric(cells: pd.DataFrame) -> str:
    for m in ("test_accuracy", "dev_accuracy", "train_accuracy"):
        if m in cells and cells[m].notna().any():
            return m
    return "test_accuracy"


def context(results: Any, cells: pd.DataFrame, axes: list[str]) -> dict[str, Any]:
    """The template's variables except the figure sections (see :mod:`.build`)."""
    metric = _metric(cells)
    shown = [m for m in METRICS if m in cells and cells[m].notna().any()]
    summary = stats.condition_summary(cells, shown, axes)
    out: list[dict[str, Any]] = []

    rows = []
    for r in summary.to_dict("records"):
        rows.append([r["condition"], f"{r['n_done']} / {r['n_cells']}"]
                    + [mean_pm(r[f"{m}_mean"], r[f"{m}_ci"], m) for m in shown]
                    + [_duration(r["seconds"])])
    out.append(_table(
        "Final metrics", "Mean ± 95 % Student-t confidence interval over the done seeds of "
        "each condition; accuracies in %. n = 1: a single seed, no interval.",
        ["condition", "done / cells"] + [m.replace("_", " ") for m in shown] + ["run time"],
        rows, "final"))

    if "loss" in axes:
        r = stats.ranks(cells, metric, axes)
        out.append(_table(
            "Ranks of the losses", f"Within each group of cells equal on every other axis, "
            f"the losses ranked by mean {metric.replace('_', ' ')} (1 = best); mean over "
            "the groups.", ["loss", "mean rank", "groups", "first in"],
            [[x.loss, f"{x.mean_rank:.2f}", str(x.groups), str(x.wins)]
             for x in r.itertuples()], "ranks"))
        t = stats.paired_tests(cells, metric, axes)
        out.append(_table(
            "Paired tests", "In each group, the best loss against every other one, paired "
            "by seed (same initial weights and batches); two-sided Wilcoxon signed-rank "
            "test, p-values Holm-corrected over all rows.",
            ["group", "better", "other", "wins / pairs", "p", "p (Holm)", "verdict"],
            [[x.group or "all", x.better, x.other, f"{x.wins} / {x.pairs}", _num(x.p, 2),
              _num(x.p_holm, 2), x.verdict] for x in t.itertuples()], "tests"))

    bv = stats.bias_variance(cells)
    out.append(_table(
        "Bias and variance", "The lecture notes' diagnosis (section 6.2) from the mean "
        "errors; bias = train error (Bayes error taken as 0), variance = held-out error - "
        "train error, high when above 5 points.",
        ["condition", "train error", "held-out error", "held out", "bias", "variance",
         "diagnosis"],
        [[x.condition, f"{x.train_error:.2%}", f"{x.dev_error:.2%}", x.against,
          f"{x.avoidable_bias:.2%}", f"{x.variance:.2%}", x.diagnosis]
         for x in bv.itertuples()], "bias"))

    tuning = getattr(results, "tuning", None)
    if callable(tuning):
        tuned = tuning()
        if tuned is not None and len(tuned):
            out.append(_table(
                "Tuned hyper-parameters", "The values the study's tuning chose.",
                [str(c) for c in tuned.columns],
                [[_num(v) for v in row] for row in tuned.itertuples(index=False)], "tuned"))

    counts = cells["status"].value_counts()
    environment = results.environment() or {}
    return {
        "title": _study_name(results),
        "description": _description(results),
        "metric": metric,
        "status": [(s, int(counts.get(s, 0))) for s in
                   ("done", "diverged", "failed", "running", "pending")],
        "n_cells": len(cells),
        "total_time": _duration(float(cells["seconds"].fillna(0).sum())),
        "missing": missing(cells),
        "tables": out,
        "study_text": results.study_text() or "",
        "environment": [(str(k), str(v)) for k, v in environment.items()],
    }


def _study_meta(results: Any) -> dict[str, Any]:
    import tomllib

    try:
        return tomllib.loads(results.study_text() or "")
    except (tomllib.TOMLDecodeError, TypeError):
        return {}


def _study_name(results: Any) -> str:
    return str(_study_meta(results).get("name", "study"))


def _description(results: Any) -> str:
    return str(_study_meta(results).get("description", ""))
