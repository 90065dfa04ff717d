"""npnet against PyTorch in float64: values and every gradient to 1e-12 (RTOL below).

ONE helper, :func:`assert_parity`, runs an operation in npnet and in PyTorch (its own
functional ops, or autograd of a formula written from the papers) and compares the
output and the gradient of every input and parameter for a random upstream gradient.
The tables below are keyed by registry name and tests assert that they cover npnet's
registries, so a new activation or loss fails until it is given a torch reference.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from threadpoolctl import threadpool_limits

from losslab import npnet
from losslab.npnet.losses import ProbabilityLoss, _SoftmaxLoss


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread per pytest worker: OpenBLAS threads spin-wait and crawl when two
    workers share two cores (the torch counterpart is in conftest.py)."""
    with threadpool_limits(1):
        yield


# Both sides are float64 and compute the same formulas in another order or grouping. Each
# compared entry is either a short chain of elementwise operations (<= ~20 roundings, SLEEF or
# libm transcendentals within an ulp or two) or a reduction of at most K ~ 130 terms (conv:
# C_in kh kw <= 54 per output; gradients: batch x positions <= 2 x 64), so it is rounded to
# ~K eps64 = 1.4e-14 of its terms' magnitude. Conditioning adds at most ~10x here: batch-norm's
# 1/sd, the three cancelling terms of its backward, log / power losses near p = 1. Bound
# ~1e-13 relative (measured <= 5e-15); RTOL 1e-12. Entries that cancel to ~0 carry the same
# error in absolute terms, with terms of size <= ~10: ATOL 1e-12. (1e-9 before: it would have
# let a relative error of 1e-10 in a gradient through, e.g. an eps misplaced in a formula.)
RTOL = ATOL = 1e-12


def assert_parity(np_run, torch_fn, arrays: dict, seed: int = 0, upstream: bool = True):
    """Compare an npnet computation with PyTorch's, value and gradients.

    Args:
        np_run: ``np_run(arrays) -> (out, backward)`` with ``backward(dout)`` returning a
            dict of gradients keyed like ``arrays`` (every key must be present).
        torch_fn: ``torch_fn(tensors) -> out``, tensors keyed like ``arrays``.
        arrays: float64 inputs and parameters, in npnet's layout.
        seed: for the random upstream gradient.
        upstream: False for a scalar output (upstream gradient 1).
    """
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    out_t = torch_fn(tensors)
    out, backward = np_run({k: v.copy() for k, v in arrays.items()})
    out = np.asarray(out)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=RTOL, atol=ATOL)
    dout = np.random.default_rng(seed).standard_normal(out.shape) if upstream else 1.0
    out_t.backward(torch.as_tensor(dout, dtype=torch.float64))
    grads = backward(dout)
    assert set(grads) == set(arrays), f"npnet gradients {set(grads)} vs inputs {set(arrays)}"
    for k, t in tensors.items():
        expected = np.zeros(arrays[k].shape) if t.grad is None else t.grad.numpy()
        np.testing.assert_allclose(grads[k], expected, rtol=RTOL, atol=ATOL, err_msg=k)


def layer_run(layer: npnet.Layer):
    """np_run for a layer: params taken from ``arrays`` (every key but "x")."""

    def run(arrays):
        for k, v in arrays.items():
            if k != "x":
                layer.params[k][...] = v
        out = layer.forward(arrays["x"])
        return out, lambda dout: {"x": layer.backward(dout), **layer.grads}

    return run


def _normal(*shape, seed=0, scale=1.0):
    return scale * np.random.default_rng(seed).standard_normal(shape)


def _channel(t, x):
    """A per-channel parameter (C,) or (1,) broadcast along axis 1 of x, as npnet does."""
    return t if t.numel() == 1 else t.reshape((1, -1) + (1,) * (x.dim() - 2))


# ---------------------------------------------------------------------------
# activations: registry name -> [(kwargs, torch function of (x, params))]
# ---------------------------------------------------------------------------

