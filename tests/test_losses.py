"""Every registered loss against an independent float64 NumPy reference, and its contracts.

The tests loop over ``LOSSES``: a newly registered loss is gradient-checked, pushed to
extreme logits, reduced every way and fed bad input the moment it is added, and
``test_every_loss_has_a_reference`` fails until its NumPy reference is written here.
The references use SciPy's softmax / logsumexp / expit and explicit formulas (one-hot
rows as masks, Python-level case splits) rather than the library's code path.
"""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import expit, log_expit, log_softmax, softmax

import losslab.losses
from losslab import npnet
from losslab.catalogue import loss_table
from losslab.errors import LosslabError
from losslab.losses import (
    LOSSES,
    ProbabilityLoss,
    definition,
    get_loss,
    janocha,
    robust,
    two_scale,
)
from losslab.losses.two_scale import TWO_SCALE_LOSSES

README = Path(__file__).resolve().parents[1] / "README.md"
C = 4
EPS32 = 2.0**-24  # float32 unit round-off: one rounding errs by at most this, relative
EPS64 = 2.0**-53  # float64 unit round-off
# Two float64 computations of the same quantity by different formulas (library vs. SciPy or
# torch reference). The values here are <= ~1e3 (cubed hinge: C (1/2 + |o|)^3 with |o| < 7),
# each the result of <= ~20 roundings of intermediates no larger than the value (C = 4 terms;
# the only cancellations, 1 - p^q and 2 - 2 p_c, lose absolute precision only at the scale of
# 1): <= 20 * 1e3 * EPS64 ~ 2e-12 absolute, ~20 EPS64 = 2e-15 relative. rtol 1e-12 keeps a
# >= 100x margin on the relative part, atol 1e-12 covers values that round to ~0.
F64 = {"rtol": 1e-12, "atol": 1e-12}
# The model scale R handed to the two-scale losses in the registry-wide tests; with
# attach(R) they start at R1 = R, R2 = 10 R (R_s = 10), so their logits are R1 z / R = z
# below eta and 10 z above it.
FIXED_SCALE = 2.0

# ---------------------------------------------------------------------------------------
# float64 NumPy references: o (N, C), y (N, C) -> (N,)


def _p(o, probability):
    return softmax(o, axis=1) if probability == "softmax" else expit(o)


def _binary_logs(o):
    """log p and log(1 - p) of the element-wise sigmoid."""
    return log_expit(o), log_expit(-o)


def ref_l1(o, y):
    return np.abs(y - o).sum(axis=1)


def ref_l2(o, y):
    return np.einsum("nc,nc->n", y - o, y - o)


def ref_expectation(o, y, probability="softmax"):
    return np.abs(y - _p(o, probability)).sum(axis=1)


def ref_regularised_expectation(o, y, probability="softmax"):
    d = y - _p(o, probability)
    return np.einsum("nc,nc->n", d, d)


def ref_chebyshev(o, y, probability="softmax"):
    return np.abs(_p(o, probability) - y).max(axis=1)


def _ref_hinge(o, y, power):
    y_pm = 2.0 * y - 1.0
    return (np.maximum(0.0, 0.5 - y_pm * o) ** power).sum(axis=1)


def ref_log(o, y, probability="softmax"):
    if probability == "softmax":
        return -(y * log_softmax(o, axis=1)).sum(axis=1)
    log_p, log_q = _binary_logs(o)
    return -(y * log_p + (1 - y) * log_q).sum(axis=1)


def ref_squared_log(o, y, probability="softmax"):
    if probability == "softmax":
        return ((y * log_softmax(o, axis=1)) ** 2).sum(axis=1)
    log_p, log_q = _binary_logs(o)
    return ((y * log_p) ** 2 + ((1 - y) * log_q) ** 2).sum(axis=1)


