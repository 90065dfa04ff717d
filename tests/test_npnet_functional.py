"""Every hand-derived backward of losslab.npnet against centred differences, in float64.

Each check multiplies the forward output by a random upstream gradient (CS231n style),
so the whole vector-Jacobian product is tested, not one output at a time. One tolerance,
TOL below, derived from the step h and float64 round-off, holds for every check (issue 3
allowed 1e-5 for batch-norm and softmax; the derivation does not need it). Inputs are
kept away from the kinks of the piecewise functions so the differences are smooth.
The last tests check the engine's contract: no torch import, dtype kept, dout untouched.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from losslab import npnet
from losslab.errors import LosslabError
from losslab.npnet import functional as F
from losslab.npnet.gradcheck import numerical_gradient, relative_error


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread per pytest worker: OpenBLAS threads spin-wait and crawl when two
    workers share two cores (the torch counterpart is in conftest.py)."""
    with threadpool_limits(1):
        yield


# Centred differences with h = 1e-6 in float64 (numerical_gradient's default). Truncation:
# h**2 / 6 * |f^(3)| ~ 1e-12 * |f^(3)| (|f^(3)| <= ~30 here: sigmoid(2.5 x), softplus(3 x)).
# Round-off: <f(x +- h e_i), dout> is a float64 sum of S = sum_j |f_j dout_j| <= ~1e2, rounded to
# ~eps64 * S = 1e-14 on either side, so each entry of the estimate carries ~eps64 * S / h ~ 1e-8,
# against gradient entries of order 1: relative error ~1e-8 (measured <= 9e-9, adaptive ReLU;
# batch-norm and softmax <= 1e-9, no worse). 10x that. A wrong constant of 1e-6 relative
# (e.g. batch-norm's eps left out of the backward: eps / (2 var) ~ 1e-6) is still caught.
TOL = 1e-7


def _away_from(x: np.ndarray, kinks=(0.0,), margin: float = 1e-3) -> np.ndarray:
    """Move every entry closer than ``margin`` to a kink out to ``kink +/- margin``."""
    x = x.copy()
    for k in kinks:
        near = np.abs(x - k) < margin
        x[near] = k + np.where(x[near] >= k, margin, -margin)
    return x


def _gradcheck(forward, backward, arrays: dict, kwargs: dict | None = None, tol=TOL, seed=99):
    """Compare backward(dout, cache) with numerical gradients of <forward(...), dout>.

    ``arrays`` are the differentiable inputs, in the order backward returns their
    gradients; ``kwargs`` the non-differentiable ones.
    """
    kwargs = kwargs or {}
    out, cache = forward(**arrays, **kwargs)
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    dout_before = dout.copy()
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    assert len(grads) == len(arrays)
    np.testing.assert_array_equal(dout, dout_before)
    for (name, x), g in zip(arrays.items(), grads, strict=True):
        assert g.shape == x.shape, name
        numeric = numerical_gradient(lambda: forward(**arrays, **kwargs)[0], x, dout)
        err = relative_error(g, numeric)
        assert err < tol, f"{forward.__name__} d{name}: relative error {err:.2e}"


