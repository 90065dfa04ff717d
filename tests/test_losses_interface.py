"""The loss interface a trainer relies on, the functional forms, and refusals of bad input.

Covers: every registered loss subclasses ``Loss`` and honours ``per_sample`` /
``requires_scale`` / ``attach`` / ``predict_logits``; ``losslab.functional.<name>``
equals the module; an empty batch is refused; two-scale losses initialise from the first
``scale=``; the separation loss's ``scale="fixed"`` reading of the paper.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from torch import nn

import losslab.functional as LF
from losslab.errors import LosslabError
from losslab.losses import (
    LOSSES,
    Loss,
    ProbabilityLoss,
    get_loss,
    skip_finite_check,
    skip_label_check,
)
from losslab.losses.janocha import JANOCHA_LOSSES
from losslab.losses.robust import ROBUST_LOSSES
from losslab.losses.two_scale import BASE_LOSSES, TWO_SCALE_LOSSES
from losslab.models.scale import parameter_scale

C = 5
EPS32 = 2.0**-24  # float32 unit round-off
# float64 on both sides, the same formula up to the order of a few roundings; logits <= ~1e2
# (factor 10 on |z| <= ~10), whose log-sum-exp rounds at a few EPS64 (1.1e-16) * 1e2 ~ 1e-13:
# 1e-12 is a >= 10x margin.
F64 = {"rtol": 1e-12, "atol": 1e-12}
NAMES = sorted(LOSSES)
STATELESS = sorted(set(LOSSES) - set(TWO_SCALE_LOSSES))


def _batch(n=6, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    logits = 2 * torch.randn(n, C, generator=gen, dtype=dtype)
    return logits, torch.randint(0, C, (n,), generator=gen)


def _loss(name, **kwargs):
    loss = get_loss(name, **kwargs)
    return loss.attach(2.0) if name in TWO_SCALE_LOSSES else loss


@pytest.mark.parametrize("name", NAMES)
def test_every_loss_implements_the_interface(name):
    cls = LOSSES[name]
    assert issubclass(cls, Loss) and isinstance(cls.requires_scale, bool)
    fresh = get_loss(name)
    assert fresh.attach(nn.Linear(3, C, bias=False)) is fresh
    loss = _loss(name)
    logits, labels = _batch()
    values = loss.per_sample(logits, labels)
    assert values.shape == (6,)
    # reduction="none" without weights returns the very values per_sample computes (the
    # same kernel on the same inputs): bit-identical, as are the unweighted values below.
    torch.testing.assert_close(
        values, _loss(name, reduction="none")(logits, labels), rtol=0, atol=0
    )
    weighted = _loss(name, weight=[1.0, 2.0, 3.0, 4.0, 5.0])
    # per_sample is unweighted even when the module has class weights.
    torch.testing.assert_close(weighted.per_sample(logits, labels), values, rtol=0, atol=0)
    if name not in TWO_SCALE_LOSSES:
        assert loss.predict_logits(logits) is logits


def test_two_scale_bases_are_the_other_two_families():
    assert BASE_LOSSES == {**JANOCHA_LOSSES, **ROBUST_LOSSES}
    source = inspect.getsource(__import__("losslab.losses.two_scale", fromlist=["x"]))
    assert "from losslab.losses import LOSSES" not in source


@pytest.mark.parametrize("name", STATELESS)
def test_functional_form_equals_the_module(name):
    logits, labels = _batch(seed=1)
    soft = torch.softmax(torch.randn(6, C, dtype=torch.float64), -1)
    fn = getattr(LF, name)
    weight = torch.tensor([0.5, 1.0, 2.0, 1.0, 3.0], dtype=torch.float64)
    for target in (labels, soft):
        for reduction in ("mean", "sum", "none"):
            want = get_loss(name, reduction=reduction, weight=weight)(logits, target)
            got = fn(logits, target, reduction=reduction, weight=weight)
            # the functional form runs the module's code: bit-identical (here and below)
            torch.testing.assert_close(got, want, rtol=0, atol=0)
    kwargs = {"alpha": {"alpha": 3.0}, "gce": {"q": 0.3}, "truncated_log": {"k": 0.2}}
    if name in kwargs:
        torch.testing.assert_close(
            fn(logits, labels, **kwargs[name]),
            get_loss(name, **kwargs[name])(logits, labels),
            rtol=0,
            atol=0,
        )
    if issubclass(LOSSES[name], ProbabilityLoss):
        torch.testing.assert_close(
            fn(logits, labels, probability="sigmoid"),
            get_loss(name, probability="sigmoid")(logits, labels),
            rtol=0,
            atol=0,
        )


@pytest.mark.parametrize("name", STATELESS)
def test_functional_form_has_the_modules_options_name_and_docstring(name):
    fn = getattr(LF, name)
    options = inspect.signature(LOSSES[name]).parameters
    keywords = {
        p.name: p.default
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert keywords == {k: p.default for k, p in options.items()}
    assert fn.__name__ == name and fn.__module__ == "losslab.losses.functional"
    assert any(paper in fn.__doc__ for paper in ("Janocha", "Mendez-Vazquez", "Zhang", "Berlyand"))


def test_repr_shows_the_hyper_parameters_then_reduction_and_weight():
    assert repr(get_loss("gce", q=0.5, reduction="sum")) == "GCELoss(q=0.5, reduction='sum')"
    assert repr(get_loss("log", probability="sigmoid", weight=[1.0, 2.0])) == (
        "LogLoss(probability='sigmoid', reduction='mean', weight=[1.0, 2.0])"
    )
    assert repr(get_loss("hinge")) == "HingeLoss(reduction='mean')"


def test_functional_refuses_bad_arguments():
    logits, labels = _batch()
    with pytest.raises(LosslabError, match="q"):
        LF.gce(logits, labels, q=0.0)
    with pytest.raises(LosslabError, match="probability"):
        LF.log(logits, labels, probability="softplus")
    with pytest.raises(LosslabError, match=r"\[0, 5\)"):
        LF.hinge(logits, labels + C)
    with pytest.raises(LosslabError, match="validate"):
        LF.l1(logits, labels, validate="yes")


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_is_refused(name):
    loss = _loss(name)
    for target in (torch.zeros(0, dtype=torch.long), torch.zeros(0, C)):
        with pytest.raises(LosslabError, match="empty"):
            loss(torch.zeros(0, C), target)
    if name in STATELESS:
        with pytest.raises(LosslabError, match="empty"):
            getattr(LF, name)(torch.zeros(0, C), torch.zeros(0, dtype=torch.long))


@pytest.mark.parametrize("name", NAMES)
def test_labels_are_refused_before_the_kernel_and_name_the_fix(name):
    logits, labels = _batch(dtype=torch.float32)
    bad = labels.clone()
    bad[3] = 1_000_000
    with pytest.raises(LosslabError, match=r"\[0, 5\); got values from \d+ to 1000000"):
        _loss(name)(logits, bad)


def test_skip_finite_check_lets_a_trainer_see_nan_but_still_checks_labels():
    logits, labels = _batch(dtype=torch.float32)
    logits[2, 1] = math.nan
    loss = get_loss("log")
    with pytest.raises(LosslabError, match="NaN or inf"):
        loss(logits, labels)
    with skip_finite_check():
        assert torch.isnan(loss(logits, labels))
        with pytest.raises(LosslabError, match=r"\[0, 5\)"):
            loss(logits, labels - C)
    with pytest.raises(LosslabError, match="NaN or inf"):  # the block has ended
        loss(logits, labels)


def test_skip_label_check_skips_only_the_label_range_and_only_inside_the_block():
    logits, labels = _batch(dtype=torch.float32)
    loss = get_loss("hinge")
    shifted = labels.clone()
    shifted[0] = C
    want = loss(logits, labels)
    with skip_label_check():
        # the same kernel on the same input: bit-identical
        assert torch.equal(loss(logits, labels), want)
        with pytest.raises(LosslabError, match="target has"):  # shapes are still checked
            loss(logits, labels[:-1])
    with pytest.raises(LosslabError, match=r"\[0, 5\)"):  # the block has ended
        loss(logits, shifted)


def test_minus_infinity_on_a_wrong_class_is_probability_zero_like_cross_entropy():
    # -inf logits mask classes (F.cross_entropy accepts them); on the target or as NaN/+inf
    # they are refused.
    logits = torch.tensor([[0.0, -math.inf, 1.0], [2.0, 0.0, -math.inf]])
    labels = torch.tensor([0, 1])
    want = torch.nn.functional.cross_entropy(logits, labels)
    # two float32 log-softmax implementations of logits <= 2 (C = 3): each within ~2 EPS32
    # times max|o| + log C ~ 3.1 of exact, 4e-7; so <= 8e-7 apart -> atol 16 EPS32 = 1e-6
    torch.testing.assert_close(get_loss("log")(logits, labels), want, rtol=0, atol=16 * EPS32)
    with pytest.raises(LosslabError, match="NaN or inf"):
        get_loss("log")(logits, torch.tensor([1, 1]))


def test_validate_full_checks_everything_up_front():
    logits, labels = _batch(dtype=torch.float32)
    logits[0, 0] = -math.inf
    assert torch.isfinite(get_loss("log")(logits, labels)) or labels[0] == 0
    with pytest.raises(LosslabError, match="NaN or inf"):
        get_loss("log", validate="full")(logits, labels)
    with pytest.raises(LosslabError, match="validate"):
        get_loss("log", validate="always")


# ---------------------------------------------------------------------------------------
# two-scale: scale= alone, dtypes, the separation loss's fixed R


def test_scale_alone_initialises_r1_like_attach():
    logits, labels = _batch(dtype=torch.float64)
    alone = get_loss("two_scale", eta=0.5).double()
    value = alone(logits, labels, scale=3.0)
    # 3 and 30 are exact in float32 and float64: set, not computed with rounding
    assert alone.r1.item() == 3.0 and alone.r2.item() == 30.0
    attached = get_loss("two_scale", eta=0.5).attach(3.0).double()
    # R1 = R = 3 (exact in float32 and float64) either way: the same operations on the same
    # numbers, bit-identical
    torch.testing.assert_close(value, attached(logits, labels), rtol=0, atol=0)
    # Later scales are the model's current R, they do not re-initialise R1.
    alone(logits, labels, scale=5.0)
    assert alone.r1.item() == 3.0  # untouched, and 3 is exact in any float dtype
    with pytest.raises(LosslabError, match="r1="):
        get_loss("two_scale")(logits, labels, scale=torch.full((6,), 2.0))
    with pytest.raises(LosslabError, match="attach"):
        get_loss("two_scale")(logits, labels)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_result_has_the_dtype_of_half_logits(name, dtype):
    logits, labels = _batch(dtype=torch.float32)
    loss = _loss(name)
    half = loss(logits.to(dtype), labels)
    assert half.dtype == dtype
    # Computed in float32 from the rounded logits, then rounded once: at most half an ulp
    # (unit round-off 2^-11 float16, 2^-8 bfloat16) from float32; rtol = one ulp is a 2x
    # margin. atol ulp * 1e-3 (1e-6 / 8e-6) covers float16's subnormals below 6e-5, whose
    # absolute spacing is 2^-24 = 6e-8.
    want = _loss(name)(logits.to(dtype).float(), labels)
    ulp = 2.0**-10 if dtype == torch.float16 else 2.0**-7
    torch.testing.assert_close(half.float(), want, rtol=ulp, atol=ulp * 1e-3)
    assert loss.per_sample(logits.to(dtype), labels).dtype == dtype


def _net(seed=0):
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, C, bias=False))
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return net.double()


def test_separation_fixed_scale_uses_r0_z_over_r():
    net = _net()
    x = torch.randn(12, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    labels = torch.randint(0, C, (12,), generator=torch.Generator().manual_seed(4))
    fixed = get_loss("two_scale_separation", scale="fixed", eta=0.5, reduction="none")
    assert fixed.requires_scale and not get_loss("two_scale_separation").requires_scale
    # float64 before attach, so that R0 is R in float64 (attached first, R0 would be rounded
    # to a float32 buffer: 6e-8 relative, ~3e-7 on these losses)
    fixed = fixed.double().attach(net)
    r0 = parameter_scale(net).item()
    with torch.no_grad():
        net[0].weight.mul_(1.7)  # the model's R moves; R0 stays
    z = net(x)
    r = parameter_scale(net).item()
    zd = z.detach().numpy()
    dx = np.array([zd[i, c] - np.delete(zd[i], c).max() for i, c in enumerate(labels.tolist())])
    factor = torch.tensor(np.where(dx >= 0.5, 10.0, 1.0) * r0 / r)[:, None]
    want = torch.nn.functional.cross_entropy(z.detach() * factor, labels, reduction="none")
    # float64 both sides; R0 / R and R_s R0 / R round differently by an EPS64 or two (F64)
    torch.testing.assert_close(fixed(z, labels).detach(), want, **F64)
    torch.testing.assert_close(fixed.predict_logits(z).detach(), z.detach() * r0 / r, **F64)
    trained = get_loss("two_scale_separation", eta=0.5, reduction="none").double().attach(net)
    want_trained = torch.nn.functional.cross_entropy(
        z.detach() * torch.tensor(np.where(dx >= 0.5, 10.0, 1.0))[:, None], labels,
        reduction="none",
    )  # fmt: skip
    torch.testing.assert_close(trained(z, labels).detach(), want_trained, **F64)
    with pytest.raises(LosslabError, match="scale"):
        get_loss("two_scale_separation", scale="evolving")


def test_chebyshev_gradient_at_ties_is_shared_evenly_like_amax():
    # Row 0: two wrong classes tie for the largest probability; row 1: no tie; row 2: all
    # wrong classes equal. The index path (hand-written backward) must give amax's even
    # split, which the one-hot path (plain autograd on |p - y|) gives by construction.
    logits = torch.tensor(
        [[0.0, 3.0, 3.0, 1.0, -1.0], [2.0, 0.5, -1.0, 0.0, 1.0], [0.0, 4.0, 4.0, 4.0, 4.0]],
        dtype=torch.float64,
    )
    labels = torch.tensor([0, 4, 0])
    grads = []
    for target in (labels, torch.nn.functional.one_hot(labels, C).double()):
        z = logits.clone().requires_grad_(True)
        get_loss("chebyshev", reduction="sum")(z, target).backward()
        grads.append(z.grad)
    # same float64 formula for d p_j / d o, summed over C = 5 terms p_j (delta_jk - p_k) whose
    # absolute values add up to <= 1, in another order: <= 5 EPS64 = 5.5e-16 absolute, so
    # atol 1e-15 (2x) for entries that cancel to ~0; rtol 1e-12 for the others
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-12, atol=1e-15)
    assert not grads[0].requires_grad  # a first derivative builds no graph
    assert grads[0][0, 1] == grads[0][0, 2] != 0