def ref_tanimoto(o, y, probability="softmax"):
    p = _p(o, probability)
    py = np.einsum("nc,nc->n", p, y)
    return -py / (np.linalg.norm(p, axis=1) ** 2 + np.linalg.norm(y, axis=1) ** 2 - py)


def ref_cauchy_schwarz(o, y, probability="softmax"):
    p = _p(o, probability)
    cosine = np.einsum("nc,nc->n", p, y) / (np.linalg.norm(p, axis=1) * np.linalg.norm(y, axis=1))
    return -np.log(cosine)


def ref_alpha(o, y, alpha=2.0):
    p = softmax(o, axis=1)
    if alpha == 1.0:
        f = -np.log(p)
    elif math.isinf(alpha):
        f = 1.0 - p
    else:
        f = alpha / (alpha - 1.0) * (1.0 - p ** (1.0 - 1.0 / alpha))
    return (y * f).sum(axis=1)


def ref_gce(o, y, q=0.7):
    return (y * (1.0 - softmax(o, axis=1) ** q) / q).sum(axis=1)


def ref_truncated_log(o, y, k=0.5):
    p = softmax(o, axis=1)
    with np.errstate(divide="ignore"):
        return -(y * np.log(np.maximum(p, k))).sum(axis=1)


def _delta_x(o, y):
    """Classification confidence with an explicit loop over samples."""
    out = np.empty(len(o))
    for i, (row, target) in enumerate(zip(o, y, strict=True)):
        c = int(np.argmax(target))
        out[i] = row[c] - max(v for j, v in enumerate(row) if j != c)
    return out


def ref_two_scale(o, y, eta=1.0, r1=FIXED_SCALE, r2=10 * FIXED_SCALE, scale=FIXED_SCALE):
    factor = np.where(_delta_x(o, y) >= eta, r2, r1) / scale
    return ref_log(o * factor[:, None], y)


def ref_two_scale_separation(o, y, eta=1.0, rs=10.0):
    factor = np.where(_delta_x(o, y) >= eta, rs, 1.0)
    return ref_log(o * factor[:, None], y)


REFERENCES = {
    "l1": ref_l1,
    "l2": ref_l2,
    "expectation": ref_expectation,
    "regularised_expectation": ref_regularised_expectation,
    "chebyshev": ref_chebyshev,
    "hinge": lambda o, y: _ref_hinge(o, y, 1),
    "squared_hinge": lambda o, y: _ref_hinge(o, y, 2),
    "cubed_hinge": lambda o, y: _ref_hinge(o, y, 3),
    "log": ref_log,
    "squared_log": ref_squared_log,
    "tanimoto": ref_tanimoto,
    "cauchy_schwarz": ref_cauchy_schwarz,
    "alpha": ref_alpha,
    "gce": ref_gce,
    "truncated_log": ref_truncated_log,
    "two_scale": ref_two_scale,
    "two_scale_fixed": ref_two_scale,
    "two_scale_separation": ref_two_scale_separation,
}

# Keyword variants checked against the reference besides the defaults.
VARIANTS = {
    "alpha": [{"alpha": 0.5}, {"alpha": 1.0}, {"alpha": 1.5}, {"alpha": math.inf}],
    "gce": [{"q": 0.2}, {"q": 1.0}],
    "truncated_log": [{"k": 0.0}, {"k": 0.3}, {"k": 1.0}],
    "two_scale": [{"eta": 0.01}, {"eta": math.inf}],
    "two_scale_separation": [{"eta": 0.5, "rs": 3.0}],
}


def _cases():
    for name, cls in LOSSES.items():
        kwarg_sets = [{}, *VARIANTS.get(name, [])]
        if issubclass(cls, ProbabilityLoss):
            kwarg_sets.append({"probability": "sigmoid"})
        for kwargs in kwarg_sets:
            yield pytest.param(name, kwargs, id=f"{name}-{kwargs}" if kwargs else name)


CASES = list(_cases())
NAMES = sorted(LOSSES)


