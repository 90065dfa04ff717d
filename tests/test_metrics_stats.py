"""Statistics over seeds (losslab.metrics.stats) against scipy, exact enumeration and
hand-computed numbers."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from losslab.errors import LosslabError
from losslab.metrics.stats import (
    bootstrap_ci,
    compare,
    diagnose,
    holm,
    rank_losses,
    summarize,
    wilcoxon_min_p,
)

# float64 unit roundoff; the statistics compute in float64.
U64 = 2.0**-53


def mean_tol(x):
    """How far two float64 means of the same values may lie apart: each sum of n terms is
    within (n - 1) u max|x| of exact in any summation order, the division adds u; x2 for
    the two sides, x2 margin."""
    x = np.asarray(x, dtype=np.float64)
    return 4 * (len(x) + 1) * U64 * max(float(np.abs(x).max()), 1e-300)


# Exact Wilcoxon p-values are counts of sign patterns / 2**n, dyadic and exact in float64
# however scipy sums its null distribution (partial sums of multiples of 2**-n below 2 are
# exact); a few ulps of slack for a scipy that scales at the end instead.
P_REL = 8 * U64


def make_cells(values, dataset="checkerboard", lr=1e-3, **extra):
    """Cells of the COMMON contract from {loss: [metric per seed]} (seeds 0..n-1)."""
    rows = []
    for loss, per_seed in values.items():
        for seed, v in enumerate(per_seed):
            rows.append(
                {
                    "condition_id": f"{dataset}/{loss}/{lr}",
                    "condition": f"{dataset} / {loss}",
                    "status": "done",
                    "dataset": dataset,
                    "model": "mlp[8]",
                    "activation": "relu",
                    "loss": loss,
                    "loss_name": loss.split("(")[0],
                    "optimizer": "adam",
                    "lr": lr,
                    "weight_decay": 0.0,
                    "seed": seed,
                    "test_accuracy": v,
                    **extra,
                }
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- bootstrap


@pytest.mark.parametrize("method", ["percentile", "BCa"])
def test_bootstrap_ci_coverage_on_normal_data(method):
    """Coverage of the 95 % interval of a normal mean, within a derived binomial bound.

    A bootstrap interval of the mean from n samples behaves like mean +- z s_ml / sqrt(n)
    with the plug-in std s_ml = s sqrt((n-1)/n), whose exact coverage for normal data is
    p0 = P(|t_{n-1}| < z_0.975 sqrt((n-1)/n)) (0.936 for n = 30, below the nominal 0.95:
    bootstrap intervals are a little too narrow for small n). Over R independent data
    sets the number of covering intervals is Binomial(R, p0); we accept the central
    1 - 1e-3 region of it, so a correct implementation fails with probability 1e-3
    (here never: the seeds are fixed). The region excludes the coverage of a 90 %
    interval (about 0.886), so an interval of the wrong level is caught.
    """
    n, reps = 30, 400
    z = sps.norm.ppf(0.975)
    p0 = 2 * sps.t.cdf(z * math.sqrt((n - 1) / n), df=n - 1) - 1
    lo, hi = sps.binom.ppf([0.0005, 0.9995], reps, p0)
    assert 0.89 < lo / reps and hi / reps < 0.98  # the bound discriminates
    rng = np.random.default_rng(2024)
    covered = 0
    for i in range(reps):
        x = rng.normal(loc=3.0, scale=2.0, size=n)
        low, high = bootstrap_ci(x, method=method, n_resamples=999, rng=i)
        covered += low <= 3.0 <= high
    assert lo <= covered <= hi


def test_bootstrap_ci_edge_cases_and_seeding():
    assert all(math.isnan(v) for v in bootstrap_ci([0.7]))
    assert bootstrap_ci([0.5, 0.5, 0.5]) == (0.5, 0.5)
    x = np.array([0.81, 0.84, 0.79, 0.86, 0.83])
    a, b = bootstrap_ci(x, rng=7), bootstrap_ci(x, rng=7)
    assert a == b  # the same seed gives the same interval
    assert x.min() <= a[0] < x.mean() < a[1] <= x.max()
    # two values: BCa is undefined there, the percentile interval is returned instead;
    # the resampled means take only the values min, mean, max.
    low, high = bootstrap_ci([0.2, 0.4])
    # (0.2 + 0.2) / 2 and (0.4 + 0.4) / 2 are exact, and the 2.5 % / 97.5 % quantiles fall
    # inside the runs of equal resampled means (each a quarter of them): 1 ulp of slack
    assert low == pytest.approx(0.2, rel=2 * U64) and high == pytest.approx(0.4, rel=2 * U64)
    with pytest.raises(LosslabError, match="method"):
        bootstrap_ci(x, method="studentized")


def test_summarize_matches_numpy_and_skips_unfinished_cells():
    cells = make_cells({"log": [0.80, 0.82, 0.84, 0.81], "hinge": [0.70, 0.90, 0.80, 0.60]})
    cells.loc[(cells.loss == "hinge") & (cells.seed == 3), "status"] = "failed"
    cells.loc[(cells.loss == "log") & (cells.seed == 1), "status"] = "diverged"
    cells.loc[(cells.loss == "log") & (cells.seed == 2), "test_accuracy"] = np.nan
    table = summarize(cells).set_index("loss")
    log, hinge = np.array([0.80, 0.82, 0.81]), np.array([0.70, 0.90, 0.80])
    for name, x in (("log", log), ("hinge", hinge)):
        row = table.loc[name]
        assert row.n == len(x)
        assert row["mean"] == pytest.approx(x.mean(), rel=0, abs=mean_tol(x))
        # std: the deviations and squares round once each, the sum of 3 adds 2 u, the sqrt
        # halves it: a few u relative on each side; 8 u, 2x margin
        assert row["std"] == pytest.approx(x.std(ddof=1), rel=16 * U64)
        # a resampled mean of 3 values lies in [min, max] up to its rounding: the sum of 3
        # terms <= 2 u * 3 max|x|, / 3 -> 2 u max|x| (+ u for the division) < 4 eps = 8 u
        ulp = 4 * np.finfo(float).eps
        assert x.min() - ulp <= row.ci_low <= row["mean"] <= row.ci_high <= x.max() + ulp
    assert table.loc["log", "n_diverged"] == 1 and table.loc["hinge", "n_diverged"] == 0
    assert summarize(cells).equals(summarize(cells))  # seeded
    # the interval of a condition does not depend on which other conditions are present
    alone = summarize(cells[cells.loss == "hinge"]).iloc[0]
    assert (alone.ci_low, alone.ci_high) == tuple(table.loc["hinge", ["ci_low", "ci_high"]])


def test_summarize_refuses_unknown_metric():
    with pytest.raises(LosslabError, match="test_accuracy"):
        summarize(make_cells({"log": [0.8]}), metric="test_acc")


# ---------------------------------------------------------------- Holm and Wilcoxon


def test_holm_against_hand_computed_values():
    # sorted: 0.005 (x4 = 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 = 0.04 -> 0.06)
    # one float64 product k p per entry (u relative) against a decimal literal (u): 2 u,
    # 4x margin
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02], rtol=8 * U64)
    # capped at 1; NaN entries are no tests (m = 2 here)
    np.testing.assert_allclose(holm([0.6, np.nan, 0.02]), [0.6, np.nan, 0.04], rtol=8 * U64)
    with pytest.raises(LosslabError):
        holm([1.5])


def exact_wilcoxon_p(d):
    """Two-sided exact p of the signed-rank test by enumerating all 2^n sign patterns."""
    ranks = sps.rankdata(np.abs(d))
    w_plus = ranks[np.asarray(d) > 0].sum()
    mean = ranks.sum() / 2
    patterns = np.array(list(itertools.product([0, 1], repeat=len(d))))
    sums = patterns @ ranks
    # rank sums are multiples of 1/2 (average ranks of ties), exact in float64: any margin
    # below 1/2 counts the same patterns; 1e-12 guards against nothing but future rank code
    return float(np.mean(np.abs(sums - mean) >= abs(w_plus - mean) - 1e-12))


def test_wilcoxon_p_values_against_hand_computation_and_enumeration():
    # all 8 differences positive: only 2 of the 2^8 sign patterns are as extreme
    log = [0.5] * 8
    hinge = [0.5 + 0.01 * k for k in range(1, 9)]
    row = compare(make_cells({"log": log, "hinge": hinge})).iloc[0]
    assert row.p_value == pytest.approx(2 / 256, rel=P_REL)
    # rank 2 negative: W- = 2, patterns with W- <= 2 are {}, {1}, {2}: p = 2 * 3 / 256
    hinge[1] = 0.5 - 0.02
    row = compare(make_cells({"log": log, "hinge": hinge})).iloc[0]
    assert row.p_value == pytest.approx(6 / 256, rel=P_REL)
    assert (row.wins, row.losses, row.ties) == (7, 1, 0)
    # ten distinct differences against the exact enumeration
    d = np.array([0.012, -0.003, 0.021, 0.008, 0.015, -0.006, 0.011, 0.019, 0.004, 0.0095])
    base = np.linspace(0.6, 0.9, 10)
    row = compare(make_cells({"log": base, "hinge": base + d})).iloc[0]
    # (base + d) - base is d up to an ulp of 0.9, far below the 5e-4 gaps between the |d|:
    # the same ranks, so the same count / 1024 as the enumeration and scipy on d itself
    assert row.p_value == pytest.approx(exact_wilcoxon_p(d), rel=P_REL)
    assert row.p_value == pytest.approx(sps.wilcoxon(d).pvalue, rel=P_REL)


def test_wilcoxon_min_p():
    assert wilcoxon_min_p(5) == 0.0625 and wilcoxon_min_p(6) == 0.03125
    # 2 / 32 both ways, dyadic: exact
    assert wilcoxon_min_p(5) == exact_wilcoxon_p(np.arange(1.0, 6.0))


# ---------------------------------------------------------------- compare: verdicts


def test_compare_verdicts_in_plain_words():
    seeds = 10
    rng = np.random.default_rng(0)
    base = 0.80 + 0.004 * rng.standard_normal(seeds)
    big = base + 0.02 + 0.003 * np.array([1, -1, 2, -2, 0.5, 1, -0.5, 1.5, 0.2, -0.3])
    big[[3, 6]] = base[[3, 6]] - 0.001  # hinge loses on 2 seeds
    cells = make_cells({"log": base, "hinge": big, "tied": base.copy()})
    table = compare(cells, reference="log").set_index("loss")
    hinge = table.loc["hinge"]
    d = big - base
    assert (hinge.wins, hinge.losses, hinge.ties, hinge.n) == (8, 2, 0, 10)
    assert hinge.mean_diff == pytest.approx(d.mean(), rel=0, abs=mean_tol(d))
    noise = math.sqrt((base.std(ddof=1) ** 2 + big.std(ddof=1) ** 2) / 2)
    # each std of 10 values: deviations, squares and the sum of 10 give <= 12 u relative on
    # the variance; the root mean square of two adds 3 u, the sqrt halves it all: < 10 u
    # per side; 2x margin
    assert hinge.noise == pytest.approx(noise, rel=40 * U64)
    # "tied" is no test (all zero differences), so Holm's family has one member: p * 1
    assert hinge.p_holm == hinge.p_value
    assert hinge.p_value < 0.05 and abs(hinge.mean_diff) > hinge.noise
    assert hinge.outcome == "better"
    assert hinge.verdict.startswith("hinge beats log on 8 of 10 seeds")
    assert "after Holm" in hinge.verdict
    # zero-mean differences, each smaller than the spread over seeds
    shuffled = make_cells(
        {"log": base, "noisy": base + 0.001 * np.array([1, -1, 2, -2, 1, -1, 3, -3, 0.5, -0.4])}
    )
    noisy = compare(shuffled).iloc[0]
    assert noisy.outcome == "no significant difference"
    d = 0.001 * np.array([1, -1, 2, -2, 1, -1, 3, -3, 0.5, -0.4])
    # compare() sees (base + d) - base: d up to half an ulp of 0.8 (5.6e-17) per seed, on
    # top of the two means' own rounding
    tol = mean_tol(d) + 0.5 * np.spacing(base.max())
    assert noisy.mean_diff == pytest.approx(d.mean(), rel=0, abs=tol) and d.mean() > 0
    assert noisy.verdict.startswith(
        "no significant difference: noisy better by +0.001 points on average, on 5 of 10 seeds"
    )
    assert "smaller than a seed-to-seed noise of" in noisy.verdict
    assert table.loc["tied", "outcome"] == "identical"
    assert np.isnan(table.loc["tied", "p_value"])


def test_compare_flags_differences_below_seed_noise():
    # consistent +0.5 point gains, but the seeds spread over 10 points
    base = np.linspace(0.70, 0.80, 8)
    cells = make_cells({"log": base, "hinge": base + 0.005})
    row = compare(cells).iloc[0]
    assert row.p_value == pytest.approx(2 / 256, rel=P_REL)
    assert row.outcome == "within noise"
    assert "smaller than the seed-to-seed noise" in row.verdict


def test_compare_too_few_seeds_and_worse():
    five = make_cells({"log": [0.8] * 5, "l1": [0.5, 0.52, 0.51, 0.49, 0.53]})
    row = compare(five).iloc[0]
    assert row.p_value == pytest.approx(0.0625, rel=P_REL)
    assert row.outcome == "too few seeds"
    assert "at least 6" in row.verdict and "log better by +29.00 points" in row.verdict
    # equal means: the side with more winning seeds is named
    level = compare(make_cells({"log": [0.5] * 4, "l1": [0.6, 0.6, 0.3, 0.5]})).iloc[0]
    # differences 0.1, 0.1, -0.2, 0 as float64 subtractions (each within an ulp of 0.6),
    # then their mean: exactly 0 would need no rounding at all
    assert level.mean_diff == pytest.approx(0, abs=mean_tol([0.6] * 4) + 2 * np.spacing(0.6))
    assert (level.wins, level.losses, level.ties) == (2, 1, 1)
    assert "equal on average, l1 ahead on 2 of 4 seeds" in level.verdict
    seven = make_cells({"log": [0.8] * 7, "l1": [0.5, 0.52, 0.51, 0.49, 0.53, 0.50, 0.48]})
    row = compare(seven).iloc[0]
    assert row.outcome == "worse" and row.verdict.startswith("log beats l1 on 7 of 7 seeds")


def test_compare_lower_is_better_for_losses():
    base = np.linspace(0.3, 0.5, 7)
    cells = make_cells({"log": base, "hinge": base - 0.3})
    cells["test_loss"] = cells.pop("test_accuracy")
    row = compare(cells, metric="test_loss").iloc[0]
    assert (row.wins, row.losses) == (7, 0) and row.outcome == "better"


def test_compare_all_pairs_holm_family_and_contexts():
    vals = {
        name: np.linspace(0.5, 0.6, 6) + shift
        for name, shift in (("log", 0.0), ("hinge", 0.2), ("l1", -0.2), ("l2", 0.4))
    }
    cells = pd.concat([make_cells(vals, dataset="a"), make_cells(vals, dataset="b")])
    table = compare(cells, reference=None)
    assert len(table) == 2 * 6  # C(4, 2) pairs per dataset
    assert set(table.dataset) == {"a", "b"}
    # the same function on the same p-values: equal
    np.testing.assert_array_equal(table.p_holm, holm(table.p_value))
    assert (table.p_value == 2 / 64).all() and (table.p_holm == 12 * 2 / 64).all()


def test_compare_reference_by_registry_name_and_errors():
    cells = make_cells({"alpha(alpha=4)": [0.8, 0.9], "log": [0.7, 0.8]})
    assert compare(cells, reference="alpha").iloc[0].versus == "alpha(alpha=4)"
    with pytest.raises(LosslabError, match="hinge"):
        compare(cells, reference="hinge")
    doubled = pd.concat([cells, cells])
    with pytest.raises(LosslabError, match="several cells per seed"):
        compare(doubled)


def test_compare_pairs_tuned_losses_across_learning_rates():
    tuned = pd.concat(
        [make_cells({"log": [0.8] * 6}, lr=1e-3), make_cells({"hinge": [0.9] * 6}, lr=1e-2)]
    )
    assert compare(tuned).empty  # different lr: not otherwise-identical by default
    row = compare(tuned, within=["dataset", "model"]).iloc[0]
    assert (row.loss, row.versus, row.wins) == ("hinge", "log", 6)


# ---------------------------------------------------------------- ranks and diagnosis


def test_rank_losses_hand_computed():
    a = make_cells({"log": [0.8, 0.8], "hinge": [0.9, 0.9], "l1": [0.8, 0.8]}, dataset="a")
    b = make_cells({"log": [0.7, 0.9], "hinge": [0.6, 0.6], "l1": [0.5, 0.5]}, dataset="b")
    table = rank_losses(pd.concat([a, b]))
    # a: hinge 1, log and l1 tie for 2-3 -> 2.5 each; b: log 1, hinge 2, l1 3
    expected = {"log": (2.5, 1.0, 1.75), "hinge": (1.0, 2.0, 1.5), "l1": (2.5, 3.0, 2.75)}
    for loss, (ra, rb, mean) in expected.items():
        assert tuple(table.loc[loss, ["a", "b", "mean_rank"]]) == (ra, rb, mean)
    assert list(table.index) == ["hinge", "log", "l1"]
    losses = pd.concat([a, b]).rename(columns={"test_accuracy": "test_loss"})
    assert rank_losses(losses, "test_loss").index[0] == "l1"  # lower loss is better


def test_diagnose_reproduces_the_lecture_notes_table():
    # lecture notes 2018, 6.2, Table 1: (train error, dev error) -> diagnosis
    notes = {
        "m1": (0.01, 0.11, "high variance"),
        "m2": (0.15, 0.16, "high bias"),
        "m3": (0.15, 0.30, "high bias and high variance"),
        "m4": (0.005, 0.01, "low bias and low variance"),
    }
    frames = []
    for name, (train, dev, _) in notes.items():
        frame = make_cells({name: [1 - dev, 1 - dev]}, train_accuracy=1 - train)
        frame["dev_accuracy"] = 1 - dev
        frames.append(frame)
    table = diagnose(pd.concat(frames)).set_index("loss")
    for name, (train, _, diagnosis) in notes.items():
        assert table.loc[name, "diagnosis"] == diagnosis
        # 1 - (1 - e): two float64 roundings of numbers <= 1 (the mean of two equal values
        # is exact) against a decimal literal: <= 3 half-ulps of 1; 2x margin
        assert table.loc[name, "train_error"] == pytest.approx(train, rel=0, abs=6 * U64)
        assert table.loc[name, "held_out"] == "dev"
    no_dev = make_cells({"log": [0.70]}, train_accuracy=0.99)
    row = diagnose(no_dev).iloc[0]
    assert row.held_out == "test" and row.diagnosis == "high variance"
