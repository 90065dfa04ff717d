"""Tests of losslab.metrics: small cases worked out by hand (the arithmetic is in the
comments), scikit-learn and plain-loop float64 references, hypothesis properties, a
closed-form Gaussian check of the noise curve, and every user error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import stats
from sklearn.metrics import top_k_accuracy_score

from losslab.errors import LosslabError
from losslab.metrics import (
    METRICS,
    acc_at,
    accuracy,
    bias_variance_diagnosis,
    classification_confidence,
    correct_class_probability_histogram,
    count_w_eta,
    get_metric,
    max_probability_histogram,
    noise_robustness_curve,
    probability_gap,
    probability_gap_histogram,
    speed_of_learning,
    superclass_accuracy,
    top_k_accuracy,
)

# float64 unit roundoff: every metric computes in float64 (see losslab.metrics._inputs).
U64 = 2.0**-53


def binomial_bounds(n, p, failure=1e-6):
    """(lo, hi) fractions a mean of n independent Bernoulli(p) draws leaves with
    probability <= ``failure`` (the binomial's two tail quantiles)."""
    lo, hi = stats.binom.ppf([failure / 2, 1 - failure / 2], n, p)
    return lo / n, hi / n


# --------------------------------------------------------------------------- hand cases

# Logits, C = 3. Per row: prediction, confidence dX = z_c - max_{i != c} z_i.
#   [2, 1, 0]    y=0: pred 0, correct, dX = 2 - 1   =  1
#   [0, 3, 1]    y=2: pred 1, wrong,   dX = 1 - 3   = -2, c ranks 2nd
#   [1, 1, 5]    y=2: pred 2, correct, dX = 5 - 1   =  4
#   [4, 0, 3.5]  y=2: pred 0, wrong,   dX = 3.5 - 4 = -0.5, c ranks 2nd
LOGITS = np.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 1.0, 5.0], [4.0, 0.0, 3.5]])
LOGIT_LABELS = np.array([0, 2, 2, 2])

# Probabilities, C = 3. Per row: argmax (first on ties), delta p = p_c - max p.
#   [0.5, 0.3, 0.2]    y=1: pred 0, wrong, dp = -0.2
#   [0.1, 0.45, 0.45]  y=2: pred 1 (tie, lower index), wrong, dp = 0
#   [0.6, 0.39, 0.01]  y=1: pred 0, wrong, dp = -0.21
#   [0.2, 0.2, 0.6]    y=2: pred 2, correct, dp = 0
PROBS = np.array([[0.5, 0.3, 0.2], [0.1, 0.45, 0.45], [0.6, 0.39, 0.01], [0.2, 0.2, 0.6]])
PROB_LABELS = np.array([1, 2, 1, 2])


def test_accuracy_and_top_k_by_hand():
    assert accuracy(LOGITS, LOGIT_LABELS) == 0.5
    assert top_k_accuracy(LOGITS, LOGIT_LABELS, k=1) == 0.5
    assert top_k_accuracy(LOGITS, LOGIT_LABELS, k=2) == 1.0
    assert accuracy(PROBS, PROB_LABELS) == 0.25
    # row 2's tie for the top goes to the lower index 1, so c = 2 ranks 2nd
    assert top_k_accuracy(PROBS, PROB_LABELS, k=1) == 0.25
    assert top_k_accuracy(PROBS, PROB_LABELS, k=2) == 1.0


def test_classification_confidence_and_w_eta_by_hand():
    np.testing.assert_array_equal(
        classification_confidence(LOGITS, LOGIT_LABELS), [1.0, -2.0, 4.0, -0.5]
    )
    assert count_w_eta(LOGITS, LOGIT_LABELS) == 2  # dX > 0: rows 0, 2
    assert count_w_eta(LOGITS, LOGIT_LABELS, eta=0.9) == 2
    assert count_w_eta(LOGITS, LOGIT_LABELS, eta=1.0) == 1  # strict: dX = 1 is out
    assert count_w_eta(LOGITS, LOGIT_LABELS, eta=-1.0) == 3
    assert count_w_eta(LOGITS, LOGIT_LABELS, eta=10.0) == 0


@pytest.mark.parametrize(
    ("at", "expected"),
    # dp = [-0.2, 0, -0.21, 0]; counted when dp >= -at
    [(0.0, 0.5), (0.1, 0.5), (0.205, 0.75), (0.25, 1.0), (1.0, 1.0)],
)
def test_acc_at_by_hand(at, expected):
    assert acc_at(PROBS, PROB_LABELS, at=at, from_logits=False) == expected