def make_loss(name, **kwargs):
    """get_loss, with the two-scale losses attached to the constant model scale R = 2."""
    loss = get_loss(name, **kwargs)
    if name in TWO_SCALE_LOSSES:
        loss.attach(FIXED_SCALE)
    return loss


def random_batch(n=7, c=C, seed=0, dtype=torch.float64, scale=2.0):
    """Logits (N, C), labels (N,), and soft targets (N, C) from a Dirichlet."""
    gen = np.random.default_rng(seed)
    logits = torch.tensor(scale * gen.standard_normal((n, c)), dtype=dtype)
    labels = torch.tensor(gen.integers(0, c, n), dtype=torch.int64)
    soft = torch.tensor(gen.dirichlet(np.ones(c), n), dtype=dtype)
    return logits, labels, soft


def test_every_loss_has_a_reference():
    assert set(REFERENCES) == set(LOSSES), "write a NumPy reference for each new loss"


def test_the_readme_table_is_the_registry():
    # The docs table is generated from the registry (black --check style): a new loss
    # fails here until `loss_table()` is pasted into the README.
    assert loss_table() in README.read_text(encoding="utf-8"), "paste catalogue.loss_table()"


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_has_a_numpy_twin_or_says_why_not(name):
    cls = LOSSES[name]
    if cls.npnet is None:
        assert cls.npnet_exemption, f"{name}: add its twin to npnet/losses.py or an exemption"
    else:
        assert not cls.npnet_exemption and cls.npnet in npnet.LOSSES


def test_every_numpy_loss_is_the_twin_of_a_registered_loss():
    assert set(npnet.LOSSES) == {cls.npnet for cls in LOSSES.values() if cls.npnet}


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_values_match_numpy_reference(name, kwargs):
    logits, labels, soft = random_batch(n=9, seed=1)
    loss = make_loss(name, reduction="none", **kwargs)
    reference = REFERENCES[name]
    one_hot = np.eye(C)[labels.numpy()]
    for target, dense in ((labels, one_hot), (soft, soft.numpy())):
        got = loss(logits, target).detach().numpy()
        want = reference(logits.numpy(), dense, **kwargs)
        np.testing.assert_allclose(got, want, **F64)


@pytest.mark.parametrize("name", NAMES)
def test_float32_close_to_float64_reference(name):
    logits, labels, _ = random_batch(n=16, seed=2, dtype=torch.float32)
    got = make_loss(name, reduction="none")(logits, labels).detach().numpy()
    want = REFERENCES[name](logits.double().numpy(), np.eye(C)[labels.numpy()])
    # Same (float32-exact) logits; the float32 path rounds <= ~10 intermediates at EPS32 =
    # 6e-8, squares and cubes multiply a relative error by 2 and 3, and the log-sum-exp errs
    # absolutely at the scale of max|o| ~ 6 (two-scale factor 10 only on samples whose loss
    # is ~e^-10, where its error is relative): ~30 EPS32 = 2e-6 either way -> 4e-6 (2x).
    np.testing.assert_allclose(got, want, rtol=64 * EPS32, atol=64 * EPS32)


@pytest.mark.parametrize(("name", "kwargs"), CASES)
def test_gradcheck_float64(name, kwargs):
    logits, labels, soft = random_batch(n=5, seed=3)
    loss = make_loss(name, reduction="sum", **kwargs).double()
    logits.requires_grad_(True)
    for target in (labels, soft):
        # Central differences with h = 1e-6 err by h^2 |f^(3)| / 6 (< 1e-9 here: |f^(3)| <=
        # ~1e3 even at the two-scale factor 10) plus the round-off of f over h: f sums
        # same-sign terms (~10 roundings), 10 EPS64 |f| / h ~ 1e-9 |f| (|f| reaches 5e3 for
        # alpha = 0.5, whose 1/p is large). atol 1e-8 max(1, |f|): a 10x margin; rtol 0.
        with torch.no_grad():
            atol = 1e-8 * max(1.0, abs(float(loss(logits, target))))
        assert torch.autograd.gradcheck(
            lambda o, t=target: loss(o, t), (logits,), eps=1e-6, atol=atol, rtol=0.0
        )


