"""Tests of losslab.activations: every registered activation against a float64 NumPy
formula written independently, against PyTorch's built-in where one exists, float64
gradcheck (inputs and trainable parameters), hypothesis properties, and errors.

The tables below are keyed by registry name and a test asserts they cover ACTIVATIONS,
so a newly registered activation fails until it is given a reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats
from torch import nn

from losslab import activations as act
from losslab.activations import (
    ACTIVATIONS,
    INITIALIZERS,
    get_activation,
    init_,
    recommended_init,
)
from losslab.errors import LosslabError

# Klambauer et al. 2017, eq. 14 constants, typed from the paper (not imported).
_SELU_L = 1.0507009873554804934
_SELU_A = 1.6732632423543772848


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


# name -> [(kwargs, float64 NumPy reference)], each written from the seed's formula.
REFERENCES = {
    "sigmoid": [
        ({}, lambda x: special.expit(x)),
        ({"a": 2.5}, lambda x: special.expit(2.5 * x)),
    ],
    "tanh": [({}, np.tanh)],
    "relu": [({}, lambda x: np.maximum(x, 0.0))],
    "softplus": [
        ({}, lambda x: np.logaddexp(0.0, x)),
        ({"k": 3.0}, lambda x: np.logaddexp(0.0, 3.0 * x) / 3.0),
    ],
    "piecewise_linear": [({}, lambda x: np.minimum(1.0, np.maximum(0.0, x + 0.5)))],
    "leaky_relu": [
        ({}, lambda x: np.maximum(0.0, x) + 0.01 * np.minimum(0.0, x)),
        ({"alpha": 0.3}, lambda x: np.maximum(0.0, x) + 0.3 * np.minimum(0.0, x)),
    ],
    "prelu": [
        ({}, lambda x: np.maximum(0.0, x) + 0.25 * np.minimum(0.0, x)),
        # the slope parameter lives in float32 (torch's default dtype) before .double()
        ({"init": 0.1}, lambda x: np.maximum(0.0, x) + np.float32(0.1) * np.minimum(0.0, x)),
    ],
    "elu": [
        ({}, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))),
        ({"alpha": 0.5}, lambda x: np.where(x > 0, x, 0.5 * np.expm1(np.minimum(x, 0.0)))),
    ],
    "selu": [({}, lambda x: _SELU_L * np.where(x > 0, x, _SELU_A * np.expm1(np.minimum(x, 0.0))))],
    "swish": [
        ({}, lambda x: x * special.expit(x)),
        ({"beta": 2.0}, lambda x: x * special.expit(2.0 * x)),
        ({"beta": 0.0}, lambda x: x / 2.0),
        ({"beta": 1.5, "trainable": True}, lambda x: x * special.expit(1.5 * x)),
    ],
    "gelu": [
        ({}, lambda x: 0.5 * x * special.erfc(-x / math.sqrt(2.0))),
        (
            {"approximate": "tanh"},
            lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3))),
        ),
    ],
    "adaptive_relu": [
        # slope sigmoid(0 x + b), b = logit(1/4) stored in float32: 1/4 up to ~1e-8 relative
        ({}, lambda x: np.maximum(special.expit(float(np.float32(_logit(0.25)))) * x, x)),
        (
            {"init_slope": 0.1, "init_weight": 0.7},
            # parameters live in float32 (torch's default dtype) before .double()
            lambda x: np.maximum(
                special.expit(np.float32(0.7) * x + np.float32(_logit(0.1))) * x, x
            ),
        ),
    ],
}

# name -> PyTorch built-in with the same kwargs mapped to torch's names.
TORCH_BUILTINS = {
    "sigmoid": [({}, nn.Sigmoid())],
    "tanh": [({}, nn.Tanh())],
    "relu": [({}, nn.ReLU())],
    "softplus": [({}, nn.Softplus()), ({"k": 3.0}, nn.Softplus(beta=3.0))],
    # clamp(x + 1/2, 0, 1) = hardsigmoid(6 x) = relu6(6x + 3) / 6
    "piecewise_linear": [({}, lambda x: nn.Hardsigmoid()(6 * x))],
    "leaky_relu": [({}, nn.LeakyReLU()), ({"alpha": 0.3}, nn.LeakyReLU(0.3))],
    "prelu": [({}, nn.PReLU()), ({"init": 0.1}, nn.PReLU(init=0.1))],
    "elu": [({}, nn.ELU()), ({"alpha": 0.5}, nn.ELU(0.5))],
    "selu": [({}, nn.SELU())],
    "swish": [({}, nn.SiLU())],
    "gelu": [({}, nn.GELU()), ({"approximate": "tanh"}, nn.GELU(approximate="tanh"))],
}

# Every error a user can cause through kwargs.
BAD_KWARGS = [
    ("sigmoid", {"a": 0.0}),
    ("sigmoid", {"a": float("nan")}),
    ("softplus", {"k": -1.0}),
    ("leaky_relu", {"alpha": -0.1}),
    ("leaky_relu", {"alpha": "0.1"}),
    ("prelu", {"num_parameters": 0}),
    ("prelu", {"num_parameters": 2.0}),
    ("prelu", {"init": float("inf")}),
    ("elu", {"alpha": 0.0}),
    ("elu", {"alpha": -1.0}),
    ("swish", {"beta": -1.0}),
    ("swish", {"trainable": "yes"}),
    ("gelu", {"approximate": "erf"}),
    ("adaptive_relu", {"init_slope": 1.0}),
    ("adaptive_relu", {"init_slope": 0.0}),
    ("adaptive_relu", {"num_parameters": -3}),
    ("relu", {"alpha": 0.1}),
    ("tanh", {"inplace": True}),
]

ALL_CASES = [(name, kw, ref) for name, cases in REFERENCES.items() for kw, ref in cases]
CASE_IDS = [f"{name}-{kw}" for name, kw, _ in ALL_CASES]

# A grid from the saturated tails through the kinks (0, +-1/2) to overflow territory.
GRID = np.concatenate(
    [np.linspace(-30, 30, 601), [-1e4, -700.0, -88.0, -1e-8, 0.0, 1e-8, 88.0, 700.0, 1e4]]
)
# Kinks of the piecewise-linear units, where gradcheck's finite differences are invalid.
KINKS = np.array([-0.5, 0.0, 0.5])


def _build(name, kwargs, dtype=torch.float64):
    return get_activation(name, **kwargs).to(dtype)


def test_tables_cover_the_registry():
    assert set(REFERENCES) == set(ACTIVATIONS)
    assert set(TORCH_BUILTINS) <= set(ACTIVATIONS)


@pytest.mark.parametrize(("name", "kwargs", "ref"), ALL_CASES, ids=CASE_IDS)
def test_values_against_float64_numpy(name, kwargs, ref):
    module = _build(name, kwargs)
    out = module(torch.from_numpy(GRID)).detach().numpy()
    with np.errstate(over="ignore"):
        expected = ref(GRID)
    # float64 both sides, the same or an algebraically equal formula of <= ~10 operations and
    # libm calls, each within ~1 ulp (2.2e-16): <= ~2e-15 relative -> rtol 1e-13 (50x).
    # Cancellations (1 + erf(x / sqrt 2), 1 + tanh(.) of GELU for x < 0) lose precision only
    # absolutely, at |x| * 2.2e-16 <= 7e-15 on |x| <= 30 (beyond, both saturate to 0 or x):
    # atol 1e-13. softplus: torch returns x once k x > 20, an error log1p(e^-kx) / k, i.e.
    # <= e^-20 / 20 = 1.03e-10 relative to x: rtol 2e-10 for it.
    rtol = 2e-10 if name == "softplus" else 1e-13
    np.testing.assert_allclose(out, expected, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize(
    ("name", "kwargs", "builtin"),
    [(n, kw, b) for n, cases in TORCH_BUILTINS.items() for kw, b in cases],
    ids=lambda v: str(v) if not callable(v) else "builtin",
)
def test_matches_pytorch_builtin(name, kwargs, builtin):
    x = torch.linspace(-12, 12, 2401, dtype=torch.float32).reshape(-1, 1)
    ours = get_activation(name, **kwargs)(x)
    theirs = builtin(x)
    # Two float32 formulas (e.g. x sigmoid(x) vs SiLU's x / (1 + e^-x)) of <= ~4 roundings of
    # EPS32 = 6e-8 each: <= ~2.4e-7 relative apart -> rtol 1e-6 (4x). Near a zero of the
    # output only absolute error is defined: hardsigmoid(6 x) rounds 6 x at half an ulp of 3
    # (1.2e-7) before dividing by 6, 2e-8 absolute -> atol 1e-7 (5x).
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("name", "kwargs", "ref"), ALL_CASES, ids=CASE_IDS)
def test_module_and_function_share_one_signature(name, kwargs, ref):
    module = _build(name, kwargs)
    x = torch.linspace(-4, 4, 81, dtype=torch.float64)
    function = getattr(act, name)
    params = dict(module.named_parameters())
    if params:
        # trainable activations: the function takes the parameter tensors instead
        out = function(x, *params.values())
    else:
        out = function(x, **{k: v for k, v in kwargs.items() if k != "trainable"})
    torch.testing.assert_close(out, module(x), rtol=0, atol=0)


@pytest.mark.parametrize(("name", "kwargs", "ref"), ALL_CASES, ids=CASE_IDS)
def test_gradcheck_float64_inputs_and_parameters(name, kwargs, ref):
    module = _build(name, kwargs)
    gen = torch.Generator().manual_seed(0)
    x = torch.empty(3, 5, dtype=torch.float64).uniform_(-4, 4, generator=gen)
    # finite differences are invalid at a kink: push points at least 0.05 away
    near = np.abs(x.numpy()[..., None] - KINKS).min(-1) < 0.05
    x[torch.from_numpy(near)] += 0.1
    x.requires_grad_(True)
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in module.named_parameters()]

    def f(x, *p):
        return torch.func.functional_call(module, dict(zip(names, p, strict=True)), (x,))

    # Central differences, h = 1e-6: truncation h^2 |f^(3)| / 6 < 1e-12 (|f^(3)| <= ~2 for
    # slopes up to 2.5) plus round-off ~10 EPS64 |f| / h with |f| <= 4: ~5e-9. atol 1e-7 is a
    # 20x margin; the bound is absolute, so rtol 0.
    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-7, rtol=0.0)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_extreme_float32_inputs_give_finite_values_and_gradients(name):
    module = get_activation(name)
    x = torch.tensor([-1e4, -1e3, -88.0, -20.0, 0.0, 20.0, 88.0, 1e3, 1e4], requires_grad=True)
    out = module(x)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert torch.isfinite(x.grad).all()
    for p in module.parameters():
        assert torch.isfinite(p.grad).all()


finite_float32 = st.floats(-1e4, 1e4, width=32, allow_nan=False)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@settings(max_examples=40, deadline=None)
@given(values=st.lists(finite_float32, min_size=1, max_size=40))
def test_property_finite(name, values):
    x = torch.tensor(values, dtype=torch.float32, requires_grad=True)
    out = get_activation(name)(x)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all()


MONOTONE = sorted(n for n, cls in ACTIVATIONS.items() if cls.monotone)


@pytest.mark.parametrize("name", MONOTONE)
@settings(max_examples=40, deadline=None)
@given(values=st.lists(finite_float32, min_size=2, max_size=40))
def test_property_monotone(name, values):
    x = torch.tensor(sorted(values), dtype=torch.float64)
    out = get_activation(name).double()(x).detach()
    # Exact comparison: distinct float32 inputs are >= 6e-8 relative apart, so their images
    # under a monotone unit differ by far more than its ~1e-16 float64 evaluation error
    # (or both saturate to the same value).
    assert (out[1:] >= out[:-1]).all()


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("swish", {}), ("gelu", {}), ("adaptive_relu", {"init_weight": 5.0})],
)
def test_non_monotone_flag_is_earned(name, kwargs):
    """Units flagged non-monotone really have a decreasing stretch (a dip below 0)."""
    assert not ACTIVATIONS[name].monotone
    x = torch.linspace(-6, 0, 601, dtype=torch.float64)
    out = get_activation(name, **kwargs).double()(x).detach()
    # the dip (e.g. swish's minimum -0.28 at x = -1.28) falls by ~1e-3 per grid step of 0.01,
    # far beyond float64 round-off
    assert (out[1:] < out[:-1]).any()


def test_selu_constants():
    # both sides are Python floats parsed from >= 20 digits: equal up to ~1 ulp (2.2e-16)
    assert act.SELU_LAMBDA == pytest.approx(_SELU_L, rel=1e-15)
    assert act.SELU_ALPHA == pytest.approx(_SELU_A, rel=1e-15)


def test_unknown_name_lists_valid_names():
    with pytest.raises(LosslabError) as err:
        get_activation("relu6")
    for name in ACTIVATIONS:
        assert name in str(err.value)


@pytest.mark.parametrize(("name", "kwargs"), BAD_KWARGS, ids=str)
def test_bad_kwargs_raise_losslab_error(name, kwargs):
    with pytest.raises(LosslabError, match=name):
        get_activation(name, **kwargs)


def test_bad_function_arguments_raise_losslab_error():
    x = torch.zeros(3)
    with pytest.raises(LosslabError):
        act.leaky_relu(x, alpha=-1.0)
    with pytest.raises(LosslabError):
        act.gelu(x, approximate="fast")


# --------------------------------------------------------------------------- parameters

TRAINABLE = [
    ("prelu", {}, 1),
    ("prelu", {"num_parameters": 4}, 4),
    ("swish", {"trainable": True}, 1),
    ("adaptive_relu", {}, 2),
    ("adaptive_relu", {"num_parameters": 4}, 8),
]


@pytest.mark.parametrize(("name", "kwargs", "count"), TRAINABLE, ids=str)
def test_trainable_parameters_receive_gradients_and_train(name, kwargs, count):
    module = get_activation(name, **kwargs)
    assert sum(p.numel() for p in module.parameters()) == count
    x = torch.linspace(-3, 3, 4 * 6).reshape(6, 4)
    before = [p.detach().clone() for p in module.parameters()]
    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    # a target below the current output on the negative side moves every parameter
    loss = ((module(x) - (x - 1.0)) ** 2).mean()
    loss.backward()
    opt.step()
    for old, new in zip(before, module.parameters(), strict=True):
        assert not torch.equal(old, new.detach())


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) - {"prelu", "adaptive_relu"}))
def test_fixed_activations_have_no_parameters(name):
    assert list(get_activation(name).parameters()) == []


@pytest.mark.parametrize("name", ["prelu", "adaptive_relu"])
def test_per_channel_parameters_use_dimension_1(name):
    module = get_activation(name, num_parameters=3).double()
    with torch.no_grad():
        module.weight.copy_(torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
    x = -torch.ones(2, 3, 4, 4, dtype=torch.float64)
    out = module(x)
    for c in range(3):
        single = get_activation(name).double()
        with torch.no_grad():
            single.weight.fill_(module.weight[c].item())
            if name == "adaptive_relu":
                single.bias.fill_(module.bias[c].item())
        # the same element-wise formula with the same parameter values: bit-identical
        torch.testing.assert_close(out[:, c], single(x[:, c]), rtol=0, atol=0)
    with pytest.raises(LosslabError, match="per-channel"):
        module(torch.zeros(2, 5))


def test_prelu_per_channel_matches_torch():
    ours, theirs = get_activation("prelu", num_parameters=3), nn.PReLU(3)
    with torch.no_grad():
        ours.weight.copy_(torch.tensor([0.1, 0.2, 0.3]))
        theirs.weight.copy_(ours.weight)
    x = torch.randn(4, 3, 5, generator=torch.Generator().manual_seed(1))
    # max(0, x) + w min(0, x) and torch's x > 0 ? x : w x round the one product w x alike
    # (adding 0 is exact): bit-identical
    torch.testing.assert_close(ours(x), theirs(x), rtol=0, atol=0)


def test_adaptive_relu_slope_is_input_dependent_and_in_unit_interval():
    module = get_activation("adaptive_relu", init_slope=0.3, init_weight=0.8).double()
    x = torch.linspace(-8, -0.01, 200, dtype=torch.float64)
    slope = (module(x) / x).detach()
    # sigmoid(0.8 x + logit(0.3)) on [-8, -0.01] spans [7e-4, 0.3]: inside (0, 1) and spread
    # by 0.296, both far beyond float64 round-off
    assert ((slope > 0) & (slope < 1)).all()
    assert slope.max() - slope.min() > 0.2
    pos = torch.linspace(0.01, 8, 50, dtype=torch.float64)
    # max(s x, x) with s < 1 returns x itself for x > 0: exact
    torch.testing.assert_close(module(pos), pos, rtol=0, atol=0)


def test_swish_trainable_beta_is_a_parameter_and_fixed_beta_is_not():
    trainable = get_activation("swish", beta=2.0, trainable=True)
    assert [n for n, _ in trainable.named_parameters()] == ["beta"]
    fixed = get_activation("swish", beta=2.0)
    x = torch.linspace(-3, 3, 13)
    # x sigmoid(beta x) with beta = 2 as a float32 tensor or a number: the same roundings
    torch.testing.assert_close(trainable(x), fixed(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_docstrings_state_formula_seed_and_shape(name):
    doc = ACTIVATIONS[name].__doc__
    assert ".. math::" in doc and "Seed:" in doc and "Shape:" in doc
    assert getattr(act, name).__doc__


def test_recommended_init_names_an_initializer():
    for name in ACTIVATIONS:
        assert recommended_init(name) in INITIALIZERS
    assert recommended_init("relu") == "he"
    assert recommended_init("tanh") == "xavier"
    assert recommended_init("sigmoid") == "xavier"
    assert recommended_init("selu") == "lecun"
    with pytest.raises(LosslabError):
        recommended_init("nope")


# --------------------------------------------------------------------------- initialisers

# (shape, scheme, kwargs, expected variance written from the formula, independently of torch)
INIT_VARIANCES = [
    ((400, 600), "he", {}, 2.0 / 600),
    ((400, 600), "he", {"mode": "fan_out"}, 2.0 / 400),
    ((64, 32, 3, 3), "he", {}, 2.0 / (32 * 9)),
    ((400, 600), "xavier", {}, 2.0 / (400 + 600)),
    ((400, 600), "xavier", {"distribution": "uniform"}, 2.0 / (400 + 600)),
    ((400, 600), "xavier", {"gain": 5.0 / 3.0}, (5.0 / 3.0) ** 2 * 2.0 / 1000),
    ((64, 32, 3, 3), "xavier", {}, 2.0 / (32 * 9 + 64 * 9)),
    ((400, 600), "lecun", {}, 1.0 / 600),
    ((64, 32, 3, 3), "lecun", {}, 1.0 / (32 * 9)),
    ((400, 600), "normal", {}, 1e-8),
    ((400, 600), "normal", {"std": 0.3}, 0.09),
    ((400, 600), "torch", {}, 1.0 / (3 * 600)),
]


@pytest.mark.parametrize(("shape", "scheme", "kwargs", "variance"), INIT_VARIANCES, ids=str)
def test_initializer_mean_and_variance(shape, scheme, kwargs, variance):
    w = torch.empty(shape, dtype=torch.float64)
    init_(w, scheme, torch.Generator().manual_seed(3), **kwargs)
    n = w.numel()
    values = w.numpy().ravel()
    # Relative standard error of a sample variance is at most sqrt(2 / n) for these
    # (normal or uniform) laws: 0.3% for 240k draws, 1.0% for the 18k conv draws; that of
    # the mean is sqrt(variance / n). Both statistics are ~normal at these n, so a correct
    # initialiser leaves eight standard errors with probability P(|Z| > 8) = 1.2e-15 per
    # check (the seed makes the outcome deterministic); float64 round-off is ~1e-14.
    assert np.var(values) == pytest.approx(variance, rel=8 * math.sqrt(2.0 / n))
    assert abs(values.mean()) < 8 * math.sqrt(variance / n)


@pytest.mark.parametrize(("scheme", "kwargs"), [("he", {}), ("lecun", {}), ("xavier", {})])
def test_normal_initializers_are_gaussian(scheme, kwargs):
    w = torch.empty(300, 200, dtype=torch.float64)
    init_(w, scheme, torch.Generator().manual_seed(4), **kwargs)
    values = w.numpy().ravel()
    # Under a correct initialiser the p-value is uniform (conservative here: the scale is
    # estimated), so the check fails with probability <= 1e-6; a wrong law is far out of
    # reach: a uniform of the same variance is 0.042 away in KS distance, p ~ e^-200 at
    # these 60k draws.
    assert stats.kstest(values / values.std(), "norm").pvalue > 1e-6


def test_xavier_uniform_bound_and_shape():
    w = init_(
        torch.empty(300, 200, dtype=torch.float64),
        "xavier",
        torch.Generator().manual_seed(5),
        distribution="uniform",
    )
    bound = math.sqrt(6.0 / 500)
    values = w.numpy().ravel()
    assert np.abs(values).max() <= bound
    # false alarm probability 1e-6 (uniform p-value); a normal law of the same variance is
    # 0.042 away in KS distance, p ~ e^-200 at 60k draws
    assert stats.kstest(values, "uniform", args=(-bound, 2 * bound)).pvalue > 1e-6


@pytest.mark.parametrize(
    ("scheme", "kwargs", "reference"),
    [
        ("he", {}, lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="relu", generator=g)),
        (
            "he",
            {"mode": "fan_out"},
            lambda w, g: nn.init.kaiming_normal_(w, mode="fan_out", generator=g),
        ),
        ("lecun", {}, lambda w, g: nn.init.kaiming_normal_(w, nonlinearity="linear", generator=g)),
    ],
    ids=["he", "he-fan_out", "lecun"],
)
def test_initializers_match_pytorch_kaiming(scheme, kwargs, reference):
    ours = init_(torch.empty(20, 8, 3), scheme, torch.Generator().manual_seed(6), **kwargs)
    theirs = reference(torch.empty(20, 8, 3), torch.Generator().manual_seed(6))
    # The same draws times std; std computed by two float64 formulas may differ by an ulp,
    # after which the float32 product rounds once: <= 1 float32 ulp (1.2e-7) apart -> 1e-6.
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)


@pytest.mark.parametrize("scheme", sorted(INITIALIZERS))
def test_initializers_use_only_the_given_generator(scheme):
    global_state = torch.random.get_rng_state()
    a = init_(torch.empty(30, 20), scheme, torch.Generator().manual_seed(7))
    b = init_(torch.empty(30, 20), scheme, torch.Generator().manual_seed(7))
    c = init_(torch.empty(30, 20), scheme, torch.Generator().manual_seed(8))
    assert torch.equal(torch.random.get_rng_state(), global_state)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_init_fills_a_parameter_in_place_without_autograd():
    layer = nn.Linear(10, 4)
    out = init_(layer.weight, "he", torch.Generator().manual_seed(0))
    assert out is layer.weight and layer.weight.requires_grad and out.grad_fn is None


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda g: init_(torch.empty(5), "he", g), "shape"),
        (lambda g: init_(torch.empty(5, 5), "he", None), "torch.Generator"),
        (lambda g: init_(torch.empty(5, 5), "kaiming", g), "he, lecun, normal, torch, xavier"),
        (lambda g: init_(torch.empty(5, 5), "he", g, mode="fan_avg"), "mode"),
        (lambda g: init_(torch.empty(5, 5), "xavier", g, distribution="cauchy"), "distribution"),
        (lambda g: init_(torch.empty(5, 5), "xavier", g, gain=0.0), "gain"),
        (lambda g: init_(torch.empty(5, 5), "normal", g, std=-1.0), "std"),
        (lambda g: init_(torch.empty(5, 5), "lecun", g, std=1.0), "lecun"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_initializer_errors(call, match):
    with pytest.raises(LosslabError, match=match):
        call(torch.Generator().manual_seed(0))


def test_the_initialisers_live_in_losslab_init_and_keep_their_old_import_path():
    import losslab.init

    for name in losslab.init.__all__:
        assert getattr(act, name) is getattr(losslab.init, name), name