TORCH_ACTIVATIONS = {
    "sigmoid": [
        ({}, lambda x, p: torch.sigmoid(x)),
        ({"a": 2.5}, lambda x, p: torch.sigmoid(2.5 * x)),
    ],
    "tanh": [({}, lambda x, p: torch.tanh(x))],
    "relu": [({}, lambda x, p: TF.relu(x))],
    "softplus": [({}, lambda x, p: TF.softplus(x)), ({"k": 3.0}, lambda x, p: TF.softplus(x, 3.0))],
    "piecewise_linear": [({}, lambda x, p: TF.hardtanh(x + 0.5, 0.0, 1.0))],
    "leaky_relu": [
        ({}, lambda x, p: TF.leaky_relu(x)),
        ({"alpha": 0.2}, lambda x, p: TF.leaky_relu(x, 0.2)),
    ],
    "elu": [({}, lambda x, p: TF.elu(x)), ({"alpha": 0.5}, lambda x, p: TF.elu(x, 0.5))],
    "selu": [({}, lambda x, p: TF.selu(x))],
    "gelu": [
        ({}, lambda x, p: TF.gelu(x)),
        ({"approximate": "tanh"}, lambda x, p: TF.gelu(x, approximate="tanh")),
    ],
    "prelu": [
        ({}, lambda x, p: TF.prelu(x, p["weight"])),
        ({"num_parameters": 6, "init": 0.1}, lambda x, p: TF.prelu(x, p["weight"])),
    ],
    "swish": [
        ({}, lambda x, p: TF.silu(x)),
        ({"beta": 1.5, "trainable": True}, lambda x, p: x * torch.sigmoid(p["beta"] * x)),
    ],
    "adaptive_relu": [
        (
            {"init_weight": 0.7},
            lambda x, p: torch.where(
                x > 0, x, torch.sigmoid(_channel(p["weight"], x) * x + _channel(p["bias"], x)) * x
            ),
        ),
        (
            {"num_parameters": 6, "init_slope": 0.1, "init_weight": -0.4},
            lambda x, p: torch.maximum(
                torch.sigmoid(_channel(p["weight"], x) * x + _channel(p["bias"], x)) * x, x
            ),
        ),
    ],
}


def test_every_activation_has_a_torch_reference():
    assert set(TORCH_ACTIVATIONS) == set(npnet.ACTIVATIONS)


ACT_CASES = [(n, kw, fn) for n, cases in TORCH_ACTIVATIONS.items() for kw, fn in cases]


@pytest.mark.parametrize("shape", [(7, 6), (3, 6, 2, 2)])
@pytest.mark.parametrize("name,kwargs,torch_fn", ACT_CASES, ids=[c[0] for c in ACT_CASES])
def test_activation_parity(name, kwargs, torch_fn, shape):
    layer = npnet.get_activation(name, **kwargs)
    arrays = {"x": _normal(*shape, scale=2.0), **{k: v.copy() for k, v in layer.params.items()}}
    arrays = {k: v + 0.05 * _normal(*v.shape, seed=1) if k != "x" else v for k, v in arrays.items()}
    assert_parity(
        layer_run(layer),
        lambda t: torch_fn(t["x"], {k: v for k, v in t.items() if k != "x"}),
        arrays,
    )


# ---------------------------------------------------------------------------
# modules with weights, softmax, pooling
# ---------------------------------------------------------------------------


def test_linear_parity():
    layer = npnet.Linear(5, 3)
    arrays = {"x": _normal(4, 5), "W": _normal(5, 3, seed=1), "b": _normal(3, seed=2)}
    # npnet stores W as (D, M), torch.nn.Linear's weight is its transpose (M, D).
    assert_parity(layer_run(layer), lambda t: TF.linear(t["x"], t["W"].T, t["b"]), arrays)


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 2), ((2, 1), (0, 1))])
def test_conv2d_parity(stride, padding):
    layer = npnet.Conv2d(3, 4, (3, 2), stride=stride, padding=padding)
    arrays = {"x": _normal(2, 3, 7, 6), "W": _normal(4, 3, 3, 2, seed=1), "b": _normal(4, seed=2)}
    assert_parity(
        layer_run(layer),
        lambda t: TF.conv2d(t["x"], t["W"], t["b"], stride=stride, padding=padding),
        arrays,
    )