EXTREMES = torch.tensor(
    [
        [1e4, -1e4, 0.0, 0.0],  # label 1: p_c underflows to exactly 0
        [-1e4, 1e4, -1e4, 1e4],  # label 0: p_c = 0, tie between two wrong classes
        [1e4, 1e4, 1e4, 1e4],  # all equal and huge
        [-1e4, -1e4, -1e4, 1e4],  # label 3: p_c = 1 exactly
        [3.0, -1e4, 0.5, -2.0],  # label 1: p_c = 0 next to moderate logits
    ],
    dtype=torch.float32,
)
EXTREME_LABELS = torch.tensor([1, 0, 2, 3, 1])


def _finite_cases():
    # alpha < 1 is unbounded by definition (documented): a lost sample costs +inf.
    return [c for c in CASES if c.values[1].get("alpha", 1.0) >= 1.0]


@pytest.mark.parametrize(("name", "kwargs"), _finite_cases())
def test_extreme_logits_float32_finite_value_and_grad(name, kwargs):
    # exp(-2e4) underflows float32 (smallest subnormal 1.4e-45) to exactly 0
    assert float(torch.softmax(EXTREMES, 1)[0, 1]) == 0.0
    loss = make_loss(name, **kwargs)
    soft = torch.full((5, C), 1.0 / C)
    for target in (EXTREME_LABELS, F.one_hot(EXTREME_LABELS, C).float(), soft):
        logits = EXTREMES.clone().requires_grad_(True)
        value = loss(logits, target)
        (grad,) = torch.autograd.grad(value, logits)
        assert torch.isfinite(value), (name, value)
        assert torch.isfinite(grad).all(), (name, grad)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(NAMES),
    values=st.lists(
        st.floats(-1e4, 1e4, width=32, allow_nan=False, allow_infinity=False),
        min_size=3 * C,
        max_size=3 * C,
    ),
    labels=st.lists(st.integers(0, C - 1), min_size=3, max_size=3),
)
def test_property_finite_for_any_logits(name, values, labels):
    logits = torch.tensor(values, dtype=torch.float32).reshape(3, C).requires_grad_(True)
    value = make_loss(name)(logits, torch.tensor(labels))
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.isfinite(value) and torch.isfinite(grad).all()


@settings(max_examples=30, deadline=None)
@given(
    hyper=st.one_of(
        st.tuples(st.just("alpha"), st.just("alpha"), st.floats(1.0, 1e3) | st.just(math.inf)),
        st.tuples(st.just("gce"), st.just("q"), st.floats(1e-4, 1.0)),
        st.tuples(st.just("truncated_log"), st.just("k"), st.floats(0.0, 1.0)),
    ),
    values=st.lists(st.floats(-1e4, 1e4, width=32), min_size=2 * C, max_size=2 * C),
    mass=st.lists(st.floats(0.0, 1.0), min_size=2 * C, max_size=2 * C),
)
def test_property_robust_family_finite_for_any_parameter_and_soft_target(hyper, values, mass):
    name, key, value = hyper
    weights = torch.tensor(mass).reshape(2, C) + torch.eye(C)[:2]  # no all-zero row
    soft = weights / weights.sum(1, keepdim=True)
    logits = torch.tensor(values, dtype=torch.float32).reshape(2, C).requires_grad_(True)
    loss = get_loss(name, **{key: value})(logits, soft)
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_index_and_one_hot_targets_agree(name):
    logits, labels, _ = random_batch(n=8, seed=4)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    # Index targets gather the target terms (e.g. ||o||^2 + 1 - 2 o_c), one-hot rows sum
    # all C terms: the same float64 terms in another order. The largest term here is
    # (1/2 + |o|)^3 < 4e2 (|o| < 7), so each path is within a few roundings of
    # 4e2 * 2.2e-16 ~ 1e-13 of the exact value; 1e-12 leaves a 10x margin (= F64).
    for w in (None, weight):
        for reduction in ("mean", "sum", "none"):
            loss = make_loss(name, reduction=reduction, weight=w)
            a = loss(logits, labels)
            b = loss(logits, F.one_hot(labels, C).double())
            torch.testing.assert_close(a, b, **F64)


