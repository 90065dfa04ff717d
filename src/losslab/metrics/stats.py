"""Statistics over seeds: what a grid of accuracies says, and how sure it is.

Every function takes the ``cells`` DataFrame of a study (one row per trained model: the
axis columns ``dataset``, ``model``, ``activation``, ``loss``, ``lr``, ..., the ``seed``,
the ``status`` and the final metrics such as ``test_accuracy``) and returns a tidy
DataFrame. Cells whose status is ``"done"`` or ``"diverged"`` count (a diverged model
keeps the metrics of its last finite evaluation: leaving it out would flatter the loss
that diverged); pending, running and failed cells, and NaN metrics, do not.

* :func:`t_interval`: the one interval method (:data:`INTERVAL_METHOD`): Student t over
  seeds, cut to the metric's range (:func:`metric_bounds`).
* :func:`summarize`: per condition (all settings but the seed) the mean, std, number of
  seeds and the 95 % :func:`t_interval` of the mean.
* :func:`compare`: paired comparison of losses over the same seeds within otherwise
  identical conditions (the engine gives one seed the same initial weights and batches
  whatever the loss, so the seed's effect cancels in the difference): paired t-test and
  t interval of the per-seed differences (:func:`paired_t`), Holm's correction within
  each declared family (the comparisons of one condition), the seeds a 1-point difference
  would need (:func:`seeds_needed`) and a verdict in plain words.
* :func:`rank_losses`: the rank of each loss per dataset (condition) and its average.
* :func:`diagnose`: the lecture notes' bias / variance diagnosis per condition, against
  the accuracy reachable under the condition's label noise.

Seeds: Janocha & Czarnecki 2017, section 3 (losses compared over several seeds of the
same experiment); Berlyand, Creese & Jabin 2021, section 3 (averages over 10 and 30
seeds); lecture notes 2018, section 6.2 (bias and variance from train and dev error).
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from losslab.errors import LosslabError
from losslab.metrics.diagnosis import bias_variance_diagnosis, reachable_accuracy

__all__ = [
    "CONDITION_AXES",
    "INTERVAL_METHOD",
    "bootstrap_ci",
    "compare",
    "diagnose",
    "holm",
    "metric_bounds",
    "paired_power",
    "paired_t",
    "rank_losses",
    "seeds_needed",
    "summarize",
    "t_interval",
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


def _groups(
    frame: pd.DataFrame, columns: list[str]
) -> Iterator[tuple[tuple[Any, ...], pd.DataFrame]]:
    """``groupby`` that keeps NaN keys (e.g. no weight decay) and the order of appearance."""
    if not columns:
        yield (), frame
        return
    for key, group in frame.groupby(columns, dropna=False, sort=False):
        yield (key if isinstance(key, tuple) else (key,)), group


def metric_bounds(metric: str, difference: bool = False) -> tuple[float, float] | None:
    """The range a metric column can take, for :func:`t_interval`'s ``bounds``.

    ``(0, 1)`` for an accuracy (a column whose name ends in ``accuracy``), ``(-1, 1)`` for a
    difference of two accuracies (``difference=True``), ``None`` (no range) otherwise:
    losses such as Tanimoto's can be negative and have no upper bound.
    """
    if not metric.endswith("accuracy"):
        return None
    return (-1.0, 1.0) if difference else (0.0, 1.0)


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
    and keeps the coverage exactly, while no bar or band leaves the range. The price of
    exact coverage is width at the smallest studies: the half-width is t times the
    standard error, t = 4.30 at 3 seeds, 2.78 at 5, 2.26 at 10 (1.96 for many).

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
) -> pd.DataFrame:
    """Mean, std and :func:`t_interval` of ``metric`` over the seeds of each condition.

    The interval is the one method of :data:`INTERVAL_METHOD`, cut to the metric's range
    (:func:`metric_bounds`: [0, 1] for accuracies), so no interval leaves it.

    Args:
        cells: the cells DataFrame (``StudyResults.cells()``).
        metric: the column to summarise (default ``"test_accuracy"``).
        confidence: the confidence level in (0, 1) (default 0.95).

    Returns:
        One row per condition: ``condition_id`` and ``condition`` (when present), the
        condition axes, ``metric``, ``n`` (seeds), ``n_diverged``, ``mean``, ``std``
        (ddof 1; NaN for one seed), ``ci_low``, ``ci_high`` (NaN for one seed).
    """
    frame = _usable(cells, metric)
    keys = [c for c in ("condition_id",) if c in frame.columns] or _condition_columns(frame)
    bounds = metric_bounds(metric)
    rows = []
    for _, group in _groups(frame, keys):
        x = group[metric].to_numpy(dtype=np.float64)
        mean, low, high = t_interval(x, confidence, bounds)
        first = group.iloc[0]
        row = {c: first[c] for c in ("condition_id", "condition") if c in group.columns}
        row.update({c: first[c] for c in _condition_columns(group)})
        n_div = int((group["status"] == "diverged").sum()) if "status" in group else 0
        row.update(
            metric=metric,
            n=len(x),
            n_diverged=n_div,
            mean=mean,
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


def paired_t(
    differences: Any, confidence: float = 0.95, bounds: tuple[float, float] | None = None
) -> tuple[float, float, float, float, float]:
    """Paired t-test and :func:`t_interval` of per-seed differences.

    .. math:: t = \\frac{\\bar d}{s_d / \\sqrt{n}}, \\qquad
        p = 2\\, P(T_{n-1} > |t|)

    the two-sided one-sample t-test of the mean difference against 0 (the t and p of
    :func:`scipy.stats.ttest_1samp`, which equals :func:`scipy.stats.ttest_rel` on the two
    samples). When every difference is the same non-zero number (``s_d = 0``) the sign is
    certain on these seeds: ``t = +-inf``, ``p = 0``.

    Power: at n = 5 seeds and alpha = 0.05 the test detects (power 0.8) a mean difference
    of 1.68 standard deviations of the per-seed differences; with Holm over m = 11
    comparisons, 3.23 (:func:`paired_power`). Example: log loss against a loss 20 points
    worse whose per-seed differences spread by 3 points (6.7 sd) is detected with power
    above 0.999 even after Holm over 11.

    Args:
        differences: (n,) finite per-seed differences ``metric(a, s) - metric(b, s)``.
        confidence: level of the interval (default 0.95).
        bounds: the range of a difference (``(-1, 1)`` for accuracies), or ``None``.

    Returns:
        ``(mean, ci_low, ci_high, t, p)``; interval, t and p are NaN for fewer than 2
        differences; t and p are NaN when every difference is 0 (no test: nothing
        differs, and Holm's family does not count it).
    """
    d = np.asarray(differences, dtype=np.float64)
    mean, low, high = t_interval(d, confidence, bounds)
    if d.size < 2:
        return mean, low, high, math.nan, math.nan
    if np.all(d == d[0]):
        if d[0] == 0:
            return mean, low, high, math.nan, math.nan
        return mean, low, high, math.copysign(math.inf, d[0]), 0.0
    # the one-sample t-test written out: scipy.stats.ttest_1samp gives the same t and p
    # (tested) at a hundred times the cost, which the power simulations feel
    t = mean / (float(d.std(ddof=1)) / math.sqrt(d.size))
    return mean, low, high, t, float(2 * stats.t.sf(abs(t), d.size - 1))


def paired_power(effect: float, sd: float, n: int, alpha: float = 0.05) -> float:
    """Power of the two-sided paired t-test at level ``alpha`` with ``n`` seeds.

    .. math:: \\beta = P(T'_{n-1,\\delta} > t_c) + P(T'_{n-1,\\delta} < -t_c), \\quad
        \\delta = \\frac{|\\text{effect}|}{sd}\\sqrt{n}, \\quad t_c = t_{1-\\alpha/2,\\,n-1}

    with :math:`T'` the noncentral t distribution (:data:`scipy.stats.nct`), for normally
    distributed per-seed differences of mean ``effect`` and standard deviation ``sd``.

    Args:
        effect: the true mean difference (e.g. 0.01 for one accuracy point).
        sd: the standard deviation of the per-seed differences, > 0.
        n: the number of seeds, >= 2.
        alpha: the significance level, in (0, 1) (Holm: alpha / m for the smallest p).

    Returns:
        The probability of p < alpha, in [alpha, 1].
    """
    if not (sd > 0 and math.isfinite(sd)):
        raise LosslabError(f"paired_power: sd must be a positive number, got {sd!r}")
    if int(n) < 2:
        raise LosslabError(f"paired_power: n must be at least 2 seeds, got {n!r}")
    if not 0.0 < alpha < 1.0:
        raise LosslabError(f"alpha must lie in (0, 1), got {alpha!r}")
    df = int(n) - 1
    crit = float(stats.t.ppf(1 - alpha / 2, df))
    nc = abs(float(effect)) / float(sd) * math.sqrt(int(n))
    # P(T < -crit | nc) as the upper tail at -nc: scipy's nct.cdf returns NaN for some
    # far lower tails (nc ~ 14-40, df = 4), its sf does not
    return float(stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc))


def seeds_needed(
    sd: float, delta: float = 0.01, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Smallest number of seeds with which a paired t-test detects a difference ``delta``.

    The smallest n >= 2 with :func:`paired_power` ``(delta, sd, n, alpha) >= power``: with
    the observed spread ``sd`` of the per-seed differences, how many seeds would detect a
    1-point difference (the defaults: delta = 0.01 accuracy, power 0.8, two-sided alpha
    0.05). At n = 5 the test has power 0.8 for a difference of 1.68 sd, so a spread of
    at most 0.59 points lets 5 seeds detect 1 point.

    Args:
        sd: standard deviation of the per-seed differences (NaN: unknown).
        delta: the difference to detect, > 0 (default 0.01, one accuracy point).
        alpha: two-sided significance level (default 0.05).
        power: the wanted power in (0, 1) (default 0.8).

    Returns:
        n as a float; 2.0 when ``sd == 0``; NaN when ``sd`` is NaN.
    """
    if not delta > 0:
        raise LosslabError(f"seeds_needed: delta must be > 0, got {delta!r}")
    if not 0.0 < power < 1.0:
        raise LosslabError(f"power must lie in (0, 1), got {power!r}")
    if not math.isfinite(sd):
        return math.nan
    if sd <= 0:
        return 2.0
    # the normal approximation is a lower bound for the t-test's n; step up from it
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    n = max(2, math.floor((z * sd / delta) ** 2))
    while paired_power(delta, sd, n, alpha) < power:
        n += 1
    return float(n)


def _format_diff(metric: str, value: float) -> str:
    if metric.endswith("accuracy"):
        points = 100 * value
        # hundredths of a point, unless that would print a real difference as 0.00
        text = f"{points:+.2f}" if points == 0 or abs(points) >= 0.005 else f"{points:+.1g}"
        return f"{text} points"
    return f"{value:+.3g}"


def _format_ci(metric: str, low: float, high: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval"
    scale, unit = (100.0, " points") if metric.endswith("accuracy") else (1.0, "")
    return f"95% CI [{scale * low:+.2f}, {scale * high:+.2f}]{unit}"


def _format_p(p: float) -> str:
    return f"{p:.2g}" if p >= 0.001 else f"{p:.1e}"


def _verdict(row: dict[str, Any], metric: str, alpha: float, better: bool) -> tuple[str, str]:
    """(outcome, verdict) of one paired comparison; see :func:`compare`."""
    a, b, n = row["loss"], row["versus"], row["n"]
    if n == 0:
        return "no shared seeds", f"{a} and {b} share no finished seed: nothing to compare"
    if row["ties"] == n:
        return "identical", f"{a} and {b} score the same on all {n} seeds"
    if n < 2:
        return "too few seeds", (
            f"too few seeds to tell: {a} and {b} share 1 seed; a paired test needs at least 2"
        )
    diff = row["mean_diff"]
    a_better = (diff > 0) == better if diff != 0 else row["wins"] >= row["losses"]
    winner, loser = (a, b) if a_better else (b, a)
    won = row["wins"] if a_better else row["losses"]
    ci = _format_ci(metric, row["ci_low"], row["ci_high"])
    family = f"Holm over {row['family']}" if row["family"] > 1 else "one comparison"
    p_text = f"p = {_format_p(row['p_holm'])} ({family})"
    if row["p_holm"] < alpha:
        size = _format_diff(metric, abs(diff))
        return ("better" if a_better else "worse"), (
            f"{winner} beats {loser} by {size} ({a} - {b}: {ci}), {p_text}; "
            f"ahead on {won} of {n} seeds"
        )
    need = row["seeds_needed"]
    unit = "1-point" if metric.endswith("accuracy") else "0.01"
    more = (
        f"; at this spread about {need:.0f} seeds would detect a {unit} difference"
        if math.isfinite(need)
        else ""
    )
    return "no significant difference", (
        f"no significant difference: {a} - {b} = {_format_diff(metric, diff)} ({ci}), "
        f"{p_text}{more}"
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
    """Paired comparison of losses over the same seeds: paired t, Holm within each family.

    Within each group of cells that agree on every column of ``within`` (one condition:
    the other axes fixed), each loss is paired with ``reference`` (or, with
    ``reference=None``, every pair of losses) seed by seed. The comparisons of one group
    are one declared family; Holm's correction runs within it, not over the whole table
    (a reader asks "which losses beat log on digits under 40 % noise?", one question per
    condition). For the paired differences ``d_s = metric(loss, s) - metric(versus, s)``:

    * ``wins`` / ``losses`` / ``ties``: seeds where ``loss`` is better / worse / equal;
    * ``mean_diff`` with its :func:`t_interval` ``ci_low`` / ``ci_high`` (cut to
      [-1, 1] for accuracies) and ``sd_diff``, the standard deviation of ``d``;
    * the two-sided paired t-test (:func:`paired_t`): ``statistic`` and ``p_value``, and
      ``p_holm`` within the family of ``family`` comparisons;
    * ``seeds_needed``: how many seeds would detect a difference of 0.01 (one accuracy
      point) at the observed ``sd_diff`` with power 0.8 (:func:`seeds_needed`).

    The paired t-test can decide at 5 seeds (its power there: :func:`paired_power`; the
    exact Wilcoxon test cannot go below p = 2 / 2^5 = 0.0625). ``outcome`` is
    ``"better"`` / ``"worse"`` (``loss`` vs ``versus``) when ``p_holm < alpha``, else
    ``"no significant difference"``, ``"identical"`` (all differences 0), ``"too few
    seeds"`` (one shared seed) or ``"no shared seeds"``. ``verdict`` says it in words, e.g.
    ``"hinge beats log by +1.20 points (hinge - log: 95% CI [+0.40, +2.00] points),
    p = 0.02 (Holm over 3); ahead on 8 of 10 seeds"``.

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
        seeds), ``wins``, ``losses``, ``ties``, ``mean_diff``, ``ci_low``, ``ci_high``,
        ``sd_diff``, ``statistic``, ``p_value``, ``family``, ``p_holm``, ``seeds_needed``,
        ``outcome``, ``verdict``.
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
    bounds = metric_bounds(metric, difference=True)
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
        family = [_paired(by_loss[a], by_loss[b], metric, better, bounds, context)
                  for a, b in pairs]
        adjusted = holm(np.array([r["p_value"] for r in family], dtype=np.float64))
        tests = int(np.count_nonzero(np.isfinite(adjusted)))
        for r, p in zip(family, adjusted, strict=True):
            rows.append({**r, "family": tests, "p_holm": float(p)})
    columns = [
        *within, "loss", "versus", "n", "wins", "losses", "ties", "mean_diff", "ci_low",
        "ci_high", "sd_diff", "statistic", "p_value", "family", "p_holm", "seeds_needed",
    ]
    table = pd.DataFrame(rows, columns=columns)
    verdicts = [_verdict(r, metric, alpha, better) for r in table.to_dict("records")]
    table["outcome"] = [v[0] for v in verdicts]
    table["verdict"] = [v[1] for v in verdicts]
    return table


def _paired(
    a: pd.DataFrame,
    b: pd.DataFrame,
    metric: str,
    better: bool,
    bounds: tuple[float, float] | None,
    context: dict[str, Any],
) -> dict[str, Any]:
    for side in (a, b):
        if side["seed"].duplicated().any():
            raise LosslabError(
                f"loss {side['loss'].iloc[0]!r} has several cells per seed in one condition "
                f"({context}); add the axis that differs to within="
            )
    joined = a[["seed", metric]].merge(b[["seed", metric]], on="seed", suffixes=("_a", "_b"))
    d = joined[f"{metric}_a"].to_numpy(float) - joined[f"{metric}_b"].to_numpy(float)
    sign = 1.0 if better else -1.0
    mean, low, high, t, p = paired_t(d, bounds=bounds)
    sd = float(d.std(ddof=1)) if len(d) > 1 else math.nan
    return {
        **context,
        "loss": a["loss"].iloc[0],
        "versus": b["loss"].iloc[0],
        "n": len(d),
        "wins": int(np.sum(sign * d > 0)),
        "losses": int(np.sum(sign * d < 0)),
        "ties": int(np.sum(d == 0)),
        "mean_diff": mean,
        "ci_low": low,
        "ci_high": high,
        "sd_diff": sd,
        "statistic": t,
        "p_value": p,
        "seeds_needed": seeds_needed(sd),
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


def _noise_test(group: pd.DataFrame) -> bool:
    """Whether the cells' held-out labels were noised too (``noise_test`` in their config)."""
    config = group["config"].iloc[0] if "config" in group.columns else None
    if not isinstance(config, str):
        return False
    try:
        dataset = json.loads(config).get("dataset", {})
    except ValueError:
        return False
    return bool(dataset.get("noise_test", False)) if isinstance(dataset, dict) else False


def _references(group: pd.DataFrame, bayes_error: float | None) -> tuple[float, float, str]:
    """(train Bayes error, held-out Bayes error, which reference) of one condition."""
    if bayes_error is not None:
        return bayes_error, bayes_error, f"given Bayes error {bayes_error:.2%}"
    first = group.iloc[0]
    rate = float(first["label_noise_rate"]) if "label_noise_rate" in group.columns else 0.0
    if not rate > 0:
        return 0.0, 0.0, "clean labels: Bayes error 0"
    kind = str(first["label_noise_kind"]) if "label_noise_kind" in group.columns else (
        "symmetric")
    classes = first["num_classes"] if "num_classes" in group.columns else None
    classes = int(classes) if classes is not None and np.isfinite(classes) else None
    reach = reachable_accuracy(rate, kind, classes)
    if _noise_test(group):
        return 1 - reach, 1 - reach, (
            f"{rate:g} {kind} label noise on every split: reachable accuracy {reach:.2%}"
        )
    return 1 - reach, 0.0, (
        f"{rate:g} {kind} label noise on the training labels: reachable train accuracy "
        f"{reach:.2%}; held-out labels clean: Bayes error 0"
    )


def diagnose(
    cells: pd.DataFrame, *, bayes_error: float | None = None, tol: float = 0.05
) -> pd.DataFrame:
    """The lecture notes' bias / variance diagnosis of each condition, over its seeds.

    Errors are ``1 - accuracy`` averaged over the seeds; the held-out error is the dev
    error, or the test error for studies without a dev split (column ``held_out``). The
    case follows :func:`losslab.metrics.bias_variance_diagnosis` (lecture notes 2018,
    section 6.2, Table 1): high bias when ``train_error - train Bayes error > tol``, high
    variance when the held-out excess error exceeds the train excess error by ``tol``.

    The references take injected label noise into account: the training labels of a
    condition with ``label_noise_rate`` r of kind k can be fitted at best to
    :func:`losslab.metrics.reachable_accuracy` ``(r, k)`` (``1 - r`` for symmetric and
    for pair-flip noise below 1/2) by a model of the inputs, so their Bayes error is one
    minus that; the held-out labels are clean (Bayes error 0) unless the cell's config
    says ``noise_test``. Column ``reference`` says which was used.

    Args:
        cells: the cells DataFrame (needs ``train_accuracy`` and ``dev_accuracy`` or
            ``test_accuracy``; uses ``label_noise_rate``, ``label_noise_kind``, and
            ``num_classes`` and ``config`` when present).
        bayes_error: one Bayes error for every set and condition, a fraction; default
            ``None``: from the noise as above.
        tol: how large a gap counts as high (default 0.05).

    Returns:
        One row per condition: the condition columns, ``n``, ``held_out`` ("dev"/"test"),
        ``train_error``, ``held_out_error``, ``train_bayes_error``,
        ``held_out_bayes_error``, ``reference``, ``avoidable_bias``, ``variance``,
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
        train_bayes, held_bayes, reference = _references(group, bayes_error)
        result = bias_variance_diagnosis(
            min(max(train_error, 0.0), 1.0),
            min(max(held_error, 0.0), 1.0),
            train_bayes,
            tol,
            dev_bayes_error=held_bayes,
        )
        first = group.iloc[0]
        row = {c: first[c] for c in ("condition_id", "condition") if c in group.columns}
        row.update({c: first[c] for c in _condition_columns(group)})
        row.update(
            n=len(group),
            held_out=split,
            train_error=result.train_error,
            held_out_error=result.dev_error,
            train_bayes_error=train_bayes,
            held_out_bayes_error=held_bayes,
            reference=reference,
            avoidable_bias=result.avoidable_bias,
            variance=result.variance,
            diagnosis=result.diagnosis,
            advice="; ".join(result.advice),
        )
        rows.append(row)
    return pd.DataFrame(rows)