def test_acc_at_from_logits_applies_softmax():
    # logits log p are the same probabilities up to a per-row shift
    assert acc_at(np.log(PROBS), PROB_LABELS, at=0.205) == 0.75
    # 2 classes, logits (0, log 3): p = (1/4, 3/4); c = 0 is 0.5 below the max
    z = np.array([[0.0, math.log(3.0)]])
    assert acc_at(z, [0], at=0.49) == 0.0
    assert acc_at(z, [0], at=0.51) == 1.0


def test_superclass_accuracy_by_hand():
    coarse = np.array([0, 0, 1, 1])  # classes {0, 1} -> 0, {2, 3} -> 1
    scores = np.array(
        [
            [0.1, 0.9, 0.0, 0.0],  # y=0, pred 1: same super-class
            [0.9, 0.1, 0.0, 0.0],  # y=2, pred 0: different super-class
            [0.0, 0.0, 0.2, 0.8],  # y=2, pred 3: same super-class
            [0.0, 0.0, 0.8, 0.2],  # y=2, pred 2: exact
        ]
    )
    labels = np.array([0, 2, 2, 2])
    assert superclass_accuracy(scores, labels, coarse) == 0.75
    assert accuracy(scores, labels) == 0.25
    assert superclass_accuracy(scores, labels, np.arange(4)) == 0.25


def test_histograms_by_hand():
    # max p = [0.5, 0.45, 0.6, 0.6]
    counts, edges = max_probability_histogram(PROBS, bins=[0.0, 0.5, 0.55, 1.0], from_logits=False)
    np.testing.assert_array_equal(counts, [1, 1, 2])
    np.testing.assert_array_equal(edges, [0.0, 0.5, 0.55, 1.0])
    # p_c = [0.3, 0.45, 0.39, 0.6]
    counts, edges = correct_class_probability_histogram(
        PROBS, PROB_LABELS, bins=2, from_logits=False
    )
    np.testing.assert_array_equal(counts, [3, 1])
    np.testing.assert_array_equal(edges, [0.0, 0.5, 1.0])
    # misclassified rows 0, 1, 2: dp = -0.2, 0, -0.21 (the correct row 3 is left out)
    hist = probability_gap_histogram(
        PROBS, PROB_LABELS, bins=[-1.0, -0.5, -0.205, -0.1, 0.0], from_logits=False
    )
    np.testing.assert_array_equal(hist.counts, [0, 1, 1, 1])
    # one float64 subtraction of entries <= 0.6, each literal carrying up to half an ulp:
    # three half-ulps of 0.6 (3e-16) at most
    np.testing.assert_allclose(
        probability_gap(PROBS, PROB_LABELS, from_logits=False),
        [-0.2, 0.0, -0.21, 0.0],
        rtol=0,
        atol=4 * U64,
    )


def test_default_histogram_bins_cover_the_unit_ranges():
    hist = max_probability_histogram(LOGITS)
    assert len(hist.counts) == 20 and hist.counts.sum() == 4
    # numpy.histogram builds equal bins with this very linspace call: equal bit for bit
    np.testing.assert_array_equal(hist.edges, np.linspace(0, 1, 21))
    gap = probability_gap_histogram(LOGITS, LOGIT_LABELS)
    np.testing.assert_array_equal(gap.edges, np.linspace(-1, 0, 21))
    assert gap.counts.sum() == 2  # the two misclassified rows
    perfect = probability_gap_histogram(LOGITS, LOGITS.argmax(1))
    assert perfect.counts.sum() == 0


def test_torch_and_numpy_inputs_agree_and_are_not_modified():
    z = torch.tensor(LOGITS, dtype=torch.float32, requires_grad=True)
    y = torch.tensor(LOGIT_LABELS)
    before = z.detach().clone()
    assert accuracy(z, y) == accuracy(LOGITS, LOGIT_LABELS)
    assert top_k_accuracy(z, y, k=2) == 1.0
    np.testing.assert_array_equal(classification_confidence(z, y), [1.0, -2.0, 4.0, -0.5])
    assert acc_at(z, y, at=0.3) == acc_at(LOGITS, LOGIT_LABELS, at=0.3)
    assert torch.equal(z.detach(), before) and z.grad is None
    assert accuracy(z.to(torch.bfloat16), y) == 0.5