@pytest.mark.parametrize("name", NAMES)
def test_reductions_and_class_weights_agree(name):
    logits, labels, soft = random_batch(n=8, seed=5)
    weight = [0.5, 2.0, 1.0, 3.0]
    per_sample = make_loss(name, reduction="none")(logits, labels)
    assert per_sample.shape == (8,)
    # float64 sums of 8 same-sign per-sample values (tanimoto's are all <= 0), in torch's or
    # the loss's order, and one product or quotient by class weights: <= 8 EPS64 relative
    # apart, so F64 (rtol 1e-12) has a > 100x margin.
    torch.testing.assert_close(
        make_loss(name, reduction="sum")(logits, labels), per_sample.sum(), **F64
    )
    torch.testing.assert_close(
        make_loss(name, reduction="mean")(logits, labels), per_sample.mean(), **F64
    )
    w_sample = torch.tensor(weight, dtype=torch.float64)[labels]
    weighted = make_loss(name, reduction="none", weight=weight)(logits, labels)
    torch.testing.assert_close(weighted, w_sample * per_sample, **F64)
    torch.testing.assert_close(
        make_loss(name, reduction="sum", weight=weight)(logits, labels), weighted.sum(), **F64
    )
    torch.testing.assert_close(
        make_loss(name, reduction="mean", weight=weight)(logits, labels),
        weighted.sum() / w_sample.sum(),
        **F64,
    )
    # Soft targets: each sample is weighted by its expected class weight.
    soft_plain = make_loss(name, reduction="none")(logits, soft)
    soft_weighted = make_loss(name, reduction="none", weight=weight)(logits, soft)
    expected_w = soft @ torch.tensor(weight, dtype=torch.float64)
    torch.testing.assert_close(soft_weighted, expected_w * soft_plain, **F64)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_log_loss_equals_torch_cross_entropy_with_weight(reduction):
    logits, labels, _ = random_batch(n=10, seed=6)
    weight = torch.tensor([0.5, 2.0, 1.0, 3.0], dtype=torch.float64)
    for w in (None, weight):
        got = get_loss("log", reduction=reduction, weight=w)(logits, labels)
        want = F.cross_entropy(logits, labels, weight=w, reduction=reduction)
        # two float64 log-softmax implementations of |o| < 7: a few EPS64 * 7 apart (F64)
        torch.testing.assert_close(got, want, **F64)


def test_sigmoid_log_loss_equals_torch_bce_with_logits():
    logits, labels, soft = random_batch(n=6, seed=7)
    got = get_loss("log", probability="sigmoid", reduction="sum")(logits, soft)
    want = F.binary_cross_entropy_with_logits(logits, soft, reduction="sum")
    # 24 float64 log-sigmoid terms of |o| < 7 summed: <= 24 EPS64 relative apart (F64)
    torch.testing.assert_close(got, want, **F64)


# ---------------------------------------------------------------------------------------
# identities of the seeds


def test_proposition_1_expectation_is_two_minus_two_pc():
    logits, labels, _ = random_batch(n=12, seed=8)
    p_c = torch.softmax(logits, 1).gather(1, labels[:, None]).squeeze(1)
    got = get_loss("expectation", reduction="none")(logits, labels)
    # float64, |y - p| summed over C = 4 terms <= 1 vs 2 - 2 p_c: a few EPS64 absolute (F64)
    torch.testing.assert_close(got, 2 - 2 * p_c, **F64)