def _normal(*shape, seed=0, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


# ---------------------------------------------------------------------------
# the gradient-check helper itself
# ---------------------------------------------------------------------------


def test_numerical_gradient_of_known_function():
    x = _normal(3, 4)
    dout = _normal(3, 4, seed=1)
    numeric = numerical_gradient(lambda: np.sin(x) * np.exp(x), x, dout)
    exact = (np.cos(x) + np.sin(x)) * np.exp(x) * dout
    # 12 terms: S = sum |sin(x) exp(x) dout| ~ 10, so round-off ~eps64 * S / h ~ 1e-9 per entry
    # and truncation h**2 / 6 * |f^(3)| ~ 1e-12 * e**|x| ~ 1e-11, against |gradient| ~ 1
    # (measured 2e-11: most of the two sums' round-off cancels). The bound without cancellation.
    assert relative_error(numeric, exact) < 1e-9
    np.testing.assert_array_equal(x, _normal(3, 4))


def test_relative_error_detects_a_wrong_gradient():
    a = _normal(10)
    assert relative_error(a, a) == 0
    # Two float64 norms of 10 terms and a quotient: ~(10 + 3) eps64 ~ 1.5e-15 relative; 10x.
    assert relative_error(a, 1.01 * a) == pytest.approx(0.01 / 2.01, rel=2e-14)
    with pytest.raises(LosslabError, match="shapes differ"):
        relative_error(a, a[:3])


def test_numerical_gradient_rejects_float32():
    x = np.ones(3, dtype=np.float32)
    with pytest.raises(LosslabError, match="float64"):
        numerical_gradient(lambda: x, x)


def test_check_layer_flags_a_broken_backward():
    class Broken(npnet.Linear):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["W"] = 1.001 * self.grads["W"]
            return dx

    errors = npnet.check_layer(Broken(4, 3, rng=0), _normal(5, 4), np.random.default_rng(0))
    assert errors["x"] < TOL and errors["b"] < TOL
    # A gradient off by a factor 1.001 has relative error 0.001 / 2.001 = 5e-4 (up to the
    # estimate's ~1e-8); 1e-4 sits well between that and TOL.
    assert errors["W"] > 1e-4


# ---------------------------------------------------------------------------
# linear, activations, softmax, cross-entropy, dropout
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias):
    arrays = {"x": _normal(5, 4), "W": _normal(4, 3, seed=1)}
    if bias:
        arrays["b"] = _normal(3, seed=2)
        _gradcheck(F.linear_forward, F.linear_backward, arrays)
    else:
        _gradcheck(
            F.linear_forward,
            lambda dout, cache: F.linear_backward(dout, cache)[:2],
            arrays,
            {"b": None},
        )


X_ACT = _away_from(_normal(4, 6, scale=2.0), kinks=(0.0, -0.5, 0.5))

ACTIVATION_CASES = [
    ("sigmoid", {}),
    ("sigmoid", {"a": 2.5}),
    ("tanh", {}),
    ("relu", {}),
    ("softplus", {}),
    ("softplus", {"k": 3.0}),
    ("piecewise_linear", {}),
    ("leaky_relu", {}),
    ("leaky_relu", {"alpha": 0.2}),
    ("elu", {}),
    ("elu", {"alpha": 0.5}),
    ("selu", {}),
    ("gelu", {}),
    ("gelu", {"approximate": "tanh"}),
]


@pytest.mark.parametrize("name,kwargs", ACTIVATION_CASES)
def test_fixed_activation(name, kwargs):
    forward, backward = getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")
    _gradcheck(forward, backward, {"x": X_ACT}, kwargs)


@pytest.mark.parametrize("channels", [1, 6])
def test_prelu(channels):
    a = _normal(channels, seed=3)
    _gradcheck(F.prelu_forward, F.prelu_backward, {"x": X_ACT, "a": a})
    x4 = _away_from(_normal(2, 6, 3, 3, seed=4))
    _gradcheck(F.prelu_forward, F.prelu_backward, {"x": x4, "a": a})


@pytest.mark.parametrize("channels", [1, 6])
def test_adaptive_relu(channels):
    w, b = _normal(channels, seed=5), _normal(channels, seed=6)
    _gradcheck(F.adaptive_relu_forward, F.adaptive_relu_backward, {"x": X_ACT, "w": w, "b": b})
    x4 = _away_from(_normal(2, 6, 3, 3, seed=7))
    _gradcheck(F.adaptive_relu_forward, F.adaptive_relu_backward, {"x": x4, "w": w, "b": b})


def test_swish_with_trainable_beta():
    _gradcheck(F.swish_forward, F.swish_backward, {"x": X_ACT, "beta": np.array([1.7])})


def test_softmax():
    _gradcheck(F.softmax_forward, F.softmax_backward, {"x": _normal(5, 7, scale=3)}, tol=TOL)


def test_softmax_cross_entropy_value_and_gradient():
    logits = _normal(6, 4, scale=3)
    y = np.array([0, 3, 1, 1, 2, 0])
    loss, dlogits = F.softmax_cross_entropy(logits, y)
    # Reference written differently: log of the explicit softmax, in float64.
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # float64: each -log p_y is rounded to ~5 eps64 * (1 + max |logit| ~ 10) ~ 6e-15 absolute
    # (exp, sum of 4, divide, log), against a mean loss ~2.4: ~3e-15 relative. 1e-12 leaves room
    # for NumPy's SIMD exp/log, whose last bits differ between CPUs.
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(6), y])), rel=1e-12)
    numeric = numerical_gradient(lambda: F.softmax_cross_entropy(logits, y)[0], logits)
    assert relative_error(dlogits, numeric) < TOL