# --------------------------------------------------------------------------- references

scores_strategy = st.integers(2, 6).flatmap(
    lambda c: st.tuples(
        hnp.arrays(
            np.float64,
            st.tuples(st.integers(1, 12), st.just(c)),
            elements=st.integers(-3, 3).map(float),
        ),
        st.just(c),
    )
)


@st.composite
def scores_and_labels(draw):
    scores, c = draw(scores_strategy)
    labels = draw(hnp.arrays(np.int64, scores.shape[0], elements=st.integers(0, c - 1)))
    return scores, labels


@settings(max_examples=60, deadline=None)
@given(data=scores_and_labels())
def test_properties_with_ties(data):
    """Integer logits make ties common; the tie conventions must stay consistent."""
    z, y = data
    n, c = z.shape
    assert top_k_accuracy(z, y, k=1) == accuracy(z, y)
    tops = [top_k_accuracy(z, y, k=k) for k in range(1, c + 1)]
    assert all(a <= b for a, b in zip(tops, tops[1:], strict=False)) and tops[-1] == 1.0
    ats = [acc_at(z, y, at=at) for at in (0.0, 0.1, 0.5, 1.0)]
    assert all(a <= b for a, b in zip(ats, ats[1:], strict=False)) and ats[-1] == 1.0
    # a correct argmax is within at = 0 of the max
    assert acc_at(z, y, at=0.0) >= accuracy(z, y)
    # eq. 11 counts top ties as wrong: #W_0 / N <= accuracy
    assert count_w_eta(z, y) / n <= accuracy(z, y)
    assert superclass_accuracy(z, y, np.zeros(c, dtype=int)) == 1.0
    assert superclass_accuracy(z, y, np.arange(c)) == accuracy(z, y)
    # plain-loop float64 reference of dX
    expected = [z[i, y[i]] - max(z[i, j] for j in range(c) if j != y[i]) for i in range(n)]
    np.testing.assert_array_equal(classification_confidence(z, y), expected)


def test_against_scikit_learn_on_random_scores():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, 10))
    y = rng.integers(0, 10, size=500)
    for k in (1, 2, 5, 9):
        # both an integer count / 500, rounded once (<= 1 ulp apart); one differing sample
        # would move it by 1 / 500
        assert top_k_accuracy(z, y, k=k) == pytest.approx(
            top_k_accuracy_score(y, z, k=k, labels=np.arange(10)), rel=0, abs=2 * U64
        )
    # without ties, #W_0 / N is the accuracy (eq. 11)
    assert count_w_eta(z, y) / 500 == accuracy(z, y)


def test_classification_confidence_is_shift_invariant_and_scales_with_logits():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 7))
    y = rng.integers(0, 7, size=50)
    dx = classification_confidence(z, y)
    log_p = torch.log_softmax(torch.from_numpy(z), dim=1)
    # float64: |log p| <= max|z| + log-sum-exp <= 2 max|z| + log 7; log_softmax rounds each
    # entry a few times (shift, exp-sum, log: <= 4 half-ulps of that size) and dX subtracts
    # two of them: <= 10 u (2 max|z| + 2) absolute; 4x margin
    scale = 2 * np.abs(z).max() + 2
    np.testing.assert_allclose(
        classification_confidence(log_p, y), dx, rtol=0, atol=4 * 10 * U64 * scale
    )
    # 3 z rounds each logit once (u |3 z|), the two differences once more: <= 4 u |3 z|
    np.testing.assert_allclose(
        classification_confidence(3.0 * z, y), 3.0 * dx, rtol=0, atol=4 * 4 * U64 * scale * 3
    )


def test_extreme_logits_stay_finite():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]])
    y = np.array([1, 2])
    assert acc_at(z, y, at=0.0) == 0.5  # row 1 ties p_1 = p_2 = 1/2
    assert np.isfinite(probability_gap(z, y)).all()


# --------------------------------------------------------------------------- registry