@pytest.mark.parametrize("shape", [(10, 4), (3, 4, 5, 2)])
def test_batchnorm_train_parity_and_running_stats(shape):
    layer = npnet.BatchNorm(4, momentum=0.2)
    arrays = {"x": _normal(*shape, scale=3) + 2, "gamma": _normal(4, seed=1), "beta": _normal(4)}
    run_mean, run_var = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    assert_parity(
        layer_run(layer),
        lambda t: TF.batch_norm(
            t["x"], run_mean, run_var, t["gamma"], t["beta"], training=True, momentum=0.2
        ),
        arrays,
    )
    # One momentum update of a batch mean / variance of <= 30 float64 terms, values ~0.4-9: the
    # RTOL derivation above, and no entry near 0.
    np.testing.assert_allclose(layer.running["mean"], run_mean.numpy(), rtol=RTOL)
    np.testing.assert_allclose(layer.running["var"], run_var.numpy(), rtol=RTOL)

    layer.eval()
    arrays["x"] = _normal(*shape, seed=5)
    assert_parity(
        layer_run(layer),
        lambda t: TF.batch_norm(t["x"], run_mean, run_var, t["gamma"], t["beta"], training=False),
        arrays,
    )


@pytest.mark.parametrize("kernel,stride,padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), 1)])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_parity(kind, kernel, stride, padding):
    cls, fn = (
        (npnet.MaxPool2d, TF.max_pool2d) if kind == "max" else (npnet.AvgPool2d, TF.avg_pool2d)
    )
    x = np.random.default_rng(0).permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6) / 10.0
    assert_parity(
        layer_run(cls(kernel, stride, padding)),
        lambda t: fn(t["x"], kernel, stride, padding),
        {"x": x},
    )


def test_softmax_and_cross_entropy_parity():
    def run_softmax(a):
        p, cache = npnet.functional.softmax_forward(a["x"])
        return p, lambda d: {"x": npnet.functional.softmax_backward(d, cache)}

    arrays = {"x": _normal(5, 6, scale=4)}
    assert_parity(run_softmax, lambda t: torch.softmax(t["x"], dim=1), arrays)
    assert_parity(layer_run(npnet.Softmax()), lambda t: torch.softmax(t["x"], dim=1), arrays)

    y = np.array([0, 5, 2, 2, 1])

    def run_ce(a):
        loss, dlogits = npnet.functional.softmax_cross_entropy(a["x"], y)
        return loss, lambda d: {"x": d * dlogits}

    assert_parity(
        run_ce, lambda t: TF.cross_entropy(t["x"], torch.tensor(y)), arrays, upstream=False
    )


def test_dropout_matches_its_mask_and_scales_like_torch():
    layer = npnet.Dropout(0.25, rng=3)
    x = _normal(50, 40)
    out = layer.forward(x)
    mask = out != 0
    # x * (1 / 0.75) with the scale rounded once, against x / 0.75 rounded once: <= 3 half-ulps,
    # 3.3e-16 relative; 1e-15 (3x). Dropped entries and the gradient's zeros are exact.
    np.testing.assert_allclose(out[mask], x[mask] / 0.75, rtol=1e-15)
    dout = _normal(50, 40, seed=1)
    np.testing.assert_allclose(layer.backward(dout), np.where(mask, dout / 0.75, 0), rtol=1e-15)
    # torch's inverted dropout keeps the same 1/(1-p) scale on survivors.
    t = TF.dropout(torch.tensor(x), 0.25, training=True)
    kept = t != 0
    # torch multiplies by the mask scaled by 1 / (1 - p): the same <= 3 half-ulps as above.
    np.testing.assert_allclose(t[kept].numpy(), x[kept.numpy()] / 0.75, rtol=1e-15)
    layer.eval()
    assert layer.forward(x) is x