def test_softmax_cross_entropy_is_finite_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    loss, dlogits = F.softmax_cross_entropy(logits, np.array([1, 1]))
    # Exactly (2e4 + 0) / 2 up to e**-1e4; float32 rounds a few operations on values ~1e4 to a
    # few eps32 = 6e-8 relative; 1e-6 is ~16 eps32.
    assert loss == pytest.approx(1e4, rel=1e-6)
    assert np.all(np.isfinite(dlogits))


def test_dropout_gradient_with_fixed_mask():
    x = _normal(6, 5)

    def forward(x):
        # A fresh generator with the same seed draws the same mask at every call.
        return F.dropout_forward(x, 0.3, np.random.default_rng(1))

    _gradcheck(forward, F.dropout_backward, {"x": x})


def test_dropout_statistics_and_eval_identity():
    x = np.ones((400, 500))
    out, mask = F.dropout_forward(x, 0.4, np.random.default_rng(0))
    dropped = np.mean(out == 0)
    # 200k Bernoulli(0.4) draws: the standard error of the rate is sqrt(.4 * .6 / 2e5) = 1.1e-3;
    # 6e-3 is 5.5 standard errors (a random seed would fail with probability ~4e-8).
    assert abs(dropped - 0.4) < 6e-3
    # The kept value is 1 * (1 / 0.6) rounded once or twice in float64: <= 2 eps64 from 1 / 0.6.
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.6], rtol=1e-15, atol=0)
    # out.mean() - 1 = (0.4 - dropped) / 0.6: standard error 1.8e-3, 1e-2 is 5.5 of them again.
    assert abs(out.mean() - 1) < 1e-2
    out_eval, cache = F.dropout_forward(x, 0.4, np.random.default_rng(0), training=False)
    assert out_eval is x and cache is None
    with pytest.raises(LosslabError, match="dropout probability"):
        F.dropout_forward(x, 1.0, np.random.default_rng(0))


# ---------------------------------------------------------------------------
# batch-norm
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 5), (4, 3, 3, 2)])
def test_batchnorm_train(shape):
    c = shape[1]
    arrays = {
        "x": _normal(*shape, scale=2) + 1,
        "gamma": _normal(c, seed=1) + 1,
        "beta": _normal(c, seed=2),
    }
    _gradcheck(F.batchnorm_forward, F.batchnorm_backward, arrays, tol=TOL)


def test_batchnorm_eval_uses_running_statistics():
    running = {"mean": _normal(5, seed=3), "var": np.exp(_normal(5, seed=4))}
    arrays = {"x": _normal(8, 5), "gamma": _normal(5, seed=1), "beta": _normal(5, seed=2)}
    kwargs = {"running": running, "training": False}
    _gradcheck(F.batchnorm_forward, F.batchnorm_backward, arrays, kwargs, tol=TOL)
    out, _ = F.batchnorm_forward(**arrays, **kwargs)
    expected = (arrays["x"] - running["mean"]) / np.sqrt(running["var"] + 1e-5)
    # The same ~6 float64 operations, possibly regrouped (gamma / sqrt folded first): each
    # output is rounded to ~6 eps64 of its terms |gamma x_hat| + |beta| <= ~10, i.e. ~7e-15
    # absolute, which is relative only away from 0: atol 1e-13 (~15x) for outputs near 0.
    np.testing.assert_allclose(
        out, arrays["gamma"] * expected + arrays["beta"], rtol=1e-12, atol=1e-13
    )
    with pytest.raises(LosslabError, match="running statistics"):
        F.batchnorm_forward(**arrays, training=False)


def test_batchnorm_train_output_is_normalised():
    x = _normal(50, 4, scale=3) + 7
    out, _ = F.batchnorm_forward(x, np.ones(4), np.zeros(4), eps=0.0)
    # float64, 50 samples with |x| <= ~16 (mean 7, sd 3): the batch mean is rounded to
    # ~50 eps64 * 16 / 50, x_hat to ~3 eps64 * |x| / sd more; mean and variance of x_hat (sums
    # of 50 terms <= ~3) add ~eps64 * 3 * log2(50). Bound ~1e-14 (measured 7e-16); 10x.
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-13)
    np.testing.assert_allclose(out.var(axis=0), 1, rtol=1e-13)