def test_proposition_3_cauchy_schwarz_is_log_plus_half_log_norm():
    logits, labels, _ = random_batch(n=12, seed=9)
    p = torch.softmax(logits, 1)
    log_loss = get_loss("log", reduction="none")(logits, labels)
    got = get_loss("cauchy_schwarz", reduction="none")(logits, labels)
    # float64 on both sides, values <= ~10: a few EPS64 * 10 apart (F64)
    torch.testing.assert_close(got, log_loss + 0.5 * torch.log((p * p).sum(1)), **F64)


@pytest.mark.parametrize("alpha", [1.25, 2.0, 5.0, math.inf])
def test_alpha_equals_gce_with_q_one_minus_inverse_alpha(alpha):
    logits, labels, _ = random_batch(n=10, seed=10)
    a = get_loss("alpha", alpha=alpha, reduction="none")(logits, labels)
    g = get_loss("gce", q=1 - 1 / alpha, reduction="none")(logits, labels)
    # alpha / (alpha - 1) vs 1 / q and q itself differ by an EPS64 rounding each; the value
    # (1 - p^q) / q, |.| <= 1 / q <= 5, moves by a few EPS64 * 5 (F64)
    torch.testing.assert_close(a, g, **F64)


def test_alpha_tends_to_log_loss_as_alpha_tends_to_one():
    logits, labels, _ = random_batch(n=10, seed=11)
    log_loss = get_loss("log", reduction="none")(logits, labels)
    torch.testing.assert_close(
        get_loss("alpha", alpha=1.0, reduction="none")(logits, labels), log_loss, **F64
    )
    gaps = [
        float((get_loss("alpha", alpha=1 + h, reduction="none")(logits, labels) - log_loss)
              .abs().max())
        for h in (1e-1, 1e-3, 1e-5)
    ]  # fmt: skip
    # With q = 1 - 1/alpha = h / (1 + h) and L = log p_c < 0, alpha's loss is
    # (1 - e^{qL}) / q = -L - q L^2 / 2 - q^2 L^3 / 6 - ...: an alternating series, so the
    # gap to -L is at most q L^2 / 2 < h L^2 / 2. Twice that bound; the round-off of
    # (1 - p^q) / q, ~EPS64 / q = 2e-11, is far below it.
    log_pc = torch.log_softmax(logits, 1).gather(1, labels[:, None])
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-5 * float((log_pc**2).max())


def test_alpha_infinity_is_one_minus_pc():
    logits, labels, _ = random_batch(n=10, seed=12)
    p_c = torch.softmax(logits, 1).gather(1, labels[:, None]).squeeze(1)
    got = get_loss("alpha", alpha=math.inf, reduction="none")(logits, labels)
    torch.testing.assert_close(got, 1 - p_c, **F64)  # float64 both sides, values <= 1


def test_truncated_log_has_no_gradient_below_k():
    logits = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]], requires_grad=True)
    value = get_loss("truncated_log", k=0.5, reduction="sum")(logits, torch.tensor([1, 1]))
    (grad,) = torch.autograd.grad(value, logits)
    assert torch.all(grad[0] == 0) and torch.any(grad[1] != 0)
    want = -math.log(0.5) - float(torch.log_softmax(logits[1].detach().double(), 0)[1])
    # float32 loss vs float64 reference: -log 0.5 rounds at EPS32 * 0.7, sample 1's log-softmax
    # of logits <= 5 errs at the scale of the largest logit, ~2 EPS32 * 5 = 6e-7, the sum once
    # more: < 7e-7 in all -> abs 1e-6. Forgetting the truncation at k would cost 4.3.
    assert float(value.detach()) == pytest.approx(want, rel=0, abs=1e-6)


# ---------------------------------------------------------------------------------------
# errors a user can cause