# ---------------------------------------------------------------------------
# losses: registry name -> torch per-sample value of (logits o, target matrix y, kwargs)
# ---------------------------------------------------------------------------


def _probs(o, probability):
    if probability == "softmax":
        return torch.softmax(o, 1), torch.log_softmax(o, 1), None
    return torch.sigmoid(o), TF.logsigmoid(o), TF.logsigmoid(-o)


def _t_log(o, y, probability="softmax"):
    if probability == "sigmoid":
        return TF.binary_cross_entropy_with_logits(o, y, reduction="none").sum(1)
    return TF.cross_entropy(o, y, reduction="none")


def _t_squared_log(o, y, probability="softmax"):
    _, logp, log_1mp = _probs(o, probability)
    value = ((y * logp) ** 2).sum(1)
    return value if log_1mp is None else value + (((1 - y) * log_1mp) ** 2).sum(1)


def _t_tanimoto(o, y, probability="softmax"):
    p = _probs(o, probability)[0]
    s = (p * y).sum(1)
    return -s / ((p**2).sum(1) + (y**2).sum(1) - s)


def _t_cauchy_schwarz(o, y, probability="softmax"):
    p = _probs(o, probability)[0]
    return -torch.log((p * y).sum(1) / (torch.linalg.norm(p, dim=1) * torch.linalg.norm(y, dim=1)))


def _t_alpha(o, y, alpha=2.0):
    # One-hot form of the slides (Mendez-Vazquez 2025), extended linearly to soft targets.
    p = torch.softmax(o, 1)
    if alpha == 1:
        return -(y * torch.log_softmax(o, 1)).sum(1)
    if math.isinf(alpha):
        return (y * (1 - p)).sum(1)
    return (y * alpha / (alpha - 1) * (1 - p ** (1 - 1 / alpha))).sum(1)


def _t_gce(o, y, q=0.7):
    return (y * (1 - torch.softmax(o, 1) ** q) / q).sum(1)


def _t_truncated_log(o, y, k=0.5):
    return -(y * torch.log(torch.clamp(torch.softmax(o, 1), min=k))).sum(1)


def _t_prob(fn):
    return lambda o, y, probability="softmax": fn(_probs(o, probability)[0], y)


TORCH_LOSSES = {
    "l1": lambda o, y: TF.l1_loss(o, y, reduction="none").sum(1),
    "l2": lambda o, y: TF.mse_loss(o, y, reduction="none").sum(1),
    "expectation": _t_prob(lambda p, y: (p - y).abs().sum(1)),
    "regularised_expectation": _t_prob(lambda p, y: ((p - y) ** 2).sum(1)),
    "chebyshev": _t_prob(lambda p, y: (p - y).abs().amax(1)),
    "hinge": lambda o, y: TF.relu(0.5 - (2 * y - 1) * o).sum(1),
    "squared_hinge": lambda o, y: (TF.relu(0.5 - (2 * y - 1) * o) ** 2).sum(1),
    "cubed_hinge": lambda o, y: (TF.relu(0.5 - (2 * y - 1) * o) ** 3).sum(1),
    "log": _t_log,
    "squared_log": _t_squared_log,
    "tanimoto": _t_tanimoto,
    "cauchy_schwarz": _t_cauchy_schwarz,
    "alpha": _t_alpha,
    "gce": _t_gce,
    "truncated_log": _t_truncated_log,
}

EXTRA_KWARGS = {
    "alpha": [{"alpha": 0.5}, {"alpha": 1.0}, {"alpha": 3.0}, {"alpha": float("inf")}],
    "gce": [{"q": 0.3}, {"q": 1.0}],
    "truncated_log": [{"k": 0.2}, {"k": 0.0}],
}


def test_every_loss_has_a_torch_reference():
    assert set(TORCH_LOSSES) == set(npnet.LOSSES)


def _loss_cases():
    for name, cls in npnet.LOSSES.items():
        yield name, {}
        if issubclass(cls, ProbabilityLoss) and not issubclass(cls, _SoftmaxLoss):
            yield name, {"probability": "sigmoid"}
        for kw in EXTRA_KWARGS.get(name, []):
            yield name, kw