# ---------------------------------------------------------------------------
# convolution and pooling
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1), ((1, 2), (2, 0))])
def test_conv2d(stride, padding):
    arrays = {
        "x": _normal(2, 3, 6, 5),
        "W": _normal(4, 3, 3, 2, seed=1),
        "b": _normal(4, seed=2),
    }
    _gradcheck(F.conv2d_forward, F.conv2d_backward, arrays, {"stride": stride, "padding": padding})


def _distinct(*shape, seed=0):
    """Values at least 0.01 apart, so a 1e-6 perturbation never changes a window's max."""
    n = int(np.prod(shape))
    return 0.01 * np.random.default_rng(seed).permutation(n).reshape(shape).astype(float)


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), 0)])
def test_max_pool2d(kernel, stride, padding):
    kwargs = {"kernel_size": kernel, "stride": stride, "padding": padding}
    _gradcheck(F.max_pool2d_forward, F.max_pool2d_backward, {"x": _distinct(2, 3, 6, 7)}, kwargs)


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), 0)])
def test_avg_pool2d(kernel, stride, padding):
    kwargs = {"kernel_size": kernel, "stride": stride, "padding": padding}
    _gradcheck(F.avg_pool2d_forward, F.avg_pool2d_backward, {"x": _normal(2, 3, 6, 7)}, kwargs)


def test_conv_and_pool_shape_errors():
    x = _normal(1, 3, 4, 4)
    with pytest.raises(LosslabError, match="channels"):
        F.conv2d_forward(x, _normal(2, 2, 3, 3), None)
    with pytest.raises(LosslabError, match="does not fit"):
        F.conv2d_forward(x, _normal(2, 3, 5, 5), None)
    with pytest.raises(LosslabError, match="does not fit"):
        F.max_pool2d_forward(x, 5)


# ---------------------------------------------------------------------------
# losses (every registered one, every probability map, soft targets)
# ---------------------------------------------------------------------------


def loss_cases():
    """(name, kwargs) for every registered loss: its defaults, the sigmoid variant where
    it has one, and the interesting values of its hyper-parameter."""
    extra = {
        "alpha": [{"alpha": 0.5}, {"alpha": 1.0}, {"alpha": float("inf")}],
        "gce": [{"q": 0.3}, {"q": 1.0}],
        "truncated_log": [{"k": 0.2}],
    }
    cases = []
    for name, cls in npnet.LOSSES.items():
        cases.append((name, {}))
        if issubclass(cls, npnet.losses.ProbabilityLoss) and not issubclass(
            cls, npnet.losses._SoftmaxLoss
        ):
            cases.append((name, {"probability": "sigmoid"}))
        cases += [(name, kw) for kw in extra.get(name, [])]
    return cases


LOGITS = _away_from(_normal(5, 4, scale=2), kinks=(0.5, -0.5, 1.0, 0.0), margin=1e-2)
LABELS = np.array([0, 3, 1, 1, 2])
SOFT = np.random.default_rng(9).dirichlet(np.ones(4), size=5)


@pytest.mark.parametrize("name,kwargs", loss_cases())
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target", ["labels", "soft"])
def test_loss_gradients(name, kwargs, reduction, target):
    loss = npnet.get_loss(name, reduction=reduction, **kwargs)
    y = LABELS if target == "labels" else SOFT
    logits = LOGITS.copy()
    value = loss.forward(logits, y)
    dout = _normal(5, seed=4) if reduction == "none" else 1.0
    analytic = loss.backward(dout)
    numeric = numerical_gradient(lambda: loss.forward(logits, y), logits, dout)
    assert np.all(np.isfinite(value))
    assert relative_error(analytic, numeric) < TOL


@pytest.mark.parametrize("name,kwargs", loss_cases())
def test_losses_finite_at_extreme_logits(name, kwargs):
    logits = np.array([[1e4, -1e4, 0.0, 3.0], [-1e4, 1e4, -1e4, 0.0]], dtype=np.float32)
    if name == "alpha" and kwargs.get("alpha", 2.0) < 1:
        # alpha < 1 grows like p_c^(1 - 1/alpha): documented to overflow when p_c ~ 0.
        logits = logits / 1e3
    loss = npnet.get_loss(name, **kwargs)
    value = loss.forward(logits, np.array([1, 0]))
    grad = loss.backward()
    assert np.isfinite(value) and np.all(np.isfinite(grad)) and grad.dtype == np.float32


