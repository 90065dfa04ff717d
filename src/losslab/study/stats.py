"""Statistics over the seeds of a study, as DataFrames and as printed tables.

The functions of :mod:`losslab.metrics.stats` (re-exported here) applied to a study's
cells, and :func:`statistics_tables`, the tables ``losslab report DIR`` prints: mean and
95 % t interval per condition (:data:`~losslab.metrics.stats.INTERVAL_METHOD`), the ranks
of the losses, the paired comparisons with a reference loss (paired t, Holm within each
condition) and their verdicts, the bias / variance diagnosis against the accuracy
reachable under label noise, and the per-loss settings ``[tune]`` chose.

Seeds: Janocha & Czarnecki 2017, section 3 (losses compared over seeds); lecture notes
2018, section 6.2 (bias / variance).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.markup import escape
from rich.table import Table

from losslab.metrics.stats import (
    CONDITION_AXES,
    INTERVAL_METHOD,
    bootstrap_ci,
    compare,
    diagnose,
    holm,
    paired_t,
    rank_losses,
    seeds_needed,
    summarize,
    t_interval,
)

__all__ = [
    "CONDITION_AXES",
    "INTERVAL_METHOD",
    "bootstrap_ci",
    "compare",
    "default_reference",
    "diagnose",
    "holm",
    "paired_t",
    "rank_losses",
    "seeds_needed",
    "statistics_tables",
    "summarize",
    "t_interval",
]


def default_reference(cells: pd.DataFrame) -> str | None:
    """``"log"`` (the usual loss) when the study has it, else its first loss."""
    finished = cells[cells["status"].isin(("done", "diverged"))]
    if finished.empty:
        return None
    if "log" in set(finished["loss"]):
        return "log"
    return str(finished["loss"].iloc[0])


def _value(metric: str, value: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{100 * value:.2f}" if metric.endswith("accuracy") else f"{value:.4g}"


class _Table:
    """A rich table of plain-text cells: labels such as ``mlp[8x2]`` are not markup."""

    def __init__(self, title: str):
        self.table = Table(title=escape(title))

    def add_column(self, name: str, **options: Any) -> None:
        self.table.add_column(escape(name), **options)

    def add_row(self, *cells: str) -> None:
        self.table.add_row(*(escape(c) for c in cells))


def statistics_tables(
    results: Any, reference: str | None = None, metric: str = "test_accuracy"
) -> list[Any]:
    """The statistics of a study as ``rich`` tables, for ``losslab report``.

    Args:
        results: a :class:`~losslab.study.StudyResults`.
        reference: the loss the others are compared with (default :func:`default_reference`).
        metric: the final metric compared (default ``"test_accuracy"``).

    Returns:
        A list of :class:`rich.table.Table` (empty when no cell has finished).
    """
    cells = results.cells()
    reference = reference or default_reference(cells)
    if reference is None:
        return []
    unit = " (%)" if metric.endswith("accuracy") else ""
    tables = []

    summary = results.summary(metric)
    table = _Table(f"{metric}{unit}: mean and 95% t interval over seeds (kept in [0, 1])"
                   if metric.endswith("accuracy") else
                   f"{metric}: mean and 95% t interval over seeds")
    for name in ("condition", "seeds", "mean", "95% CI", "std", "diverged"):
        table.add_column(name, justify="left" if name == "condition" else "right")
    for row in summary.itertuples():
        table.add_row(
            str(row.condition),
            str(row.n),
            _value(metric, row.mean),
            f"[{_value(metric, row.ci_low)}, {_value(metric, row.ci_high)}]",
            _value(metric, row.std),
            str(row.n_diverged),
        )
    tables.append(table.table)

    ranks = results.ranks(metric)
    table = _Table(f"rank of each loss by mean {metric} (1 = best)")
    table.add_column("loss")
    for column in ranks.columns:
        table.add_column(str(column), justify="right")
    for loss, row in ranks.iterrows():
        table.add_row(str(loss), *[f"{v:g}" if isinstance(v, float) else str(v) for v in row])
    tables.append(table.table)

    comparison = results.compare(reference, metric)
    table = _Table(
        f"paired over seeds: each loss vs {reference} ({metric}; paired t on the per-seed "
        "differences, Holm within each condition)"
    )
    group = [c for c in comparison.columns[: list(comparison.columns).index("loss")]]
    numbers = ("W/L/T", "effect [95% CI]", "p (Holm)", "seeds for 1 pt")
    for name in (*group, "loss", *numbers, "verdict"):
        table.add_column(name, justify="right" if name in numbers else "left",
                         overflow="fold")
    scale = 100.0 if metric.endswith("accuracy") else 1.0
    for row in comparison.to_dict("records"):
        effect = "-"
        if math.isfinite(row["mean_diff"]):
            effect = f"{scale * row['mean_diff']:+.2f}"
            if math.isfinite(row["ci_low"]):
                effect += f" [{scale * row['ci_low']:+.2f}, {scale * row['ci_high']:+.2f}]"
        table.add_row(
            *[str(row[c]) for c in group],
            str(row["loss"]),
            f"{row['wins']}/{row['losses']}/{row['ties']}",
            effect,
            f"{row['p_holm']:.3g}" if math.isfinite(row["p_holm"]) else "-",
            f"{row['seeds_needed']:.0f}" if math.isfinite(row["seeds_needed"]) else "-",
            str(row["verdict"]),
        )
    tables.append(table.table)

    diagnosis = results.diagnosis()
    if not diagnosis.empty:
        table = _Table("bias / variance (lecture notes 6.2; errors in %; the Bayes error is "
                       "the one reachable under the label noise)")
        for name in ("condition", "train error", "held-out error", "Bayes error (train)",
                     "diagnosis"):
            table.add_column(name, justify="right" if "error" in name else "left")
        for row in diagnosis.itertuples():
            table.add_row(
                str(row.condition),
                f"{100 * row.train_error:.2f}",
                f"{100 * row.held_out_error:.2f} ({row.held_out})",
                f"{100 * row.train_bayes_error:.2f}",
                row.diagnosis,
            )
        tables.append(table.table)

    tuning = results.tuning()
    if not tuning.empty:
        chosen = tuning[tuning["chosen"]]
        table = _Table("[tune]: the settings chosen per loss on the dev split")
        for name in ("condition", "lr", "weight decay", "dev score", "candidates"):
            table.add_column(name, justify="left" if name == "condition" else "right")
        counts = tuning.groupby(["condition"], sort=False).size()
        for row in chosen.itertuples():
            table.add_row(
                str(row.condition),
                f"{row.lr:.3g}",
                f"{row.weight_decay:.3g}",
                _value(row.metric, row.score),
                str(counts[row.condition]),
            )
        tables.append(table.table)
    return tables
