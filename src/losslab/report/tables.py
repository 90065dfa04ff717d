"""The report's tables and page text, as plain strings for the template.

Final metrics (mean and 95 % t interval per condition, kept in the metric's range), ranks,
paired t-tests against the reference loss with Holm-corrected p-values within each
condition and a verdict, the bias/variance diagnosis against the accuracy reachable under
label noise, tuned hyper-parameters (when the study tuned any), what is missing and why,
the environment and the run times. The numbers come from :mod:`losslab.metrics.stats`.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from losslab.console import duration
from losslab.metrics import stats
from losslab.report.figures import label

MAX_RANK_COLUMNS = 6
METRICS = ("test_accuracy", "train_accuracy", "dev_accuracy", "test_loss", "train_loss")


def _num(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    if isinstance(x, float):
        return f"{x:.{digits}g}"
    return str(x)


def _diff(value: float, metric: str) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{100 * value:+.2f} points" if "accuracy" in metric else f"{value:+.4g}"


def _table(title: str, note: str, columns: list[str], rows: list[list[str]],
           key: str) -> dict[str, Any]:
    return {"key": key, "title": title, "note": note, "columns": columns, "rows": rows}


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


def _interval(low: float, high: float, metric: str) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    scale, digits = (100.0, 2) if "accuracy" in metric else (1.0, 4)
    return f" [{low * scale:.{digits}f}, {high * scale:.{digits}f}]"


def _signed_interval(low: float, high: float, metric: str) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    scale, digits = (100.0, 2) if "accuracy" in metric else (1.0, 4)
    return f" [{low * scale:+.{digits}f}, {high * scale:+.{digits}f}]"


def _mean(mean: float, metric: str) -> str:
    if not math.isfinite(mean):
        return "-"
    scale, digits = (100.0, 2) if "accuracy" in metric else (1.0, 4)
    return f"{mean * scale:.{digits}f}"


def final_metrics(cells: pd.DataFrame, metrics: list[str]) -> dict[str, Any]:
    """Per condition: finished / all cells, each metric's mean [95 % CI], the run time."""
    conditions = cells.groupby("condition_id", sort=False).agg(
        condition=("condition", "first"), cells=("status", "size"),
        finished=("status", lambda s: int(s.isin(("done", "diverged")).sum())),
        seconds=("seconds", "mean"))
    values = {}
    for m in metrics:
        summary = stats.summarize(cells, m)
        if len(summary):
            values[m] = summary.set_index("condition_id")
    rows = []
    for cid, c in conditions.iterrows():
        row = [c["condition"], f"{c['finished']} / {c['cells']}"]
        for m in metrics:
            s = values.get(m)
            if s is None or cid not in s.index:
                row.append("-")
                continue
            r = s.loc[cid]
            row.append(_mean(r["mean"], m) + _interval(r["ci_low"], r["ci_high"], m))
        rows.append(row + [duration(c["seconds"]) if math.isfinite(c["seconds"]) else "-"])
    return _table(
        "Final metrics", "Mean over the finished seeds of each condition (a diverged model "
        "counts with its last finite evaluation) and its 95 % confidence interval in "
        f"brackets: the {stats.INTERVAL_METHOD}; accuracies in %. No interval: a single seed. "
        "Run time: the "
        "mean wall time of the condition's cells (cells trained together as one stack each "
        "count the stack's whole time).",
        ["condition", "finished / cells"] + [m.replace("_", " ") for m in metrics]
        + ["run time"], rows, "final")


def _reference(cells: pd.DataFrame) -> str:
    """The loss every other is compared with: log loss when the study has it, else the
    first loss of the study file."""
    names = list(dict.fromkeys(cells["loss"]))
    if "log" in names:
        return "log"
    logs = list(dict.fromkeys(cells.loc[cells["loss_name"] == "log", "loss"]))
    return logs[0] if len(logs) == 1 else names[0]