def test_loss_errors():
    with pytest.raises(LosslabError, match="Valid npnet loss names"):
        npnet.get_loss("cross_entropyy")
    with pytest.raises(LosslabError, match="reduction"):
        npnet.get_loss("log", reduction="avg")
    with pytest.raises(LosslabError, match=r"\[0, 4\)"):
        npnet.get_loss("log").forward(LOGITS, np.array([0, 1, 2, 3, 4]))
    with pytest.raises(LosslabError, match="NaN"):
        npnet.get_loss("l2").forward(np.full((2, 4), np.nan), np.array([0, 1]))
    with pytest.raises(LosslabError, match="forward before backward"):
        npnet.get_loss("l2").backward()
    with pytest.raises(LosslabError, match="q must be"):
        npnet.get_loss("gce", q=0.0)


# ---------------------------------------------------------------------------
# the engine's contract
# ---------------------------------------------------------------------------


def test_npnet_never_imports_torch():
    code = "import sys, losslab.npnet; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _float32_layers():
    yield from (npnet.get_activation(name) for name in npnet.ACTIVATIONS)
    yield npnet.PReLU(3, dtype=np.float32)
    yield npnet.Swish(trainable=True, dtype=np.float32)
    yield npnet.AdaptiveReLU(3, dtype=np.float32)
    yield npnet.Linear(3, 4, dtype=np.float32)
    yield npnet.BatchNorm(3, dtype=np.float32)
    yield npnet.Dropout(0.5)
    yield npnet.Sequential(npnet.Conv2d(3, 2, 3, padding=1, dtype=np.float32), npnet.Flatten())


@pytest.mark.parametrize("layer", list(_float32_layers()), ids=repr)
def test_float32_stays_float32(layer):
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32)
    if isinstance(layer, (npnet.Linear, npnet.BatchNorm)):
        x = x[:, :, 0, 0]
    out = layer.forward(x)
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == np.float32 and dx.dtype == np.float32
    # Gradients take the dtype of their parameter (float64 for registry defaults).
    assert all(layer.grads[k].dtype == v.dtype for k, v in layer.params.items())


@pytest.mark.parametrize("name,kwargs", loss_cases())
def test_loss_keeps_float32(name, kwargs):
    loss = npnet.get_loss(name, **kwargs)
    loss.forward(LOGITS.astype(np.float32), LABELS)
    assert loss.backward().dtype == np.float32


def test_layer_backward_before_forward():
    with pytest.raises(LosslabError, match="forward before backward"):
        npnet.Linear(2, 2).backward(np.ones((1, 2)))


def test_skipping_the_input_gradient_keeps_parameter_gradients():
    x = _normal(2, 3, 6, 6)
    for net in (
        npnet.MLP([108, 7, 4], rng=0),
        npnet.Sequential(npnet.Conv2d(3, 4, 3, rng=0), npnet.Flatten(), npnet.Linear(64, 2)),
    ):
        inputs = x.reshape(2, -1) if isinstance(net, npnet.MLP) else x
        dout = _normal(2, net.forward(inputs).shape[1], seed=5)
        net.backward(dout)
        full = {k: v.copy() for k, v in net.grads.items()}
        net.forward(inputs)
        assert net.backward(dout, input_grad=False) is None
        for k, v in net.grads.items():
            np.testing.assert_array_equal(v, full[k])


def test_whole_network_gradcheck():
    net = npnet.MLP([4, 6, 5, 3], activation="tanh", rng=0)
    errors = npnet.check_layer(net, _normal(7, 4), np.random.default_rng(0))
    assert set(errors) == {"x", *net.params}
    assert max(errors.values()) < TOL, errors

    bn_net = npnet.MLP([4, 6, 5, 3], activation="tanh", batchnorm=True, rng=0)
    errors = npnet.check_layer(bn_net, _normal(7, 4), np.random.default_rng(0))
    # A bias right before batch-norm is subtracted out with the mean: its gradient is 0,
    # so only its absolute size can be checked.
    before_bn = {"0.b", "3.b"}
    # That zero is a float64 sum over 7 samples of terms |gamma dout / sd| <= ~10 that cancel
    # exactly: round-off ~7 eps64 * 10 ~ 1e-14; 1e-13 (10x).
    assert all(np.abs(bn_net.grads[k]).max() < 1e-13 for k in before_bn)
    assert max(v for k, v in errors.items() if k not in before_bn) < TOL, errors