def _loss_error(match, fn, *args, **kwargs):
    with pytest.raises(LosslabError, match=match):
        fn(*args, **kwargs)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_losslab_error(name):
    loss = make_loss(name)
    logits, labels, soft = random_batch(n=4, seed=13, dtype=torch.float32)
    _loss_error("shape", loss, logits[0], labels)
    _loss_error("shape", loss, logits[None], labels)
    _loss_error("C >= 2", loss, logits[:, :1], labels)
    _loss_error("labels", loss, logits, labels[:3])
    _loss_error("integer", loss, logits, labels.float())
    _loss_error("does not match", loss, logits, soft[:, :3])
    _loss_error(r"\[0, 4\)", loss, logits, torch.tensor([0, 1, 4, 2]))
    _loss_error(r"\[0, 4\)", loss, logits, torch.tensor([0, -1, 3, 2]))
    _loss_error("sum to 1", loss, logits, soft * 2)
    _loss_error("non-negative", loss, logits, soft.index_fill(1, torch.tensor([0]), -0.5))
    for bad in (math.nan, math.inf, -math.inf):
        _loss_error("NaN or inf", loss, logits.index_fill(0, torch.tensor([2]), bad), labels)
    _loss_error("floating-point", loss, labels[:, None].expand(4, C), labels)
    _loss_error("reduction", get_loss, name, reduction="avg")
    _loss_error("weight", get_loss, name, weight=[1.0, -1.0, 1.0, 1.0])
    _loss_error("weight", get_loss, name, weight=[[1.0, 1.0]])
    _loss_error("C = 4", make_loss(name, weight=[1.0, 2.0, 3.0]), logits, labels)


@pytest.mark.parametrize("name", [n for n, c in LOSSES.items() if issubclass(c, ProbabilityLoss)])
def test_bad_probability_raises(name):
    _loss_error("probability", get_loss, name, probability="softplus")


@pytest.mark.parametrize(
    ("name", "kwargs", "match"),
    [
        ("alpha", {"alpha": 0.0}, "alpha"),
        ("alpha", {"alpha": -1.0}, "alpha"),
        ("alpha", {"alpha": math.nan}, "alpha"),
        ("gce", {"q": 0.0}, r"q .*\(0, 1\]"),
        ("gce", {"q": 1.5}, r"q .*\(0, 1\]"),
        ("gce", {"q": -0.2}, "q"),
        ("truncated_log", {"k": 1.5}, "k"),
        ("truncated_log", {"k": -0.1}, "k"),
        ("two_scale", {"eta": -0.1}, "eta"),
        ("two_scale_fixed", {"eta": -1.0}, "eta"),
        ("two_scale_separation", {"eta": -1.0}, "eta"),
        ("two_scale", {"eta": math.nan}, "eta"),
        ("log", {"alpha": 2.0}, "bad arguments"),
        ("gce", {"q": "high"}, "real number"),
    ],
)
def test_bad_hyper_parameters_raise(name, kwargs, match):
    _loss_error(match, get_loss, name, **kwargs)


def test_unknown_name_lists_valid_names():
    with pytest.raises(LosslabError) as info:
        get_loss("cross_entropyy")
    message = str(info.value)
    assert all(name in message for name in LOSSES)
    _loss_error("Did you mean 'tanimoto'", get_loss, "tanimto")


def test_names_are_case_and_dash_insensitive():
    assert isinstance(get_loss("Cauchy-Schwarz"), LOSSES["cauchy_schwarz"])


def test_validate_false_skips_the_value_checks_only():
    loss = get_loss("log", validate=False)
    logits = torch.tensor([[math.nan, 0.0]])
    assert torch.isnan(loss(logits, torch.tensor([0])))
    _loss_error("shape", loss, logits[0], torch.tensor([0]))


@pytest.mark.parametrize("module", [losslab.losses, definition, janocha, robust, two_scale])
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