def test_registry_and_get_metric():
    assert set(METRICS) == {
        "accuracy",
        "top_k_accuracy",
        "acc_at",
        "superclass_accuracy",
        "count_w_eta",
    }
    assert get_metric("top_k_accuracy", k=2)(LOGITS, LOGIT_LABELS) == 1.0
    assert get_metric("Accuracy")(LOGITS, LOGIT_LABELS) == 0.5
    with pytest.raises(LosslabError) as err:
        get_metric("f1")
    for name in METRICS:
        assert name in str(err.value)
    with pytest.raises(LosslabError, match="k"):
        get_metric("accuracy", k=3)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: accuracy(LOGITS, LOGIT_LABELS[:3]), "N = 4"),
        (lambda: accuracy(LOGITS, [0, 1, 2, 3]), "out of range"),
        (lambda: accuracy(LOGITS, [0, -1, 2, 2]), "out of range"),
        (lambda: accuracy(LOGITS, [0.0, 1.0, 2.0, 2.0]), "integer"),
        (lambda: accuracy(LOGITS, np.eye(3)[[0, 1, 2, 2]]), "argmax"),
        (lambda: accuracy(LOGITS[0], [0]), r"\(N, C\)"),
        (lambda: accuracy(np.zeros((0, 3)), np.zeros(0, int)), "empty"),
        (lambda: accuracy(np.zeros((2, 1)), [0, 0]), "C >= 2"),
        (lambda: accuracy([[np.nan, 0.0]], [0]), "NaN"),
        (lambda: accuracy([["a", "b"]], [0]), "numeric"),
        (lambda: top_k_accuracy(LOGITS, LOGIT_LABELS, k=4), "exceeds"),
        (lambda: top_k_accuracy(LOGITS, LOGIT_LABELS, k=0), "k"),
        (lambda: acc_at(LOGITS, LOGIT_LABELS, at=-0.1), "at"),
        (lambda: acc_at(LOGITS, LOGIT_LABELS, from_logits=False), "from_logits=True"),
        (lambda: acc_at(LOGITS, LOGIT_LABELS, from_logits="yes"), "from_logits"),
        (lambda: superclass_accuracy(LOGITS, LOGIT_LABELS, [0, 1]), "coarse_map"),
        (lambda: superclass_accuracy(LOGITS, LOGIT_LABELS, [0.0, 1.0, 1.0]), "coarse_map"),
        (lambda: count_w_eta(LOGITS, LOGIT_LABELS, eta=float("nan")), "eta"),
        (lambda: max_probability_histogram(LOGITS, bins=0), "bins"),
        (lambda: max_probability_histogram(LOGITS, bins=[0.5, 0.2]), "bins"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_raises_losslab_error(call, match):
    with pytest.raises(LosslabError, match=match):
        call()


# --------------------------------------------------------------------------- speed of learning

STEPS = np.array([0, 10, 20])
CURVE = np.array([0.0, 1.0, 1.0])
# The exact speed of learning is a float64 mean of n <= 601 interpolated values in [0, 1]:
# each interpolated value rounds <= 3 times, the sum of n terms <= (n - 1) u relative
# (any summation order), the division once: (n + 3) u < 700 u ~ 8e-14; 10x margin.
MEAN_REL = 7000 * U64


def test_speed_of_learning_exact_by_hand():
    # a(t) = t/10 up to 10, then 1: sum over t = 0..20 is 0 + 0.1 + ... + 1 (= 5.5) + 10 ones
    exact = pytest.approx(15.5 / 21, rel=MEAN_REL)
    assert speed_of_learning(STEPS, CURVE, window=(0, 20)) == exact
    assert speed_of_learning(STEPS, CURVE, window=(5, 5)) == pytest.approx(0.5, rel=MEAN_REL)
    assert speed_of_learning(STEPS, CURVE, window=(10, 20)) == pytest.approx(1.0, rel=MEAN_REL)
    # a linear curve a(t) = t / 1000 has window mean (lo + hi) / 2000
    t = np.array([0, 1000])
    assert speed_of_learning(t, [0.0, 1.0], window=(100, 700)) == pytest.approx(0.4, rel=MEAN_REL)


def test_speed_of_learning_many_curves():
    both = speed_of_learning(STEPS, np.stack([CURVE, np.full(3, 0.25)]), window=(0, 20))
    assert both.shape == (2,)
    np.testing.assert_allclose(both, [15.5 / 21, 0.25], rtol=MEAN_REL)


def test_speed_of_learning_sampled_estimates_the_exact_value():
    exact = speed_of_learning(STEPS, CURVE, window=(0, 20))
    sampled = speed_of_learning(STEPS, CURVE, (0, 20), n_draws=40_000, rng=np.random.default_rng(0))
    # a mean of 40000 independent draws of a(t) in [0, 1]: Hoeffding's inequality
    # P(|mean - exact| >= t) <= 2 exp(-2 n t^2) puts t = sqrt(log(2 / 1e-6) / (2 n)) = 0.0135
    # at failure probability 1e-6 (whatever the distribution of a(t))
    bound = math.sqrt(math.log(2 / 1e-6) / (2 * 40_000))
    assert sampled == pytest.approx(exact, rel=0, abs=bound)
    again = speed_of_learning(STEPS, CURVE, (0, 20), n_draws=40_000, rng=0)
    assert again == speed_of_learning(STEPS, CURVE, (0, 20), n_draws=40_000, rng=0)
    # a small sample really is random: two seeds differ
    a = speed_of_learning(STEPS, CURVE, (0, 20), n_draws=5, rng=1)
    b = speed_of_learning(STEPS, CURVE, (0, 20), n_draws=5, rng=2)
    assert a != b


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": [0, 10, 10], "accuracies": CURVE, "window": (0, 10)}, "increasing"),
        ({"steps": STEPS, "accuracies": [0.0, 1.0], "window": (0, 10)}, "shape"),
        ({"steps": STEPS, "accuracies": [0.0, 50.0, 100.0], "window": (0, 10)}, "percentages"),
        ({"steps": STEPS, "accuracies": CURVE, "window": (0, 30)}, "extrapolated"),
        ({"steps": STEPS, "accuracies": CURVE, "window": (15, 5)}, "lo <= hi"),
        ({"steps": STEPS, "accuracies": CURVE, "window": (0.5, 5)}, "integer"),
        ({"steps": STEPS, "accuracies": CURVE, "window": 5}, "pair"),
        ({"steps": STEPS, "accuracies": CURVE, "window": (0, 20), "n_draws": 10}, "rng"),
        (
            {"steps": STEPS, "accuracies": CURVE, "window": (0, 20), "n_draws": 0, "rng": 0},
            "n_draws",
        ),
        (
            {"steps": STEPS, "accuracies": CURVE, "window": (0, 20), "n_draws": 5, "rng": "a"},
            "Generator",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_speed_of_learning_bad_input(kwargs, match):
    with pytest.raises(LosslabError, match=match):
        speed_of_learning(**kwargs)


# --------------------------------------------------------------------------- noise robustness

N_HALF = 10_000


def _two_points(d: int = 1):
    """Points at +-1 along the unit vector w = (1, 1, ..., 1)/sqrt(d), labelled by side."""
    w = np.ones(d) / math.sqrt(d)
    x = np.concatenate([np.tile(w, (N_HALF, 1)), np.tile(-w, (N_HALF, 1))])
    y = np.concatenate([np.ones(N_HALF, dtype=int), np.zeros(N_HALF, dtype=int)])
    return x, y, w


@pytest.mark.parametrize("d", [1, 5])
def test_noise_curve_matches_the_gaussian_closed_form(d):
    """A point at distance 1 from the boundary stays correct with prob Phi(1 / sqrt(eps)),
    since the noise along w is N(0, eps): eps is the variance, not the std."""
    x, y, w = _two_points(d)

    def predict(batch):
        return (batch @ w > 0).astype(np.int64)

    eps = [0.0, 0.25, 1.0, 4.0]
    curve = noise_robustness_curve(predict, x, y, eps, rng=np.random.default_rng(0))
    expected = [1.0] + [stats.norm.cdf(1.0 / math.sqrt(e)) for e in eps[1:]]
    assert curve[0] == 1.0
    # each sample stays correct independently with probability p = expected: the accuracy
    # is Binomial(20000, p) / 20000; its central 1 - 1e-6 region per eps (3e-6 per test)
    for got, p in zip(curve[1:], expected[1:], strict=True):
        lo, hi = binomial_bounds(2 * N_HALF, p)
        assert lo <= got <= hi, (got, p, lo, hi)


def test_noise_curve_torch_model_batches_and_common_random_numbers():
    x, y, w = _two_points(3)
    model = torch.nn.Linear(3, 2, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.tensor(np.stack([-w, w])))
        model.bias.zero_()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    full = noise_robustness_curve(model, xt, yt, [0.0, 1.0, 4.0], rng=3)
    batched = noise_robustness_curve(model, xt, yt, [0.0, 1.0, 4.0], rng=3, batch_size=999)
    np.testing.assert_array_equal(full, batched)
    # common random numbers: eps = 1 alone sees the same draw as inside the list
    alone = noise_robustness_curve(model, xt, yt, [1.0], rng=3)
    assert alone[0] == full[1]
    # numpy predict_fn on the same arrays and seed gives the same curve
    as_numpy = noise_robustness_curve(
        lambda b: b @ np.stack([-w, w]).T, x, y, [0.0, 1.0, 4.0], rng=3
    )
    np.testing.assert_array_equal(as_numpy, full)
    repeated = noise_robustness_curve(model, xt, yt, [1.0], rng=3, n_repeats=3)
    # 3 x 20000 independent draws, each correct with p = Phi(1): failure probability 1e-6
    lo, hi = binomial_bounds(3 * 2 * N_HALF, stats.norm.cdf(1.0))
    assert lo <= repeated[0] <= hi


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"x": np.ones((4, 2), dtype=int)}, "floating"),
        ({"y": np.array([0, 1, 2])}, "N = 4"),
        ({"y": np.array([0, 1, -1, 0])}, "out of range"),
        ({"y": np.array([0, 1, 2, 0])}, "out of range"),
        ({"eps_list": [0.0, -1.0]}, "eps"),
        ({"eps_list": []}, "empty"),
        ({"eps_list": 0.5}, "sequence"),
        ({"rng": None}, "Generator"),
        ({"predict_fn": lambda b: np.zeros(len(b))}, "integer"),
        ({"predict_fn": lambda b: np.zeros((len(b) + 1, 2))}, "n = 4"),
        ({"predict_fn": "model"}, "callable"),
        ({"n_repeats": 0}, "n_repeats"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_noise_curve_bad_input(kwargs, match):
    args = {
        "predict_fn": lambda b: np.stack([-b[:, 0], b[:, 0]], axis=1),
        "x": np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 0.0], [-2.0, 0.0]]),
        "y": np.array([1, 0, 1, 0]),
        "eps_list": [0.0, 1.0],
        "rng": 0,
    } | kwargs
    with pytest.raises(LosslabError, match=match):
        noise_robustness_curve(**args)


