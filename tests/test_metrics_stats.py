"""Statistics over seeds (losslab.metrics.stats) against scipy, simulation, published
sample sizes and hand-computed numbers."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from losslab.errors import LosslabError
from losslab.metrics import reachable_accuracy
from losslab.metrics.stats import (
    INTERVAL_METHOD,
    bootstrap_ci,
    compare,
    diagnose,
    holm,
    paired_power,
    paired_t,
    rank_losses,
    seeds_needed,
    summarize,
    t_interval,
)

# float64 unit roundoff; the statistics compute in float64.
U64 = 2.0**-53


def mean_tol(x):
    """How far two float64 means of the same values may lie apart: each sum of n terms is
    within (n - 1) u max|x| of exact in any summation order, the division adds u; x2 for
    the two sides, x2 margin."""
    x = np.asarray(x, dtype=np.float64)
    return 4 * (len(x) + 1) * U64 * max(float(np.abs(x).max()), 1e-300)


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


# ---------------------------------------------------------------- the t interval


def test_t_interval_matches_scipy_and_stays_in_bounds():
    x = np.array([0.81, 0.84, 0.79, 0.86, 0.83])
    mean, low, high = t_interval(x)
    ref = sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x))
    # the same quantile, std and sqrt in another order: a few u relative on a half-width
    # of 0.035 next to a mean of 0.83: 16 u absolute, 2x margin
    np.testing.assert_allclose([low, high], ref, rtol=0, atol=32 * U64)
    assert mean == pytest.approx(x.mean(), rel=0, abs=mean_tol(x))
    # near the ceiling the plain t interval passes 1: the bounded one stops there
    top = np.array([0.99, 1.0, 0.95, 1.0, 0.97])
    plain = sps.t.interval(0.95, 4, loc=top.mean(), scale=sps.sem(top))
    assert plain[1] > 1.0
    _, low, high = t_interval(top, bounds=(0.0, 1.0))
    assert high == 1.0 and low == pytest.approx(plain[0], rel=0, abs=32 * U64)
    assert t_interval([0.7]) == pytest.approx((0.7, np.nan, np.nan), nan_ok=True)
    assert t_interval([0.5, 0.5, 0.5]) == (0.5, 0.5, 0.5)
    with pytest.raises(LosslabError, match="bounds"):
        t_interval(x, bounds=(1.0, 0.0))
    assert INTERVAL_METHOD.startswith("Student-t")


def test_t_interval_coverage_at_five_seeds_within_a_binomial_bound():
    """Coverage of the bounded 95 % interval from 5 normal values near the ceiling.

    For normal data the t interval covers with probability exactly 0.95 at every n, and
    cutting it to [0, 1] cannot uncover a mean inside [0, 1]; so over R data sets the count
    of covering intervals is Binomial(R, 0.95). We accept its central 1 - 1e-4 region (a
    correct implementation fails with probability 1e-4; the seed is fixed). The region
    excludes the 0.85 coverage a 95 % bootstrap interval has at n = 5.
    """
    reps, n, mu = 2000, 5, 0.97
    lo, hi = sps.binom.ppf([0.5e-4, 1 - 0.5e-4], reps, 0.95)
    assert hi / reps < 0.98 and lo / reps > 0.92  # the bound discriminates
    rng = np.random.default_rng(23)
    covered = clipped = 0
    for _ in range(reps):
        x = rng.normal(mu, 0.02, size=n)
        _, low, high = t_interval(x, bounds=(0.0, 1.0))
        covered += low <= mu <= high
        clipped += high == 1.0
        assert 0.0 <= low <= high <= 1.0
    assert lo <= covered <= hi
    assert clipped > reps // 4  # the bound did cut many intervals


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
        ref = np.clip(sps.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=sps.sem(x)), 0, 1)
        # as in the t interval test, with t_{0.975, 2} = 4.3 scaling the std's few u
        np.testing.assert_allclose([row.ci_low, row.ci_high], ref, rtol=0, atol=64 * U64)
    # hinge's plain interval [0.55, 1.05] leaves [0, 1]: the summary's stops at 1
    assert table.loc["hinge", "ci_high"] == 1.0
    assert table.loc["log", "n_diverged"] == 1 and table.loc["hinge", "n_diverged"] == 0


def test_summarize_refuses_unknown_metric():
    with pytest.raises(LosslabError, match="test_accuracy"):
        summarize(make_cells({"log": [0.8]}), metric="test_acc")


# ---------------------------------------------------------------- Holm and the paired t


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


def test_paired_t_equals_scipy_ttest_rel_and_its_interval():
    rng = np.random.default_rng(5)
    a = 0.80 + 0.01 * rng.standard_normal(5)
    b = a - 0.02 + 0.005 * rng.standard_normal(5)
    mean, low, high, t, p = paired_t(a - b, bounds=(-1.0, 1.0))
    ref = sps.ttest_rel(a, b)
    # the same differences and the same formula: t within a few u relative; p = 2 sf(|t|)
    # moves by |t| f(t) / sf(t) ~ t^2 relative to a change of t: <= 100 x that here
    assert t == pytest.approx(ref.statistic, rel=64 * U64)
    assert p == pytest.approx(ref.pvalue, rel=1e-12)
    ci = ref.confidence_interval(0.95)
    np.testing.assert_allclose([low, high], [ci.low, ci.high], rtol=0, atol=32 * U64)
    assert low < mean < high
    # equal non-zero differences: the sign is certain; all zero: no test
    assert paired_t([0.1, 0.1, 0.1])[3:] == (math.inf, 0.0)
    assert all(math.isnan(v) for v in paired_t([0.0, 0.0])[3:])
    assert all(math.isnan(v) for v in paired_t([0.2])[1:])


def test_paired_power_at_five_seeds_against_simulation():
    """The power the docs state (0.8 at n = 5 for an effect of 1.68 sd) by simulation.

    2000 paired data sets of 5 seeds whose differences are N(effect, sd^2), tested with
    paired_t at alpha = 0.05. The count of rejections is Binomial(2000, power); we accept
    its central 1 - 1e-4 region (a correct implementation fails with probability 1e-4; the
    seed is fixed). The region excludes a z test's power (0.94: t with the wrong degrees
    of freedom) and anything below 0.77.
    """
    sd, effect, n, reps = 0.02, 1.68 * 0.02, 5, 2000
    power = paired_power(effect, sd, n)
    assert power == pytest.approx(0.8, abs=0.001)  # the docs' number
    lo, hi = sps.binom.ppf([0.5e-4, 1 - 0.5e-4], reps, power)
    z_power = sps.norm.sf(sps.norm.ppf(0.975) - 1.68 * math.sqrt(n))
    assert hi / reps < z_power and lo / reps > 0.76
    rng = np.random.default_rng(2026)
    base = 0.7 + 0.03 * rng.standard_normal((reps, n))
    other = base + rng.normal(effect, sd, size=(reps, n))
    rejected = sum(paired_t(other[i] - base[i])[4] < 0.05 for i in range(reps))
    assert lo <= rejected <= hi
    # no effect: the level, 0.05
    lo0, hi0 = sps.binom.ppf([0.5e-4, 1 - 0.5e-4], reps, 0.05)
    null = base + rng.normal(0.0, sd, size=(reps, n))
    assert lo0 <= sum(paired_t(null[i] - base[i])[4] < 0.05 for i in range(reps)) <= hi0


def test_seeds_needed_matches_published_sample_sizes():
    # Cohen's effect sizes d = delta / sd for a two-sided paired t-test at alpha 0.05 and
    # power 0.8: d = 0.5 needs 34 pairs, d = 0.8 needs 15, d = 1 needs 10 (G*Power 3,
    # "t tests - means: difference from constant", a priori).
    assert seeds_needed(0.02) == 34.0
    assert seeds_needed(0.0125) == 15.0
    assert seeds_needed(0.01) == 10.0
    # a spread of 0.59 points: 5 seeds detect one point (1.68 sd at n = 5, as documented)
    assert seeds_needed(0.0059) == 5.0 and seeds_needed(0.0061) == 6.0
    assert seeds_needed(0.0) == 2.0 and math.isnan(seeds_needed(math.nan))
    with pytest.raises(LosslabError, match="delta"):
        seeds_needed(0.01, delta=0)


# ---------------------------------------------------------------- compare: verdicts


def test_compare_decides_at_five_seeds_with_holm_within_each_condition():
    # digits under 40 % noise: expectation and Tanimoto ~20 points above log on 5 seeds,
    # ten other losses within a point of log; a second dataset with no difference
    rng = np.random.default_rng(7)
    log = 0.55 + 0.02 * rng.standard_normal(5)
    losses = {"log": log}
    losses["expectation"] = log + 0.20 + 0.03 * rng.standard_normal(5)
    losses["tanimoto"] = log + 0.19 + 0.03 * rng.standard_normal(5)
    for k in range(9):
        losses[f"other{k}"] = log + 0.01 * rng.standard_normal(5)
    digits = make_cells(losses, dataset="digits")
    flat = make_cells({"log": log, "hinge": log + 0.003 * rng.standard_normal(5)},
                      dataset="checkerboard")
    table = compare(pd.concat([digits, flat]))
    assert set(table.dataset) == {"digits", "checkerboard"}
    for _, part in table.groupby("dataset"):
        # Holm within each condition's family, not over the table
        np.testing.assert_array_equal(part.p_holm, holm(part.p_value))
        assert (part.family == len(part)).all()
    row = table.set_index("loss").loc["expectation"]
    d = losses["expectation"] - log
    ref = sps.ttest_rel(losses["expectation"], log)
    assert row.p_value == pytest.approx(ref.pvalue, rel=1e-12)  # as in the paired t test
    assert row.mean_diff == pytest.approx(d.mean(), rel=0, abs=mean_tol(d))
    for name in ("expectation", "tanimoto"):
        r = table.set_index("loss").loc[name]
        assert r.outcome == "better" and r.p_holm < 0.05 and r.family == 11
        assert r.verdict.startswith(f"{name} beats log by +")
        assert "95% CI [" in r.verdict and "(Holm over 11)" in r.verdict
        assert -1 <= r.ci_low < r.mean_diff < r.ci_high <= 1
    # a tiny difference at this spread: undecided, and the verdict says what would decide
    hinge = table.set_index("loss").loc["hinge"]
    assert hinge.outcome == "no significant difference"
    assert hinge.seeds_needed == seeds_needed(hinge.sd_diff)
    assert f"about {hinge.seeds_needed:.0f} seeds would detect a 1-point difference" in (
        hinge.verdict)
    assert not any("at least 6" in v for v in table.verdict)


def test_compare_verdicts_identical_one_seed_and_worse():
    cells = make_cells({"log": [0.8, 0.7, 0.9], "tied": [0.8, 0.7, 0.9]})
    row = compare(cells).iloc[0]
    assert row.outcome == "identical" and math.isnan(row.p_value) and row.family == 0
    one = compare(make_cells({"log": [0.8], "l1": [0.5]})).iloc[0]
    assert one.outcome == "too few seeds" and "at least 2" in one.verdict
    five = make_cells({"log": [0.8, 0.81, 0.79, 0.8, 0.82], "l1": [0.5, 0.52, 0.51, 0.49, 0.53]})
    row = compare(five).iloc[0]
    assert row.outcome == "worse" and row.verdict.startswith("log beats l1 by +29.")
    assert (row.wins, row.losses, row.ties) == (0, 5, 0)


def test_compare_lower_is_better_for_losses():
    base = np.linspace(0.3, 0.5, 7)
    cells = make_cells({"log": base, "hinge": base - 0.3 + 0.01 * np.sin(np.arange(7))})
    cells["test_loss"] = cells.pop("test_accuracy")
    row = compare(cells, metric="test_loss").iloc[0]
    assert (row.wins, row.losses) == (7, 0) and row.outcome == "better"
    assert row.ci_high < 0  # a loss difference has no [-1, 1] range to be cut to


def test_compare_all_pairs_holm_family_and_contexts():
    rng = np.random.default_rng(3)
    vals = {
        name: np.linspace(0.5, 0.6, 6) + shift + 0.01 * rng.standard_normal(6)
        for name, shift in (("log", 0.0), ("hinge", 0.2), ("l1", -0.2), ("l2", 0.4))
    }
    cells = pd.concat([make_cells(vals, dataset="a"), make_cells(vals, dataset="b")])
    table = compare(cells, reference=None)
    assert len(table) == 2 * 6  # C(4, 2) pairs per dataset
    for _, part in table.groupby("dataset"):
        np.testing.assert_array_equal(part.p_holm, holm(part.p_value))
        assert (part.family == 6).all()


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


@pytest.mark.parametrize(("rate", "kind", "classes"), [
    (0.4, "symmetric", 10), (0.8, "symmetric", 3), (0.4, "pairflip", 10),
    (0.6, "pairflip", 4), (0.2, "symmetric", None),
])
def test_reachable_accuracy_is_the_best_prediction_on_noised_labels(rate, kind, classes):
    """Against the noise generator itself: noise N copies of one clean label per class
    with losslab.data.label_noise; the best a classifier of the inputs can do is predict,
    per clean class, its most frequent noisy label. The generator flips exactly
    round(rate N) labels, at random across classes, so each class's frequencies are
    hypergeometric: with 20000 labels per class their sd is below 0.004; 0.02 (5 sd)."""
    from losslab.data import label_noise

    c = classes or 5
    y = np.repeat(np.arange(c), 20000)
    noisy, _ = label_noise(y, rate, kind, rng=1, num_classes=c)
    best = np.mean([np.bincount(noisy[y == k], minlength=c).max() / 20000 for k in range(c)])
    assert reachable_accuracy(rate, kind, classes) == pytest.approx(best, abs=0.02)


def test_diagnose_measures_bias_against_the_noise_and_says_which_reference():
    # 40 % symmetric noise on the training labels, clean test labels (no dev split)
    cases = {
        "clean_fit": (0.60, 0.97, "low bias and low variance"),  # learned the clean labels
        "memorised": (1.00, 0.70, "high variance"),  # fitted the flipped labels
        "underfit": (0.45, 0.84, "high bias"),
    }
    frames = [make_cells({name: [test, test]}, train_accuracy=train, label_noise_rate=0.4,
                         label_noise_kind="symmetric")
              for name, (train, test, _) in cases.items()]
    table = diagnose(pd.concat(frames)).set_index("loss")
    for name, (train, test, diagnosis) in cases.items():
        row = table.loc[name]
        assert row.diagnosis == diagnosis, name
        # 1 - 0.6 and 1 - acc: float64 roundings of numbers <= 1 against literals: 6 u
        assert row.train_bayes_error == pytest.approx(0.4, abs=6 * U64)
        assert row.held_out_bayes_error == 0.0
        assert row.avoidable_bias == pytest.approx((1 - train) - 0.4, abs=6 * U64)
        assert row.variance == pytest.approx((1 - test) - ((1 - train) - 0.4), abs=12 * U64)
        assert "reachable train accuracy 60.00%" in row.reference
        assert "held-out labels clean" in row.reference
    # the noise-blind diagnosis of the issue: every noisy condition "high bias"
    blind = diagnose(pd.concat(frames), bayes_error=0.0).set_index("loss")
    assert blind.loc["clean_fit", "diagnosis"].startswith("high bias")
    assert blind.loc["clean_fit", "reference"] == "given Bayes error 0.00%"
    # pair-flip at 60 %: the flipped class is the majority, reachable 60 %, not 40 %
    flip = make_cells({"log": [0.2, 0.2]}, train_accuracy=0.6, label_noise_rate=0.6,
                      label_noise_kind="pairflip")
    assert diagnose(flip).iloc[0].train_bayes_error == pytest.approx(0.4, abs=6 * U64)
