"""Statistics over seeds: what a grid of accuracies says, and how sure it is.

Every function takes the ``cells`` DataFrame of a study (one row per trained model: the
axis columns ``dataset``, ``model``, ``activation``, ``loss``, ``lr``, ..., the ``seed``,
the ``status`` and the final metrics such as ``test_accuracy``) and returns a tidy
DataFrame. Cells whose status is ``"done"`` or ``"diverged"`` count (a diverged model
keeps the metrics of its last finite evaluation: leaving it out would flatter the loss
that diverged); pending, running and failed cells, and NaN metrics, do not.

* :func:`summarize`: per condition (all settings but the seed) the mean, std, number of
  seeds and a seeded 95 % bootstrap confidence interval of the mean.
* :func:`compare`: paired comparison of losses over the same seeds within otherwise
  identical conditions (the engine gives one seed the same initial weights and batches
  whatever the loss, so the seed's effect cancels in the difference): Wilcoxon
  signed-rank test, Holm's correction over every test of the table, wins / losses /
  ties and a verdict in plain words.
* :func:`rank_losses`: the rank of each loss per dataset (condition) and its average.
* :func:`diagnose`: the lecture notes' bias / variance diagnosis per condition.

Seeds: Janocha & Czarnecki 2017, section 3 (losses compared over several seeds of the
same experiment); Berlyand, Creese & Jabin 2021, section 3 (averages over 10 and 30
seeds); lecture notes 2018, section 6.2 (bias and variance from train and dev error).
"""

from __future__ import annotations

import inspect
import itertools
import math
import warnings
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from losslab.errors import LosslabError
from losslab.metrics.diagnosis import bias_variance_diagnosis

__all__ = [
    "CONDITION_AXES",
    "INTERVAL_METHOD",
    "bootstrap_ci",
    "compare",
    "diagnose",
    "holm",
    "rank_losses",
    "summarize",
    "t_interval",
    "wilcoxon_min_p",
]

#: The columns of ``cells`` that, with the seed, identify a cell (COMMON cells contract).
CONDITION_AXES = (
    "dataset",
    "model",
    "activation",
    "loss",
    "optimizer",
    "lr",
    "weight_decay",
    "label_noise_rate",
    "label_noise_kind",
    "input_noise_eps",
    "steps",
)
_USABLE = ("done", "diverged")
# scipy >= 1.15 names the bootstrap's generator ``rng``; older releases ``random_state``.
_RNG_KW = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"


def _higher_is_better(metric: str, higher_is_better: bool | None) -> bool:
    if higher_is_better is not None:
        return bool(higher_is_better)
    return not metric.endswith("_loss")


def _usable(cells: Any, metric: str, extra: Sequence[str] = ()) -> pd.DataFrame:
    """The finished cells with a finite ``metric``; checks the columns it needs."""
    if not isinstance(cells, pd.DataFrame):
        raise LosslabError(
            f"cells must be a pandas DataFrame (StudyResults.cells()), got {type(cells).__name__}"
        )
    if metric not in cells.columns:
        numeric = [c for c in cells.columns if c.endswith(("_accuracy", "_loss"))]
        raise LosslabError(
            f"metric {metric!r} is not a column of the cells; choose one of: "
            f"{', '.join(numeric) or 'none (no metric columns)'}"
        )
    missing = [c for c in ("loss", "seed", *extra) if c not in cells.columns]
    if missing:
        raise LosslabError(
            f"cells lack the column(s) {', '.join(missing)}; pass StudyResults.cells()"
        )
    frame = cells
    if "status" in frame.columns:
        frame = frame[frame["status"].isin(_USABLE)]
    values = pd.to_numeric(frame[metric], errors="coerce")
    return frame.assign(**{metric: values})[np.isfinite(values)]


def _condition_columns(cells: pd.DataFrame) -> list[str]:
    return [c for c in CONDITION_AXES if c in cells.columns]


def _groups(frame: pd.DataFrame, columns: list[str]):
    """``groupby`` that keeps NaN keys (e.g. no weight decay) and the order of appearance."""
    if not columns:
        yield (), frame
        return
    for key, group in frame.groupby(columns, dropna=False, sort=False):
        yield (key if isinstance(key, tuple) else (key,)), group