LOSS_CASES = list(_loss_cases())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("target", ["labels", "soft"])
@pytest.mark.parametrize("name,kwargs", LOSS_CASES, ids=[str(c) for c in LOSS_CASES])
def test_loss_parity(name, kwargs, target, reduction):
    rng = np.random.default_rng(1)
    labels = np.array([0, 3, 1, 1, 2, 4])
    y = labels if target == "labels" else rng.dirichlet(np.ones(5), size=6)
    y_matrix = np.eye(5)[labels] if target == "labels" else y
    loss = npnet.get_loss(name, reduction=reduction, **kwargs)

    def run(a):
        value = loss.forward(a["x"], y)
        return value, lambda d: {"x": loss.backward(d)}

    def reference(t):
        values = TORCH_LOSSES[name](t["x"], torch.tensor(y_matrix), **kwargs)
        return {"mean": values.mean(), "sum": values.sum(), "none": values}[reduction]

    logits = {"x": _normal(6, 5, scale=2.0, seed=2)}
    assert_parity(run, reference, logits, upstream=reduction == "none")


TIES = {
    # sigmoid: classes 1 and 2 share one logit, hence one p far above the other distances.
    "sigmoid, wrong classes": ("sigmoid", [[5.0, 3.0, 3.0], [-2.0, 4.0, 4.0]], [0, 0]),
    # soft target, C = 4 equal logits: p = 1/4 exactly, |p - y| = (1/4, 1/4, 0, 0).
    "softmax, soft target": ("softmax", [[0.0, 0.0, 0.0, 0.0]], [[0.0, 0.5, 0.25, 0.25]]),
}