def context(results: Any, cells: pd.DataFrame, axes: list[str], reference: str | None = None,
            metric: str | None = None) -> dict[str, Any]:
    """The template's variables except the figure sections (see :mod:`.build`).

    ``reference`` (default: :func:`_reference`) is the loss of the paired tests, ``metric``
    (default: the first of test, dev, train accuracy that the study has) the compared one.
    """
    metric = metric or _metric(cells)
    shown = [m for m in METRICS if m in cells and cells[m].notna().any()]
    finished = cells[cells["status"].isin(("done", "diverged"))]
    out: list[dict[str, Any]] = [final_metrics(cells, shown)]
    # losses tuned per loss ([tune]) differ in those settings by design: compare across them
    tuned = tuple(results.tuned())
    within = [a for a in axes if a not in ("loss", "seed", *tuned)]

    if finished["loss"].nunique() > 1 and finished[metric].notna().any():
        r = stats.rank_losses(cells, metric, within=within)
        # the rank per condition fits a page up to a few conditions; past that, the mean
        per = [str(c) for c in r.columns[:-2]] if len(r.columns) - 2 <= MAX_RANK_COLUMNS else []
        out.append(_table(
            "Ranks of the losses", f"Within each condition (cells equal on every other "
            f"axis) the losses ranked by mean {label(metric)} over seeds (1 = best, ties "
            "share their mean rank), and the mean rank over the conditions.",
            ["loss", *per, "mean rank", "conditions"],
            [[str(loss), *[_num(row[c], 3) for c in per], f"{row['mean_rank']:.2f}",
              str(int(row["conditions"]))] for loss, row in r.iterrows()], "ranks"))
        reference = reference or _reference(finished)
        t = stats.compare(cells, reference, metric, within=within)
        shown_within = [c for c in within if c in t and t[c].nunique(dropna=False) > 1]
        unit = "1-point" if "accuracy" in metric else "0.01"
        out.append(_table(
            "Paired tests", f"Each loss against {reference} on the same seeds (same initial "
            "weights and batches) within one condition (every other axis fixed): the effect "
            f"is the mean per-seed difference in {label(metric)} with its 95 % t interval "
            "(cut to [-100, 100] points), p from the two-sided paired t-test, Holm-corrected "
            "within the condition's family (the losses compared with "
            f"{reference} there). With 5 seeds the test detects, with power 0.8, a "
            "difference of 1.68 standard deviations of the per-seed differences (3.2 after "
            f"Holm over 11 comparisons). 'Seeds for {unit}': how many seeds would detect a "
            f"{unit} difference with power 0.8 at the observed spread of the differences.",
            [*shown_within, "loss", "versus", "wins / losses / ties", "effect [95 % CI]",
             "p", "p (Holm)", "family", f"seeds for {unit}", "verdict"],
            [[*[_num(getattr(x, c)) for c in shown_within], str(x.loss), str(x.versus),
              f"{x.wins} / {x.losses} / {x.ties}",
              _diff(x.mean_diff, metric) + _signed_interval(x.ci_low, x.ci_high, metric),
              _num(x.p_value, 2), _num(x.p_holm, 2), str(x.family),
              _num(x.seeds_needed, 4), x.verdict]
             for x in t.itertuples()], "tests"))

    if finished["train_accuracy"].notna().any():
        bv = stats.diagnose(cells)
        out.append(_table(
            "Bias and variance", "The lecture notes' diagnosis (section 6.2) from the mean "
            "errors over seeds: bias = train error - the training labels' Bayes error (with "
            "label noise, one minus the accuracy a model of the inputs can reach on the "
            "noisy labels, e.g. the noise rate for symmetric noise; negative: the model "
            "memorised flipped labels), variance = (held-out error - the held-out labels' "
            "Bayes error, 0 for clean labels) - bias; high when above 5 points. The "
            "reference column says which Bayes errors were used.",
            ["condition", "train error", "held-out error", "held out", "bias", "variance",
             "diagnosis", "reference"],
            [[x.condition, f"{x.train_error:.2%}", f"{x.held_out_error:.2%}", x.held_out,
              f"{x.avoidable_bias:.2%}", f"{x.variance:.2%}", x.diagnosis, x.reference]
             for x in bv.itertuples()], "bias"))

    tuning = results.tuning()
    if len(tuning):
        chosen = tuning[tuning["chosen"].astype(bool)]
        tried = tuning.groupby(["condition", "loss"], sort=False).size()
        out.append(_table(
            "Tuned hyper-parameters", "The settings [tune] chose per loss on the dev split "
            "(tuning seeds disjoint from the study's), with the dev score and how many "
            "candidates were tried.",
            ["condition", "loss", *tuned, "dev score", "metric", "candidates"],
            [[str(x.condition), str(x.loss), *[_num(getattr(x, k)) for k in tuned],
              _num(x.score), str(x.metric), str(int(tried.get((x.condition, x.loss), 0)))]
             for x in chosen.itertuples()], "tuned"))

    counts = cells["status"].value_counts()
    environment = results.environment() or {}
    return {
        "title": _study_name(results),
        "description": _description(results),
        "metric": metric,
        "status": [(s, int(counts.get(s, 0))) for s in
                   ("done", "diverged", "failed", "running", "pending")],
        "n_cells": len(cells),
        "longest": duration(float(cells["seconds"].max())) if cells["seconds"].notna().any()
        else "-",
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