def _stable_seed(seed: int, key: Any) -> list[int]:
    """A generator seed for one condition that does not depend on the row order."""
    return [int(seed), zlib.crc32(repr(key).encode())]


#: The one interval method of losslab (report, :mod:`losslab.metrics.stats`, REPRODUCTION.md).
INTERVAL_METHOD = (
    "Student-t interval of the mean over seeds (for a paired effect: of the per-seed "
    "differences), intersected with the range the metric can take ([0, 1] for an accuracy, "
    "[-1, 1] for a difference of accuracies)"
)


def t_interval(
    values: Any,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> tuple[float, float, float]:
    """Mean of ``values`` and its Student-t confidence interval, kept inside ``bounds``.

    The one interval method of losslab: the report, :func:`summarize`, the paired
    comparisons and REPRODUCTION.md's verdicts all use it. Why Student t, for 3-10 seeds:
    with n values from a normal distribution its coverage is exact at every n, where any
    bootstrap interval is too narrow at small n (a nominal 95 % BCa interval covers about
    85 % at n = 5), and seed-to-seed spreads of final accuracies are close to normal.
    Why intersect with ``bounds``: the true mean lies inside the range the metric can take
    (an accuracy in [0, 1]), so cutting the interval to that range never removes the truth
    and keeps the coverage exactly, while no bar or band leaves the range.

    Args:
        values: (n,) finite numbers, e.g. one condition's test accuracy over its seeds, or
            the per-seed differences of a paired comparison.
        confidence: the confidence level in (0, 1) (default 0.95).
        bounds: ``(low, high)`` the metric's range, e.g. ``(0, 1)`` for an accuracy and
            ``(-1, 1)`` for a difference of accuracies; ``None`` for no range.

    Returns:
        ``(mean, low, high)``; ``low`` and ``high`` are NaN for fewer than 2 values, and
        equal to the mean when all values are equal.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise LosslabError(f"t_interval: values must be 1-D, got shape {x.shape}")
    if not 0.0 < confidence < 1.0:
        raise LosslabError(f"confidence must lie in (0, 1), got {confidence!r}")
    if bounds is not None and not bounds[0] < bounds[1]:
        raise LosslabError(f"bounds must be (low, high) with low < high, got {bounds!r}")
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1)) * sd / math.sqrt(x.size)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, float(bounds[0])), min(high, float(bounds[1]))
    return mean, low, high


def bootstrap_ci(
    values: Any,
    confidence: float = 0.95,
    method: str = "BCa",
    n_resamples: int = 9999,
    rng: np.random.Generator | int = 0,
) -> tuple[float, float]:
    """Bootstrap confidence interval of the mean of ``values``.

    The interval of :func:`scipy.stats.bootstrap` (Efron's BCa by default, or
    ``"percentile"`` / ``"basic"``). Fewer than 2 values give ``(nan, nan)``; equal values
    give the degenerate interval ``(v, v)``; when BCa is undefined (e.g. 2 seeds) the
    percentile interval is returned. With few seeds any bootstrap interval is too narrow
    (it cannot know the tails): with 5 seeds from a normal distribution a nominal 95 %
    interval covers only about 85 % of the time (measured over 2000 data sets).

    Args:
        values: (n,) finite numbers, e.g. one condition's test accuracy over its seeds.
        confidence: the confidence level in (0, 1) (default 0.95).
        method: ``"BCa"`` (default), ``"percentile"`` or ``"basic"``.
        n_resamples: bootstrap resamples (default 9999).
        rng: a ``numpy.random.Generator`` or integer seed (the only randomness used).

    Returns:
        ``(low, high)`` floats.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise LosslabError(f"bootstrap_ci: values must be 1-D, got shape {x.shape}")
    if not 0.0 < confidence < 1.0:
        raise LosslabError(f"confidence must lie in (0, 1), got {confidence!r}")
    if method not in ("BCa", "percentile", "basic"):
        raise LosslabError(f"method must be 'BCa', 'percentile' or 'basic', got {method!r}")
    if x.size < 2:
        return math.nan, math.nan
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    for how in dict.fromkeys((method, "percentile")):
        with warnings.catch_warnings():
            # BCa on 2-3 distinct values can be undefined; scipy warns and returns NaN.
            warnings.simplefilter("ignore")
            ci = stats.bootstrap(
                (x,),
                np.mean,
                confidence_level=confidence,
                method=how,
                n_resamples=n_resamples,
                vectorized=True,
                **{_RNG_KW: generator},
            ).confidence_interval
        if np.isfinite(ci.low) and np.isfinite(ci.high):
            return float(ci.low), float(ci.high)
    return math.nan, math.nan


def summarize(
    cells: pd.DataFrame,
    metric: str = "test_accuracy",
    *,
    confidence: float = 0.95,
    method: str = "BCa",
    n_resamples: int = 9999,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean, std and bootstrap CI of ``metric`` over the seeds of each condition.

    Args:
        cells: the cells DataFrame (``StudyResults.cells()``).
        metric: the column to summarise (default ``"test_accuracy"``).
        confidence, method, n_resamples: as :func:`bootstrap_ci`.
        seed: seed of the bootstrap; each condition draws from its own stream derived from
            this seed and the condition, so adding a condition changes no other interval.

    Returns:
        One row per condition: ``condition_id`` and ``condition`` (when present), the
        condition axes, ``metric``, ``n`` (seeds), ``n_diverged``, ``mean``, ``std``
        (ddof 1; NaN for one seed), ``ci_low``, ``ci_high``.
    """
    frame = _usable(cells, metric)
    keys = [c for c in ("condition_id",) if c in frame.columns] or _condition_columns(frame)
    rows = []
    for key, group in _groups(frame, keys):
        x = group[metric].to_numpy(dtype=np.float64)
        low, high = bootstrap_ci(
            x, confidence, method, n_resamples, np.random.default_rng(_stable_seed(seed, key))
        )
        first = group.iloc[0]
        row = {c: first[c] for c in ("condition_id", "condition") if c in group.columns}
        row.update({c: first[c] for c in _condition_columns(group)})
        n_div = int((group["status"] == "diverged").sum()) if "status" in group else 0
        row.update(
            metric=metric,
            n=len(x),
            n_diverged=n_div,
            mean=float(x.mean()),
            std=float(x.std(ddof=1)) if len(x) > 1 else math.nan,
            ci_low=low,
            ci_high=high,
        )
        rows.append(row)
    return pd.DataFrame(rows)


def holm(p_values: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error control).

    .. math:: \\tilde p_{(i)} = \\max_{j \\le i} \\min\\bigl(1, (m - j + 1)\\, p_{(j)}\\bigr)

    for the p-values sorted ascending, ``p_(1) <= ... <= p_(m)``. Rejecting every
    hypothesis with ``adjusted < alpha`` keeps the chance of any false rejection below
    alpha (Holm 1979). NaN entries are not tests: they stay NaN and do not count in ``m``.

    Args:
        p_values: (m,) p-values in [0, 1] or NaN.

    Returns:
        (m,) float64 adjusted p-values in the input order.
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise LosslabError(f"holm: p_values must be 1-D, got shape {p.shape}")
    finite = np.flatnonzero(~np.isnan(p))
    if ((p[finite] < 0) | (p[finite] > 1)).any():
        raise LosslabError("holm: p-values must lie in [0, 1]")
    adjusted = np.full_like(p, np.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


def wilcoxon_min_p(n: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can give.

    With ``n`` non-zero differences the statistic has ``2**n`` equally likely sign
    patterns under the null, of which only "all positive" and "all negative" are as
    extreme as all of one sign: ``p_min = 2 / 2**n`` (so 5 seeds can never reach 0.05,
    6 seeds can: 0.03125).
    """
    return min(1.0, 2.0 / 2.0**n) if n >= 1 else 1.0


def _format_diff(metric: str, value: float) -> str:
    if metric.endswith("accuracy"):
        points = 100 * value
        # hundredths of a point, unless that would print a real difference as 0.00
        text = f"{points:+.2f}" if points == 0 or abs(points) >= 0.005 else f"{points:+.1g}"
        return f"{text} points"
    return f"{value:+.3g}"


def _format_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _verdict(row: dict[str, Any], metric: str, alpha: float, better: bool) -> tuple[str, str]:
    """(outcome, verdict) of one paired comparison; see :func:`compare`."""
    a, b, n = row["loss"], row["versus"], row["n"]
    if n == 0:
        return "no shared seeds", f"{a} and {b} share no finished seed: nothing to compare"
    if row["n_nonzero"] == 0:
        return "identical", f"{a} and {b} score the same on all {n} seeds"
    diff, noise = row["mean_diff"], row["noise"]
    # the side ahead on average; with equal means (up to float64 rounding of the mean of
    # metrics of order 1), the side with more winning seeds
    level = abs(diff) <= 1e-12
    a_better = row["wins"] >= row["losses"] if level else (diff > 0) == better
    winner, loser = (a, b) if a_better else (b, a)
    won = row["wins"] if a_better else row["losses"]
    size = _format_diff(metric, abs(diff))
    lead = (
        f"equal on average, {winner} ahead on {won} of {n} seeds"
        if level
        else f"{winner} better by {size} on average, on {won} of {n} seeds"
    )
    noise_text = _format_diff(metric, noise).lstrip("+") if np.isfinite(noise) else "unknown"
    if row["p_holm"] < alpha:
        claim = (
            f"{winner} beats {loser} on {won} of {n} seeds (mean {size}), "
            f"p = {_format_p(row['p_holm'])} after Holm"
        )
        if abs(diff) < noise:
            return "within noise", (
                f"{claim}, but the difference is smaller than the seed-to-seed noise "
                f"({noise_text}): consistent, yet too small to matter"
            )
        return ("better" if a_better else "worse"), claim
    if wilcoxon_min_p(row["n_nonzero"]) >= alpha:
        need = next(k for k in itertools.count(1) if wilcoxon_min_p(k) < alpha)
        return "too few seeds", (
            f"too few seeds to tell: {row['n_nonzero']} seeds differ, which give at best "
            f"p = {_format_p(wilcoxon_min_p(row['n_nonzero']))}; at least {need} are needed "
            f"(so far {lead})"
        )
    relation = "smaller than" if abs(diff) < noise else "against"
    return "no significant difference", (
        f"no significant difference: {lead}, {relation} a seed-to-seed noise of {noise_text}, "
        f"p = {_format_p(row['p_holm'])} after Holm"
    )


def compare(
    cells: pd.DataFrame,
    reference: str | None = "log",
    metric: str = "test_accuracy",
    *,
    within: Sequence[str] | None = None,
    alpha: float = 0.05,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Paired comparison of losses over the same seeds, with Holm-corrected Wilcoxon tests.

    Within each group of cells that agree on every column of ``within`` (the
    "otherwise identical" conditions), each loss is paired with ``reference`` (or, with
    ``reference=None``, every pair of losses) seed by seed. For the paired differences
    ``d_s = metric(loss, s) - metric(versus, s)``:

    * ``wins`` / ``losses`` / ``ties``: seeds where ``loss`` is better / worse / equal;
    * ``mean_diff`` (mean of ``d``) and ``noise``, the seed-to-seed standard deviation of
      the metric within a condition (root mean square of the two conditions' std);
    * the two-sided Wilcoxon signed-rank test of ``d`` (:func:`scipy.stats.wilcoxon`,
      zero differences dropped, exact for small samples) and its Holm-adjusted p-value
      over every test in the returned table.

    ``outcome`` is ``"better"`` / ``"worse"`` (``loss`` vs ``versus``) when the adjusted
    p-value is below ``alpha`` AND the mean difference is at least the seed-to-seed noise;
    ``"within noise"`` when the test is significant but the difference is smaller than
    that noise (a consistent effect too small to matter: flagged as not significant);
    otherwise ``"no significant difference"``, ``"too few seeds"`` (fewer differing seeds
    than the exact test needs to reach ``alpha``, see :func:`wilcoxon_min_p`),
    ``"identical"`` or ``"no shared seeds"``. ``verdict`` says it in words, e.g.
    ``"hinge beats log on 8 of 10 seeds (mean +1.20 points), p = 0.02 after Holm"``.

    Args:
        cells: the cells DataFrame (``StudyResults.cells()``).
        reference: the loss (a ``loss`` label, or a ``loss_name`` with one label) every
            other loss is compared with; ``None`` compares all pairs.
        metric: the column compared (default ``"test_accuracy"``).
        within: columns that define otherwise-identical conditions; default every
            condition axis but ``loss`` (pass it without ``lr`` / ``weight_decay`` when
            each loss ran at its own tuned values).
        alpha: family-wise significance level (default 0.05).
        higher_is_better: default: False for metrics ending in ``_loss``, else True.

    Returns:
        One row per comparison: the ``within`` columns, ``loss``, ``versus``, ``n`` (paired
        seeds), ``n_nonzero``, ``wins``, ``losses``, ``ties``, ``mean_diff``, ``noise``,
        ``statistic``, ``p_value``, ``p_holm``, ``outcome``, ``verdict``.
    """
    if not 0.0 < alpha < 1.0:
        raise LosslabError(f"alpha must lie in (0, 1), got {alpha!r}")
    better = _higher_is_better(metric, higher_is_better)
    frame = _usable(cells, metric)
    if within is None:
        within = [c for c in _condition_columns(frame) if c != "loss"]
    else:
        within = list(within)
        unknown = [c for c in within if c not in frame.columns]
        if unknown or "loss" in within or "seed" in within:
            raise LosslabError(
                f"within must name condition columns other than loss and seed; got {within}"
            )
    labels = list(dict.fromkeys(frame["loss"]))
    if reference is not None:
        if reference not in labels and "loss_name" in frame.columns:
            named = list(dict.fromkeys(frame.loc[frame["loss_name"] == reference, "loss"]))
            if len(named) == 1:
                reference = named[0]
        if reference not in labels:
            raise LosslabError(
                f"reference loss {reference!r} has no finished cells; choose one of: "
                f"{', '.join(map(str, labels))}"
            )
    rows = []
    for key, group in _groups(frame, within):
        present = list(dict.fromkeys(group["loss"]))
        if reference is None:
            pairs = list(itertools.combinations(present, 2))
        elif reference in present:
            pairs = [(a, reference) for a in present if a != reference]
        else:
            continue
        by_loss = {name: sub for name, sub in group.groupby("loss", sort=False)}
        context = dict(zip(within, key, strict=True))
        for a, b in pairs:
            rows.append(_paired(by_loss[a], by_loss[b], metric, better, context))
    columns = [
        *within,
        "loss",
        "versus",
        "n",
        "n_nonzero",
        "wins",
        "losses",
        "ties",
        "mean_diff",
        "noise",
        "statistic",
        "p_value",
    ]
    table = pd.DataFrame(rows, columns=columns)
    table["p_holm"] = holm(table["p_value"].to_numpy(dtype=np.float64))
    verdicts = [_verdict(r, metric, alpha, better) for r in table.to_dict("records")]
    table["outcome"] = [v[0] for v in verdicts]
    table["verdict"] = [v[1] for v in verdicts]
    return table


def _paired(
    a: pd.DataFrame, b: pd.DataFrame, metric: str, better: bool, context: dict[str, Any]
) -> dict[str, Any]:
    for side in (a, b):
        if side["seed"].duplicated().any():
            raise LosslabError(
                f"loss {side['loss'].iloc[0]!r} has several cells per seed in one condition "
                f"({context}); add the axis that differs to within="
            )
    joined = a[["seed", metric]].merge(b[["seed", metric]], on="seed", suffixes=("_a", "_b"))
    x, y = joined[f"{metric}_a"].to_numpy(float), joined[f"{metric}_b"].to_numpy(float)
    d = x - y
    sign = 1.0 if better else -1.0
    nonzero = int(np.count_nonzero(d))
    statistic = p = math.nan
    if nonzero:
        test = stats.wilcoxon(d, zero_method="wilcox", alternative="two-sided")
        statistic, p = float(test.statistic), float(test.pvalue)
    std_a = x.std(ddof=1) if len(x) > 1 else math.nan
    std_b = y.std(ddof=1) if len(y) > 1 else math.nan
    return {
        **context,
        "loss": a["loss"].iloc[0],
        "versus": b["loss"].iloc[0],
        "n": len(d),
        "n_nonzero": nonzero,
        "wins": int(np.sum(sign * d > 0)),
        "losses": int(np.sum(sign * d < 0)),
        "ties": int(np.sum(d == 0)),
        "mean_diff": float(d.mean()) if len(d) else math.nan,
        "noise": float(math.sqrt((std_a**2 + std_b**2) / 2)),
        "statistic": statistic,
        "p_value": p,
    }


def rank_losses(
    cells: pd.DataFrame,
    metric: str = "test_accuracy",
    *,
    within: Sequence[str] | None = None,
    higher_is_better: bool | None = None,
) -> pd.DataFrame:
    """Rank of each loss (1 = best, by mean over seeds) per condition, and the average rank.

    A condition is a group of cells equal on every ``within`` column (default: every
    condition axis but ``loss``, e.g. one dataset with one model). Tied means share their
    average rank. The average rank over conditions (Demšar 2006's summary of many
    classifiers over many data sets) is taken over the conditions a loss ran in.

    Args:
        cells: the cells DataFrame.
        metric: the column ranked (default ``"test_accuracy"``).
        within: columns of one condition (as :func:`compare`).
        higher_is_better: default: False for metrics ending in ``_loss``, else True.

    Returns:
        One row per loss (index ``loss``), sorted by ``mean_rank``: one column per
        condition (labelled by the values of its ``within`` columns that vary, or
        ``"all"``), then ``mean_rank`` and ``conditions`` (how many it was ranked in).
    """
    better = _higher_is_better(metric, higher_is_better)
    frame = _usable(cells, metric)
    if within is None:
        within = [c for c in _condition_columns(frame) if c != "loss"]
    varying = [c for c in within if frame[c].nunique(dropna=False) > 1]
    columns: dict[str, pd.Series] = {}
    for key, group in _groups(frame, varying):
        means = group.groupby(
            ["loss", *[c for c in within if c not in varying]], dropna=False, sort=False
        )[metric].mean()
        if means.index.get_level_values("loss").duplicated().any():
            raise LosslabError(
                "a loss has several settings per condition; add the axis that differs to within="
            )
        means.index = means.index.get_level_values("loss")
        label = " / ".join(_short(v) for v in key) if key else "all"
        columns[label] = means.rank(ascending=not better, method="average")
    table = pd.DataFrame(columns)
    table.index.name = "loss"
    table["mean_rank"] = table.mean(axis=1)
    table["conditions"] = table.drop(columns="mean_rank").notna().sum(axis=1)
    return table.sort_values("mean_rank", kind="stable")


def _short(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def diagnose(cells: pd.DataFrame, *, bayes_error: float = 0.0, tol: float = 0.05) -> pd.DataFrame:
    """The lecture notes' bias / variance diagnosis of each condition, over its seeds.

    Errors are ``1 - accuracy`` averaged over the seeds; the held-out error is the dev
    error, or the test error for studies without a dev split (column ``held_out``). The
    case follows :func:`losslab.metrics.bias_variance_diagnosis` (lecture notes 2018,
    section 6.2, Table 1): high bias when ``train_error - bayes_error > tol``, high
    variance when ``held-out error - train_error > tol``.

    Args:
        cells: the cells DataFrame (needs ``train_accuracy`` and ``dev_accuracy`` or
            ``test_accuracy``).
        bayes_error: the lowest achievable error, a fraction (default 0).
        tol: how large a gap counts as high (default 0.05).

    Returns:
        One row per condition: the condition columns, ``n``, ``held_out`` ("dev"/"test"),
        ``train_error``, ``held_out_error``, ``avoidable_bias``, ``variance``,
        ``diagnosis`` and ``advice``.
    """
    frame = _usable(cells, "train_accuracy")
    keys = [c for c in ("condition_id",) if c in frame.columns] or _condition_columns(frame)
    rows = []
    for _, group in _groups(frame, keys):
        dev = pd.to_numeric(group.get("dev_accuracy"), errors="coerce")
        split = "dev" if dev is not None and np.isfinite(dev).all() else "test"
        held = pd.to_numeric(group.get(f"{split}_accuracy"), errors="coerce")
        if held is None or not np.isfinite(held).all():
            continue
        train_error = float(1.0 - group["train_accuracy"].mean())
        held_error = float(1.0 - held.mean())
        result = bias_variance_diagnosis(
            min(max(train_error, 0.0), 1.0), min(max(held_error, 0.0), 1.0), bayes_error, tol
        )
        first = group.iloc[0]
        row = {c: first[c] for c in ("condition_id", "condition") if c in group.columns}
        row.update({c: first[c] for c in _condition_columns(group)})
        row.update(
            n=len(group),
            held_out=split,
            train_error=result.train_error,
            held_out_error=result.dev_error,
            avoidable_bias=result.avoidable_bias,
            variance=result.variance,
            diagnosis=result.diagnosis,
            advice="; ".join(result.advice),
        )
        rows.append(row)
    return pd.DataFrame(rows)
