"""The two-scale losses of Berlyand, Creese & Jabin (2021): scales, attach, eq. 15, baselines.

Registry-wide contracts (values vs NumPy, gradcheck w.r.t. the logits, extremes,
reductions, bad input) are in ``test_losses.py``; this file checks what only the
two-scale losses have: trainable scales, the model scale R, per-sample scales and
evaluation logits.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from losslab.errors import LosslabError
from losslab.losses import get_loss
from losslab.losses.two_scale import TWO_SCALE_LOSSES, _positive
from losslab.models.scale import parameter_scale

C = 4
EPS32 = 2.0**-24  # float32 unit round-off
EPS64 = 2.0**-53  # float64 unit round-off
# float64 on both sides, the same formula up to the order of a few roundings; logits <= ~1e2
# (factor R2 / R = 10 on |z| <= ~10), whose log-sum-exp rounds at a few EPS64 * 1e2 ~ 1e-13:
# 1e-12 is a >= 10x margin.
F64 = {"rtol": 1e-12, "atol": 1e-12}


def homogeneous_net(seed=0, dtype=torch.float64):
    """A bias-free ReLU MLP: z(c * alpha) = c^3 z(alpha), so z = R z_hat exactly."""
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(5, 8, bias=False), nn.ReLU(), nn.Linear(8, 8, bias=False), nn.ReLU(),
        nn.Linear(8, C, bias=False),
    ).to(dtype)  # fmt: skip
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=dtype))
    return net


def batch(n=12, seed=0, dtype=torch.float64, spread=3.0):
    gen = torch.Generator().manual_seed(seed)
    logits = spread * torch.randn(n, C, generator=gen, dtype=dtype)
    labels = torch.randint(0, C, (n,), generator=gen)
    return logits, labels


def confidence(logits, labels):
    others = logits.clone()
    others[torch.arange(len(labels)), labels] = -math.inf
    return logits[torch.arange(len(labels)), labels] - others.max(1).values


def test_attach_initialises_r1_to_model_scale_and_r2_to_ten_r1():
    net = homogeneous_net()
    loss = get_loss("two_scale").attach(net)
    r = parameter_scale(net).item()
    # R1, R2 are float32 parameters (the default dtype): R1 is R rounded once, R2 = 10 R
    # rounded once more, <= 2 EPS32 = 1.2e-7 relative; rel 1e-6 is an 8x margin.
    assert loss.r1.item() == pytest.approx(r, rel=1e-6)
    assert loss.r2.item() == pytest.approx(10 * r, rel=1e-6)
    assert {n for n, _ in loss.named_parameters()} == {"r1_raw", "r2_raw"}
    assert list(get_loss("two_scale_fixed").attach(net).parameters()) == []
    assert {n for n, _ in get_loss("two_scale_separation").named_parameters()} == {"rs_raw"}
    # attaching again (or a different model) keeps the scales already initialised
    loss.attach(homogeneous_net(seed=1))
    assert loss.r1.item() == pytest.approx(r, rel=1e-6)


def test_explicit_scales_win_over_attach():
    loss = get_loss("two_scale", r1=3.0, r2=7.0).attach(homogeneous_net())
    # float32 parameters: at most one rounding of EPS32 = 6e-8 relative (3, 7, 30 are even
    # exact); rel 1e-6 could only miss a wrong scale that is within 1e-6 of the right one.
    assert (loss.r1.item(), loss.r2.item()) == pytest.approx((3.0, 7.0), rel=1e-6)
    assert get_loss("two_scale", r1=3.0).r2.item() == pytest.approx(30.0, rel=1e-6)


def test_model_scale_is_used_with_gradient_and_has_no_radial_component():
    net = homogeneous_net()
    loss = get_loss("two_scale", eta=0.5).attach(net).double()
    with torch.no_grad():  # move away from R1 = R so that R1 z / R != z
        for p in net.parameters():
            p.mul_(1.3)
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    labels = torch.randint(0, C, (16,), generator=torch.Generator().manual_seed(2))
    z = net(x)
    implicit = loss(z, labels)
    explicit = loss(z, labels, scale=parameter_scale(net))
    # The attached path calls parameter_scale(net) itself: the same operations in the same
    # order on the same values, hence bit-identical.
    torch.testing.assert_close(implicit, explicit, rtol=0, atol=0)
    implicit.backward()
    # The loss depends on each layer only through its direction (eqs. 13-14): scaling one
    # layer by c changes z and R by the same factor c, so <alpha_l, grad_l> = 0 (Euler).
    for layer in (m for m in net if isinstance(m, nn.Linear)):
        w = layer.weight
        # The gradient is O(1) here (entries up to ~1.5): 1e-3 only rules out a vanishing
        # one, for which Euler's identity below would hold trivially.
        assert w.grad.abs().max() > 1e-3
        # float64: each gradient entry is the result of backpropagating through 3 layers and
        # sums over 16 samples and 8 units (~100 roundings, ~100 EPS64 relative); the inner
        # product adds <= 64 more. The sum of |w_i g_i| bounds the amplification: 1000 EPS64
        # times it (~2e-12 here) is a ~5x margin.
        products = (w * w.grad).detach()
        bound = 1000 * EPS64 * float(products.abs().sum())
        assert float(products.sum()) == pytest.approx(0.0, abs=bound)


def test_eq15_derivative_wrt_r2_negative_on_every_well_classified_sample():
    logits, labels = batch(n=40, seed=3)
    loss = get_loss("two_scale", eta=0.5, reduction="none").attach(1.7).double()
    per_sample = loss(logits, labels)
    well = confidence(logits, labels) >= 0.5
    assert 0 < int(well.sum()) < len(labels)
    for i in range(len(labels)):
        d_r1, d_r2 = torch.autograd.grad(
            per_sample[i], [loss.r1_raw, loss.r2_raw], retain_graph=True
        )
        if well[i]:
            assert d_r2 < 0 and d_r1 == 0
        else:
            assert d_r2 == 0 and d_r1 != 0


def test_separation_derivative_wrt_rs_non_positive():
    logits, labels = batch(n=40, seed=4)
    loss = get_loss("two_scale_separation", eta=0.5, reduction="none").double()
    per_sample = loss(logits, labels)
    well = confidence(logits, labels) >= 0.5
    for i in range(len(labels)):
        (d_rs,) = torch.autograd.grad(per_sample[i], [loss.rs_raw], retain_graph=True)
        assert (d_rs < 0) if well[i] else (d_rs == 0)


def test_sgd_step_grows_r2():
    net = homogeneous_net(dtype=torch.float32)
    with torch.no_grad():  # small weights: R2 z / R stays in the range where d loss/d R2 != 0
        for p in net.parameters():
            p.mul_(0.2)
    loss = get_loss("two_scale", eta=0.1).attach(net)
    r2_before = loss.r2.item()
    opt = torch.optim.SGD([*net.parameters(), *loss.parameters()], lr=0.1)
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(5))
    z = net(x)
    labels = z.argmax(1)  # every sample correctly classified, most beyond eta
    loss(z, labels).backward()
    opt.step()
    # The step lr * |dL/dR2| moves R2 by ~2e-5 relative, ~200 float32 ulps (EPS32 = 6e-8): a
    # strict increase is not a rounding accident.
    assert loss.r2.item() > r2_before


def test_eta_infinity_is_the_single_scale_baseline_exactly():
    logits, labels = batch(n=20, seed=6)
    results = []
    for kwargs in ({"eta": math.inf}, {"baseline": True, "eta": 0.1}):
        loss = get_loss("two_scale", **kwargs).attach(2.5).double()
        o = logits.clone().requires_grad_(True)
        value = loss(o, labels)
        value.backward()
        results.append((value.detach(), o.grad, loss.r1_raw.grad))
    (value_inf, grad_inf, r1_grad_inf), (value_base, grad_base, r1_grad_base) = results
    # eta = inf selects R1 for every sample, so the rescaled logits, the value and dL/do are
    # the same products of the same numbers: bit-identical.
    assert torch.equal(value_inf, value_base) and torch.equal(grad_inf, grad_base)
    # dL/dR1 sums the N * C = 80 terms dL/do * o / R (R1 / R = 1, R = 2.5) in another grouping
    # (per sample, then over samples, vs one sum): <= 80 EPS64 relative to their absolute sum.
    terms = (grad_base * logits).abs().sum() / 2.5
    assert float((r1_grad_inf - r1_grad_base).abs()) <= 80 * EPS64 * float(terms)


def test_baseline_is_log_loss_on_r1_z_over_r_not_on_z():
    net = homogeneous_net()
    # float64 before attach: R1 keeps R in float64 (attached first, R1 would be R rounded to
    # float32, 6e-8 relative, and the loss would move by ~6e-8 |z| ~ 5e-7).
    loss = get_loss("two_scale", baseline=True).double().attach(net)
    x = torch.randn(10, 5, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    labels = torch.randint(0, C, (10,), generator=torch.Generator().manual_seed(8))
    log_loss = get_loss("log")
    # R1 = R at t=0: the factor R1 / R is 1 up to an EPS64 rounding (F64)
    torch.testing.assert_close(loss(net(x), labels), log_loss(net(x), labels), **F64)
    with torch.no_grad():
        net[0].weight.mul_(2.0)
    z = net(x)
    # R doubles, so the two now differ by O(0.1) or more: far outside allclose's 1e-5
    assert not torch.allclose(loss(z, labels), log_loss(z, labels))
    torch.testing.assert_close(
        loss(z, labels),
        log_loss(loss.r1.detach() * z / parameter_scale(net).detach(), labels),
        **F64,
    )


def test_per_sample_scale_matches_one_sample_at_a_time():
    logits, labels = batch(n=6, seed=9)
    scales = torch.tensor([0.5, 1.0, 2.0, 3.0, 4.0, 8.0], dtype=torch.float64)
    for name in ("two_scale", "two_scale_fixed"):
        loss = get_loss(name, eta=1.0, reduction="none", r1=1.5, r2=6.0).double()
        together = loss(logits, labels, scale=scales)
        alone = torch.cat(
            [loss(logits[i : i + 1], labels[i : i + 1], scale=scales[i]) for i in range(6)]
        )
        # Every operation is per sample (row-wise over C = 4), so the batch and one-row calls
        # do the same roundings: bit-identical.
        torch.testing.assert_close(together, alone, rtol=0, atol=0)
        same = loss(logits, labels, scale=torch.full((6,), 2.0, dtype=torch.float64))
        # the same factors R / 2 broadcast or per sample: the same products, bit-identical
        torch.testing.assert_close(
            same, loss(logits, labels, scale=torch.tensor(2.0)), rtol=0, atol=0
        )


def test_predict_logits_use_r1_never_r2():
    logits, labels = batch(n=10, seed=10)
    loss = get_loss("two_scale", eta=1e-9, r1=2.0, r2=50.0).double()  # nearly every sample on R2
    # R1 / R = 2 / 4 = 1/2: a power of two, exact
    torch.testing.assert_close(loss.predict_logits(logits, scale=4.0), logits * 0.5, rtol=0, atol=0)
    per_sample = torch.linspace(1, 4, 10, dtype=torch.float64)
    # z (R1 / R) vs (z R1) / R: two float64 roundings each, <= 4 EPS64 = 4.4e-16 apart
    torch.testing.assert_close(
        loss.predict_logits(logits, scale=per_sample),
        logits * 2.0 / per_sample[:, None],
        rtol=8 * EPS64,
        atol=0,
    )
    separation = get_loss("two_scale_separation", rs=10.0)
    assert torch.equal(separation.predict_logits(logits), logits)


def test_scales_stay_positive_when_the_raw_value_goes_negative():
    loss = get_loss("two_scale", r1=1.0, r2=10.0)
    with torch.no_grad():
        loss.r1_raw.fill_(-5.0)
    # floor^2 / (2 floor - raw) = 1e-4 / 5.02 = 2e-5: far inside (0, floor)
    assert 0 < loss.r1.item() < 0.01
    (slope,) = torch.autograd.grad(loss.r1, loss.r1_raw)
    assert slope.item() > 0  # a step back up is still possible
    # C^1 at the floor: value and slope match the identity there
    with torch.no_grad():
        loss.r1_raw.fill_(0.01)
    # the float32 parameter holds 0.01 rounded once: <= EPS32 = 6e-8 relative
    assert loss.r1.item() == pytest.approx(0.01, rel=1e-6)

    for value in (0.01 - 1e-7, 0.01 + 1e-7):
        raw = torch.tensor(value, dtype=torch.float64, requires_grad=True)
        (slope,) = torch.autograd.grad(_positive(raw, torch.tensor(0.01, dtype=torch.float64)), raw)
        # Above the floor the slope is 1; below, floor^2 / (2 floor - raw)^2 = (1 + d / floor)^-2
        # ~ 1 - 2 d / floor = 1 - 2e-5 at d = 1e-7: rel 1e-4 is a 5x margin, while a kink
        # (a jump of the slope) would be O(1).
        assert slope.item() == pytest.approx(1.0, rel=1e-4)


def test_gradcheck_with_respect_to_the_scales():
    logits, labels = batch(n=8, seed=11, spread=1.5)
    for name, eta in (("two_scale", 0.7), ("two_scale_separation", 0.7)):
        loss = get_loss(name, eta=eta, reduction="sum").attach(1.3).double()
        names = [n for n, _ in loss.named_parameters()]
        params = tuple(p.detach().clone().requires_grad_(True) for p in loss.parameters())
        o = logits.clone().requires_grad_(True)

        def f(o, *ps, loss=loss, names=names):
            return functional_call(loss, dict(zip(names, ps, strict=True)), (o, labels))

        # Central differences with h = 1e-6: truncation h^2 |f^(3)| / 6 < 1e-10 (logits <= ~1e1
        # here), round-off ~10 EPS64 |f| / h ~ 1e-9 |f|; atol 1e-8 max(1, |f|) is a 10x margin.
        with torch.no_grad():
            atol = 1e-8 * max(1.0, abs(float(f(o, *params))))
        assert torch.autograd.gradcheck(f, (o, *params), eps=1e-6, atol=atol, rtol=0.0)


def test_other_base_loss():
    logits, labels = batch(n=10, seed=12)
    loss = get_loss("two_scale", eta=1.0, base="gce", q=0.5, r1=2.0, r2=20.0, reduction="none")
    gce = get_loss("gce", q=0.5, reduction="none")
    well = confidence(logits, labels) >= 1.0
    factor = torch.where(well, 20.0, 2.0).double()[:, None] / 4.0
    # factors 5 and 1/2 are exact; z R / 4 vs z (R / 4) may differ by one EPS64 rounding (F64)
    torch.testing.assert_close(
        loss(logits, labels, scale=4.0), gce(logits * factor, labels), **F64
    )


def test_state_dict_round_trip():
    source = get_loss("two_scale").attach(homogeneous_net())
    with torch.no_grad():
        source.r2_raw.add_(1.0)
    target = get_loss("two_scale")
    target.load_state_dict(source.state_dict())
    assert target.r1.item() == source.r1.item() and target.r2.item() == source.r2.item()
    logits, labels = batch(n=4, dtype=torch.float32)
    # identical scales (checked bit for bit above), identical operations: bit-identical
    torch.testing.assert_close(
        target(logits, labels, scale=2.0), source(logits, labels, scale=2.0), rtol=0, atol=0
    )


def test_two_scale_errors():
    logits, labels = batch(n=4, dtype=torch.float32)
    with pytest.raises(LosslabError, match="attach"):
        get_loss("two_scale")(logits, labels)
    with pytest.raises(LosslabError, match="attach"):
        get_loss("two_scale").predict_logits(logits)
    loss = get_loss("two_scale", r1=1.0)
    with pytest.raises(LosslabError, match="attach"):
        loss(logits, labels)  # R1 given, but no model scale R yet
    for bad in (0.0, -1.0, math.nan, torch.tensor([1.0, 2.0, -1.0, 1.0])):
        with pytest.raises(LosslabError, match="finite and > 0"):
            loss(logits, labels, scale=bad)
    with pytest.raises(LosslabError, match="one value per sample"):
        loss(logits, labels, scale=torch.ones(3))
    with pytest.raises(LosslabError, match="0-dim"):
        get_loss("two_scale").attach(torch.ones(2))
    with pytest.raises(LosslabError, match="> 0|\\(0, inf\\]|lie in"):
        get_loss("two_scale").attach(-2.0)
    with pytest.raises(LosslabError, match="no nn.Linear"):
        get_loss("two_scale").attach(nn.ReLU())
    with pytest.raises(LosslabError, match="cannot wrap"):
        get_loss("two_scale", base="two_scale_fixed")
    with pytest.raises(LosslabError, match="Valid base loss names: .*cauchy_schwarz"):
        get_loss("two_scale_separation", base="logg")
    with pytest.raises(LosslabError, match="bad arguments"):
        get_loss("two_scale", base="log", q=0.5)
    with pytest.raises(LosslabError, match="baseline"):
        get_loss("two_scale", baseline=True, r2=3.0)
    with pytest.raises(LosslabError, match="r1"):
        get_loss("two_scale", r1=0.0)
    # Berlyand et al. restrict the threshold to eta > 0 (after eq. 13): at eta <= 0 a large R2
    # would raise the loss of barely classified objects instead of lowering it.
    for name in TWO_SCALE_LOSSES:
        for eta in (0.0, -0.5):
            with pytest.raises(LosslabError, match=r"eta .*must be > 0"):
                get_loss(name, eta=eta)
    with pytest.raises(LosslabError, match="rs"):
        get_loss("two_scale_separation", rs=-1.0)
    with pytest.raises(LosslabError, match="frozen"):
        get_loss("two_scale_fixed", trainable=True)
