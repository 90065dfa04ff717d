"""The statistics the report shows, over the tidy ``cells`` DataFrame of a study.

The seeds of one condition are its replicates. Every function takes the cells DataFrame
(one row per cell, the columns of :meth:`losslab.study.StudyResults.cells`) and returns a
DataFrame, one row per condition or per comparison.

* :func:`mean_ci`: mean and two-sided 95 % Student-t confidence interval over seeds.
* :func:`condition_summary`: per condition, the mean and CI of each final metric.
* :func:`ranks`: each level of an axis (default: the loss) ranked within every group of
  cells that differ only in that axis and the seed, then its mean rank.
* :func:`paired_tests`: within each such group, the best level against every other one,
  paired by seed (same seed = same initial weights and batches), Wilcoxon signed-rank,
  Holm-corrected over all comparisons, with a verdict in plain words.
* :func:`bias_variance`: the lecture notes' bias/variance diagnosis per condition.

Seeds: Janocha & Czarnecki 2017 section 3 (losses compared over seeds); lecture notes
2018 section 6.2 (bias/variance); Holm (1979) for the step-down correction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats as sps

from losslab.metrics import bias_variance_diagnosis

LEVEL = 0.95
ALPHA = 0.05
# The columns that are never axes of a condition.
_NOT_AXES = ("seed",)


def higher_is_better(metric: str) -> bool:
    """Accuracies are better high, losses and errors low."""
    return "loss" not in metric and "error" not in metric


def mean_ci(values: Sequence[float] | np.ndarray, level: float = LEVEL) -> tuple[float, float, int]:
    """Mean, CI half-width and count of the finite values (K,); NaN half-width when K < 2.

    The interval is mean +/- t_{(1+level)/2, K-1} * s / sqrt(K), s the sample standard
    deviation: the usual interval for the mean of K independent seeds.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return math.nan, math.nan, 0
    if n == 1:
        return float(x[0]), math.nan, 1
    half = sps.t.ppf(0.5 + level / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return float(x.mean()), float(half), n


def condition_columns(cells: pd.DataFrame, axes: Sequence[str], exclude: Sequence[str] = ()):
    """The axis columns that identify a group: ``axes`` minus the seed and ``exclude``."""
    return [a for a in axes if a not in _NOT_AXES and a not in exclude and a in cells]


def condition_summary(
    cells: pd.DataFrame, metrics: Sequence[str], axes: Sequence[str]
) -> pd.DataFrame:
    """One row per condition: its axis values, cell counts by status, mean/CI per metric.

    Args:
        cells: the study's cells (columns ``condition_id``, ``condition``, ``status``, the
            axes and the metrics).
        metrics: final-metric columns to summarise over the condition's done cells.
        axes: the axis columns that vary in the study (shown as columns).

    Returns:
        Columns ``condition_id``, ``condition``, the axes, ``n_done``, ``n_cells``,
        ``seconds`` (summed), and ``<metric>_mean``, ``<metric>_ci``, ``<metric>_n`` per
        metric; rows in the cells' order of first appearance.
    """
    rows = []
    group_axes = condition_columns(cells, axes)
    for cid, group in cells.groupby("condition_id", sort=False):
        done = group[group["status"] == "done"]
        row = {"condition_id": cid, "condition": group["condition"].iloc[0]}
        row.update({a: group[a].iloc[0] for a in group_axes})
        row["n_done"], row["n_cells"] = len(done), len(group)
        row["seconds"] = float(group["seconds"].fillna(0).sum())
        for m in metrics:
            row[f"{m}_mean"], row[f"{m}_ci"], row[f"{m}_n"] = mean_ci(done[m].to_numpy())
        rows.append(row)
    return pd.DataFrame(rows)


def _groups(cells: pd.DataFrame, axes: Sequence[str], axis: str):
    keys = condition_columns(cells, axes, exclude=(axis,))
    done = cells[cells["status"] == "done"]
    if not keys:
        yield (), done
        return
    for key, group in done.groupby(keys, sort=False, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), group


def ranks(
    cells: pd.DataFrame, metric: str, axes: Sequence[str], axis: str = "loss"
) -> pd.DataFrame:
    """Mean rank of each level of ``axis`` over the groups where it was compared.

    Within a group (cells equal on every other axis), levels are ranked by their mean
    ``metric`` over seeds, 1 = best, ties sharing the average rank.

    Returns:
        Columns ``axis``, ``mean_rank``, ``groups`` (how many groups it was ranked in),
        ``wins`` (groups where it ranked first), sorted by mean rank.
    """
    per_level: dict[str, list[float]] = {}
    for _, group in _groups(cells, axes, axis):
        means = group.groupby(axis, sort=False)[metric].mean().dropna()
        if len(means) < 2:
            continue
        r = means.rank(ascending=not higher_is_better(metric), method="average")
        for level, value in r.items():
            per_level.setdefault(str(level), []).append(float(value))
    rows = [
        {axis: level, "mean_rank": float(np.mean(v)), "groups": len(v),
         "wins": int(sum(x == 1.0 for x in v))}
        for level, v in per_level.items()
    ]
    table = pd.DataFrame(rows, columns=[axis, "mean_rank", "groups", "wins"])
    return table.sort_values("mean_rank", kind="stable").reset_index(drop=True)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values (K,), monotone and capped at 1; NaN stays NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full_like(p, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    k = len(order)
    running = 0.0
    for i, j in enumerate(order):
        running = max(running, min(1.0, (k - i) * p[j]))
        adjusted[j] = running
    return adjusted


def paired_tests(
    cells: pd.DataFrame, metric: str, axes: Sequence[str], axis: str = "loss"
) -> pd.DataFrame:
    """The best level of ``axis`` in each group against each other level, paired by seed.

    Returns:
        Columns ``group`` (the other axes' values, as text), ``better``, ``other``,
        ``pairs`` (seeds both finished), ``wins`` (seeds where ``better`` did better),
        ``p`` (two-sided Wilcoxon signed-rank; NaN with fewer than 2 informative pairs),
        ``p_holm`` (Holm over all rows) and ``verdict`` (a sentence).
    """
    sign = 1.0 if higher_is_better(metric) else -1.0
    rows = []
    for key, group in _groups(cells, axes, axis):
        table = group.pivot_table(index="seed", columns=axis, values=metric, aggfunc="mean")
        means = table.mean().dropna()
        if len(means) < 2:
            continue
        best = (means * sign).idxmax()
        for other in means.index:
            if other == best:
                continue
            pair = table[[best, other]].dropna()
            diff = sign * (pair[best] - pair[other]).to_numpy()
            p = math.nan
            if np.count_nonzero(diff) >= 2:
                p = float(sps.wilcoxon(diff, zero_method="wilcox").pvalue)
            rows.append({
                "group": " / ".join(str(k) for k in key),
                "better": str(best), "other": str(other), "pairs": len(diff),
                "wins": int((diff > 0).sum()), "p": p,
            })
    result = pd.DataFrame(
        rows, columns=["group", "better", "other", "pairs", "wins", "p"]
    )
    result["p_holm"] = holm(result["p"].to_numpy()) if len(result) else []
    result["verdict"] = [_verdict(r) for r in result.itertuples()]
    return result


def _verdict(r) -> str:
    seeds = f"on {r.wins} of {r.pairs} seeds"
    if not math.isfinite(r.p_holm):
        return f"{r.better} ahead of {r.other} {seeds}; too few seeds for a test"
    if r.p_holm < ALPHA:
        return f"{r.better} beats {r.other} {seeds}, p = {r.p_holm:.2g} after Holm"
    return (f"no significant difference: {r.better} ahead of {r.other} {seeds}, "
            f"p = {r.p_holm:.2g} after Holm")


def bias_variance(cells: pd.DataFrame) -> pd.DataFrame:
    """The lecture notes' diagnosis per condition from its mean train and dev errors.

    The dev error is 1 - dev accuracy; a study without a dev split uses the test accuracy
    instead (column ``against`` says which). Conditions without both are skipped.

    Returns:
        Columns ``condition``, ``train_error``, ``dev_error``, ``against``,
        ``avoidable_bias``, ``variance``, ``diagnosis``.
    """
    rows = []
    for _, group in cells[cells["status"] == "done"].groupby("condition_id", sort=False):
        train = group["train_accuracy"].mean()
        against = "dev"
        held_out = group["dev_accuracy"].mean()
        if not np.isfinite(held_out):
            against, held_out = "test", group["test_accuracy"].mean()
        if not (np.isfinite(train) and np.isfinite(held_out)):
            continue
        d = bias_variance_diagnosis(1.0 - float(train), 1.0 - float(held_out))
        rows.append({
            "condition": group["condition"].iloc[0], "train_error": d.train_error,
            "dev_error": d.dev_error, "against": against,
            "avoidable_bias": d.avoidable_bias, "variance": d.variance,
            "diagnosis": d.diagnosis,
        })
    return pd.DataFrame(rows, columns=["condition", "train_error", "dev_error", "against",
                                       "avoidable_bias", "variance", "diagnosis"])