@pytest.mark.parametrize("case", list(TIES))
def test_chebyshev_subgradient_at_ties_matches_the_torch_loss(case):
    """At tied maximal distances npnet shares the subgradient evenly, as losslab's torch
    Chebyshev loss (autograd of amax) does; the inputs are exact ties in both engines.
    (A softmax tie of two classes with a one-hot target cannot tell the two rules apart:
    their g_p differ by a constant, which the softmax Jacobian removes; an argmax
    subgradient fails both cases below.)"""
    from losslab.losses import get_loss

    probability, logits, target = TIES[case]
    o = np.array(logits)
    y = np.array(target)
    loss = npnet.get_loss("chebyshev", reduction="sum", probability=probability)
    value = loss.forward(o, y)
    grad = loss.backward(1.0)
    x = torch.tensor(o, requires_grad=True)
    torch_loss = get_loss("chebyshev", reduction="sum", probability=probability)
    reference = torch_loss(x, torch.tensor(y))
    reference.backward()
    np.testing.assert_allclose(value, reference.item(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, x.grad.numpy(), rtol=RTOL, atol=ATOL)


def test_truncated_log_with_k_zero_is_the_log_loss():
    o = _normal(6, 5, scale=3.0, seed=4)
    labels = np.array([0, 3, 1, 1, 2, 4])
    truncated, log = npnet.get_loss("truncated_log", k=0.0), npnet.get_loss("log")
    # With k = 0 the truncation never applies: the same float64 operations on the same numbers,
    # equal to the ulp (atol: gradient entries that are 0 on one side).
    np.testing.assert_allclose(truncated.forward(o, labels), log.forward(o, labels), rtol=1e-15)
    np.testing.assert_allclose(truncated.backward(1.0), log.backward(1.0), rtol=1e-15, atol=1e-17)


# ---------------------------------------------------------------------------
# whole networks: MLP with batch-norm, the Janocha convnet and the small VGG
# ---------------------------------------------------------------------------


def torch_forward(net: npnet.Sequential, x: torch.Tensor, params: dict[str, torch.Tensor]):
    """Run npnet ``net``'s architecture in torch with the given parameter tensors."""
    for i, layer in enumerate(net.layers):
        p = {k: params[f"{i}.{k}"] for k in layer.params}
        if isinstance(layer, npnet.Linear):
            x = TF.linear(x, p["W"].T, p.get("b"))
        elif isinstance(layer, npnet.Conv2d):
            x = TF.conv2d(x, p["W"], p.get("b"), stride=layer.stride, padding=layer.padding)
        elif isinstance(layer, npnet.BatchNorm):
            x = TF.batch_norm(x, None, None, p["gamma"], p["beta"], training=True)
        elif isinstance(layer, npnet.AvgPool2d):
            x = TF.avg_pool2d(x, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, npnet.MaxPool2d):
            x = TF.max_pool2d(x, layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, npnet.Flatten):
            x = x.flatten(1)
        elif isinstance(layer, npnet.Activation):
            kwargs, fn = next(
                (kw, fn) for kw, fn in TORCH_ACTIVATIONS[layer.name] if kw == layer.kwargs
            )
            x = fn(x, p)
        else:
            raise AssertionError(f"no torch translation for {layer!r}")
    return x


def net_run(net):
    def run(arrays):
        for k, v in net.params.items():
            v[...] = arrays[k]
        out = net.forward(arrays["x"])
        return out, lambda dout: {"x": net.backward(dout), **net.grads}

    return run


NETWORKS = {
    "mlp_bn_tanh": (
        lambda: npnet.MLP([6, 8, 7, 3], activation="tanh", batchnorm=True, rng=0),
        (9, 6),
    ),
    "janocha_convnet": (lambda: npnet.janocha_convnet(3, 4, image_size=8, rng=0), (2, 3, 8, 8)),
    "vgg_small": (
        lambda: npnet.vgg_small(2, 3, image_size=8, channels=(4, 6), rng=0),
        (2, 2, 8, 8),
    ),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_network_parity(name):
    make, shape = NETWORKS[name]
    net = make()
    arrays = {"x": _normal(*shape, seed=3), **{k: v.copy() for k, v in net.params.items()}}
    assert_parity(net_run(net), lambda t: torch_forward(net, t["x"], t), arrays)


def test_parity_helper_detects_a_wrong_gradient():
    # A bias gradient off by 1e-7 relative, ~1e5 x RTOL: must fail.
    class WrongBackward(npnet.Linear):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["b"] = self.grads["b"] * (1 + 1e-7)
            return dx

    arrays = {"x": _normal(4, 5), "W": _normal(5, 3, seed=1), "b": _normal(3, seed=2)}
    with pytest.raises(AssertionError, match="b"):
        assert_parity(
            layer_run(WrongBackward(5, 3)), lambda t: TF.linear(t["x"], t["W"].T, t["b"]), arrays
        )


# ---------------------------------------------------------------------------
# the two engines of losslab agree: npnet against losslab.losses / losslab.activations
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name,kwargs", LOSS_CASES, ids=[str(c) for c in LOSS_CASES])
def test_agrees_with_losslab_losses(name, kwargs):
    from losslab import losses

    soft = np.random.default_rng(3).dirichlet(np.ones(5), size=6)
    loss = npnet.get_loss(name, reduction="none", **kwargs)
    reference = losses.get_loss(name, reduction="none", **kwargs)

    def run(a):
        value = loss.forward(a["x"], soft)
        return value, lambda d: {"x": loss.backward(d)}

    assert_parity(run, lambda t: reference(t["x"], torch.tensor(soft)), {"x": _normal(6, 5)})


@pytest.mark.parametrize("name,kwargs,torch_fn", ACT_CASES, ids=[c[0] for c in ACT_CASES])
def test_agrees_with_losslab_activations(name, kwargs, torch_fn):
    from losslab import activations

    layer = npnet.get_activation(name, **kwargs)
    module = activations.get_activation(name, **kwargs).double()
    arrays = {"x": _normal(5, 6, 2), **{k: v + 0.1 for k, v in layer.params.items()}}

    def reference(t):
        params = {k: v for k, v in t.items() if k != "x"}
        return torch.func.functional_call(module, params, (t["x"],))

    assert_parity(layer_run(layer), reference, arrays)