# --------------------------------------------------------------------------- bias / variance


@pytest.mark.parametrize(
    ("train", "dev", "diagnosis"),
    # the lecture notes' Table 1, models M1 - M4 (errors in percent there)
    [
        (0.01, 0.11, "high variance"),
        (0.15, 0.16, "high bias"),
        (0.15, 0.30, "high bias and high variance"),
        (0.005, 0.01, "low bias and low variance"),
    ],
)
def test_bias_variance_reproduces_the_lecture_notes_table(train, dev, diagnosis):
    result = bias_variance_diagnosis(train, dev)
    assert result.diagnosis == diagnosis
    # the same float64 subtractions as here (bayes_error = 0 subtracts exactly): equal
    assert result.avoidable_bias == train
    assert result.variance == dev - train
    assert result.high_bias == ("high bias" in diagnosis)
    assert result.high_variance == ("high variance" in diagnosis)
    assert diagnosis in str(result)


def test_bias_variance_uses_bayes_error_and_tolerance():
    # M2 with a human-level error of 14 %: only 1 point of avoidable bias is left
    assert bias_variance_diagnosis(0.15, 0.16, bayes_error=0.14).diagnosis == (
        "low bias and low variance"
    )
    # dyadic numbers make the boundary exact: a gap equal to tol is not "high"
    assert bias_variance_diagnosis(0.25, 0.5, tol=0.25).diagnosis == "low bias and low variance"
    assert bias_variance_diagnosis(0.25, 0.5, tol=0.125).diagnosis == "high bias and high variance"
    advice = bias_variance_diagnosis(0.01, 0.11).advice
    assert "more training data" in advice and "train longer" not in advice
    assert bias_variance_diagnosis(0.005, 0.01).advice == ()


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((15, 30), "percentages"),
        ((0.1, -0.1), "dev_error"),
        ((0.1, 0.2, 2.0), "bayes"),
        ((0.1, 0.2, 0.0, -0.1), "tol"),
        (("a", 0.2), "train_error"),
    ],
    ids=str,
)
def test_bias_variance_bad_input(args, match):
    with pytest.raises(LosslabError, match=match):
        bias_variance_diagnosis(*args)
