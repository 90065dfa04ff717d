"""npnet optimizers, weight decay and learning-rate decay against torch.optim, in float64.

Each optimizer runs 20 steps next to its torch.optim counterpart from the same
parameters; the gradient at each step is a fixed function of the current
parameters plus a per-step perturbation, so the trajectories feed back on themselves.
The last test trains an MLP for 300 steps in both engines from identical weights and
batches and compares every parameter to a round-off bound the run measures on itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from threadpoolctl import threadpool_limits

from losslab import npnet
from losslab.errors import LosslabError
from losslab.npnet.optim import add_l2_gradient, l2_penalty


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """One BLAS thread per pytest worker: OpenBLAS threads spin-wait and crawl when two
    workers share two cores (the torch counterpart is in conftest.py)."""
    with threadpool_limits(1):
        yield


SHAPES = {"0.W": (4, 3), "0.b": (3,), "2.W": (3, 2)}


def _initial():
    rng = np.random.default_rng(0)
    return {k: rng.standard_normal(s) for k, s in SHAPES.items()}


def _grad(p, noise):
    """A gradient that depends on the parameters (works for numpy arrays and tensors)."""
    return p**3 - 0.5 * p + noise


def _noises(steps=20):
    rng = np.random.default_rng(1)
    return [{k: rng.standard_normal(s) for k, s in SHAPES.items()} for _ in range(steps)]


# npnet optimizer -> torch optimizer over the same trajectory. Momentum: the notes' EMA
# v <- beta v + (1 - beta) g equals torch's sum buffer b <- beta b + g times (1 - beta),
# so it is torch SGD with momentum=beta and lr scaled by (1 - beta).
OPTIMIZER_PAIRS = {
    "sgd": (lambda: npnet.SGD(0.05), lambda ps: torch.optim.SGD(ps, lr=0.05)),
    "momentum": (
        lambda: npnet.Momentum(0.05, beta=0.8),
        lambda ps: torch.optim.SGD(ps, lr=0.05 * (1 - 0.8), momentum=0.8),
    ),
    "rmsprop": (
        lambda: npnet.RMSprop(0.01, beta=0.9, eps=1e-6),
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6),
    ),
    "adam": (
        lambda: npnet.Adam(0.01, beta1=0.8, beta2=0.95, eps=1e-7),
        lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.95), eps=1e-7),
    ),
}


def _trajectories(make_np, make_torch, lam=0.0, m=1):
    """Run both optimizers 20 steps; yield (npnet params, torch params) after each step."""
    params = _initial()
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    weights = [t for k, t in tensors.items() if k.endswith("W")]
    others = [t for k, t in tensors.items() if not k.endswith("W")]
    opt_np = make_np()
    opt_t = make_torch([{"params": weights, "weight_decay": lam / m}, {"params": others}])
    for noise in _noises():
        grads = {k: _grad(v, noise[k]) for k, v in params.items()}
        add_l2_gradient(params, grads, lam, m)
        opt_np.step(params, grads)
        with torch.no_grad():
            for k, t in tensors.items():
                t.grad = _grad(t, torch.tensor(noise[k]))
        opt_t.step()
        yield params, tensors


# float64, parameters |p| <= ~2.5. Each step computes the same few elementwise operations on
# both sides (p**3 as a pow or as two products, the update's multiply-adds, Adam's sqrt and
# divide): ~5 eps64 ~ 6e-16 relative per step. The map p -> p - lr (3 p**2 - 0.5) dp has slope
# <= 1 + 0.5 lr (no growth), and adaptive updates lr m / (sqrt(v) + eps) depend on a relative
# gradient error only through lr |g| / sqrt(v) ~ lr, so over 20 steps errors add: ~20 x 6e-16
# ~ 1e-14 relative (measured 6e-14 only on entries near 0, 2e-16 absolute). rtol 1e-12 (~100x,
# for the near-zero entries' relative view) and atol 1e-14 (a parameter crossing 0: ~20 eps64
# of |p| ~ 0.5 that moved there).
TRAJECTORY_TOL = {"rtol": 1e-12, "atol": 1e-14}


@pytest.mark.parametrize("name", list(OPTIMIZER_PAIRS))
def test_optimizer_trajectory_matches_torch(name):
    assert set(OPTIMIZER_PAIRS) == set(npnet.OPTIMIZERS) - {"gd"}
    for params, tensors in _trajectories(*OPTIMIZER_PAIRS[name]):
        for k, v in params.items():
            np.testing.assert_allclose(v, tensors[k].detach().numpy(), **TRAJECTORY_TOL)


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_weight_decay_matches_torch(name):
    for params, tensors in _trajectories(*OPTIMIZER_PAIRS[name], lam=0.7, m=5):
        for k, v in params.items():
            # The decay adds one multiply-add per step: TRAJECTORY_TOL's derivation holds.
            np.testing.assert_allclose(v, tensors[k].detach().numpy(), **TRAJECTORY_TOL)


def test_momentum_is_not_torch_dampening():
    """The documented pitfall: torch's dampening=beta skips the first step's dampening."""
    make_np, _ = OPTIMIZER_PAIRS["momentum"]
    damped = lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, dampening=0.8)  # noqa: E731
    params, tensors = next(iter(_trajectories(make_np, damped)))
    # torch's undamped first step moves by 0.05 g, the EMA by 0.05 * 0.2 g: they differ by
    # 0.04 |g| ~ 4e-2, far beyond 1e-6 relative of |p| ~ 1.
    assert not np.allclose(params["0.W"], tensors["0.W"].detach().numpy(), rtol=1e-6)


def test_l2_penalty_and_gradient():
    params = _initial()
    tensors = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    # lambda/(2m) sum ||W||^2 over the weights only, written as a torch graph.
    penalty = 0.3 / (2 * 8) * sum((t**2).sum() for k, t in tensors.items() if k.endswith("W"))
    penalty.backward()
    # A sum of 18 positive squares (no cancellation): <= 18 eps64 = 2e-15 relative, plus the
    # factor's two roundings: 2.2e-15; 1e-14 (5x).
    assert l2_penalty(params, 0.3, 8) == pytest.approx(penalty.item(), rel=1e-14)
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    add_l2_gradient(params, grads, 0.3, 8)
    for k, t in tensors.items():
        expected = t.grad.numpy() if t.grad is not None else np.zeros(SHAPES[k])
        # lambda / m * W against autograd's 0.3 / 16 * 2 W: two or three roundings, 3.3e-16.
        np.testing.assert_allclose(grads[k], expected, rtol=1e-15, atol=0)
    with pytest.raises(LosslabError, match="lambda >= 0"):
        add_l2_gradient(params, grads, -1.0, 8)


def test_early_stopping():
    stopper = npnet.EarlyStopping(patience=2)
    params = {"W": np.zeros(2)}
    decisions = []
    for value in [3.0, 2.0, 2.5, 1.9, 2.1, 2.0]:
        params["W"][:] = value
        decisions.append(stopper.update(value, params))
    assert decisions == [False, False, False, False, False, True]
    assert stopper.best == 1.9
    stopper.restore(params)
    np.testing.assert_array_equal(params["W"], [1.9, 1.9])

    up = npnet.EarlyStopping(patience=1, mode="max", min_delta=0.05)
    assert [up.update(v, params) for v in [0.5, 0.52]] == [False, True]
    with pytest.raises(LosslabError, match="patience"):
        npnet.EarlyStopping(patience=0)


def test_optimizer_errors():
    with pytest.raises(LosslabError, match="learning rate"):
        npnet.get_optimizer("adam", lr=0.0)
    with pytest.raises(LosslabError, match="Valid optimizer names"):
        npnet.get_optimizer("adamw", lr=0.1)
    with pytest.raises(LosslabError, match="no gradient"):
        npnet.SGD(0.1).step({"W": np.zeros(2)}, {})


def test_optimizer_keeps_float32():
    params = {"W": np.ones(3, dtype=np.float32)}
    for name in npnet.OPTIMIZERS:
        npnet.get_optimizer(name, lr=0.1).step(params, {"W": np.ones(3, dtype=np.float32)})
        assert params["W"].dtype == np.float32


# ---------------------------------------------------------------------------
# 300 training steps of an MLP in both engines
# ---------------------------------------------------------------------------


def _torch_mlp(net: npnet.MLP) -> torch.nn.Sequential:
    """The torch twin of an npnet MLP, with copies of its weights."""
    modules = []
    for layer in net.layers:
        if isinstance(layer, npnet.Linear):
            lin = torch.nn.Linear(*layer.params["W"].shape, dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(layer.params["W"].T))
                lin.bias.copy_(torch.tensor(layer.params["b"]))
            modules.append(lin)
        elif isinstance(layer, npnet.BatchNorm):
            modules.append(torch.nn.BatchNorm1d(layer.params["gamma"].size, dtype=torch.float64))
        else:
            modules.append({"relu": torch.nn.ReLU(), "tanh": torch.nn.Tanh()}[layer.name])
    return torch.nn.Sequential(*modules)


def _shaken(net: npnet.MLP) -> torch.nn.Sequential:
    """The torch twin with every weight scaled by (1 + GAMMA_32): one step's round-off."""
    model = _torch_mlp(net)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + GAMMA_32)
    return model


def _torch_params(model: torch.nn.Sequential) -> dict[str, np.ndarray]:
    """torch parameters renamed and laid out as npnet's."""
    out = {}
    for name, p in model.named_parameters():
        index, kind = name.split(".")
        key = {"weight": "W", "bias": "b"}[kind]
        if isinstance(model[int(index)], torch.nn.BatchNorm1d):
            key = {"W": "gamma", "b": "beta"}[key]
        out[f"{index}.{key}"] = p.detach().numpy().T if key == "W" else p.detach().numpy()
    return out


# The two engines run the same float64 training with other summation orders (NumPy's matmuls
# and batch sums against torch's). A step rounds each sum of K <= 32 terms (batch 32, widths
# <= 16) to gamma_32 = 32 eps64 = 3.6e-15 of its terms. Training then amplifies an error by
# a factor that belongs to the run (Adam divides by sqrt(v_hat) + eps; batch-norm by the batch
# sd), so it is measured as in tests/test_train.py: torch again from weights scaled by
# (1 + gamma_32). An error entering at step t grows no more than one entering at step 0, so
# 300 x (that run's distance + gamma_32 |p|) bounds the difference. Measured: ~3e-12 against
# differences <= 6e-16; for the biases before batch-norm (zero gradient, which Adam turns into
# round-off-driven steps) ~7e-8 against 2e-10.
GAMMA_32 = 32 * 2.0**-53


@pytest.mark.parametrize(
    "optimizer,kwargs,batchnorm,lam",
    [
        ("sgd", {"lr": 0.1}, False, 0.0),
        ("momentum", {"lr": 0.1, "beta": 0.9}, False, 0.5),
        ("adam", {"lr": 3e-3}, True, 0.0),
    ],
)
def test_mlp_300_steps_matches_torch(optimizer, kwargs, batchnorm, lam):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((240, 10))
    y = (x[:, :4].argmax(axis=1) + (x[:, 4] > 1)) % 4
    net = npnet.MLP(
        [10, 16, 12, 4], batchnorm=batchnorm, activation="tanh" if batchnorm else "relu"
    )
    batches = [rng.choice(240, 32, replace=False) for _ in range(300)]
    model, shaken = _torch_mlp(net), _shaken(net)
    lr_t = kwargs["lr"] * (1 - kwargs.get("beta", 0.0))

    def train_torch(model):
        def is_weight(n, p):
            return n.endswith("weight") and p.dim() == 2

        params = list(model.named_parameters())
        groups = [
            {"params": [p for n, p in params if is_weight(n, p)], "weight_decay": lam / 32},
            {"params": [p for n, p in params if not is_weight(n, p)]},
        ]
        opt_t = {
            "sgd": lambda: torch.optim.SGD(groups, lr=lr_t),
            "momentum": lambda: torch.optim.SGD(groups, lr=lr_t, momentum=kwargs.get("beta", 0)),
            "adam": lambda: torch.optim.Adam(groups, lr=lr_t),
        }[optimizer]()
        for idx in batches:
            opt_t.zero_grad()
            TF.cross_entropy(model(torch.tensor(x[idx])), torch.tensor(y[idx])).backward()
            opt_t.step()
        return _torch_params(model)

    loss = npnet.get_loss("log")
    opt = npnet.get_optimizer(optimizer, **kwargs)
    first_loss = last_loss = None
    for idx in batches:
        value = loss.forward(net.forward(x[idx]), y[idx])
        net.backward(loss.backward())
        grads = net.grads
        add_l2_gradient(net.params, grads, lam, 32)
        opt.step(net.params, grads)
        first_loss = value if first_loss is None else first_loss
        last_loss = value
    assert last_loss < 0.7 * first_loss
    expected, drifted = train_torch(model), train_torch(shaken)
    assert set(expected) == set(net.params)
    for k, v in net.params.items():
        tol = len(batches) * (
            np.abs(expected[k] - drifted[k]).max() + GAMMA_32 * np.abs(expected[k]).max()
        )
        # Past 1e-6 the bound would hide a real difference (weight decay's lam / 32 * lr * |W|
        # per step is ~1e-3): the run would be too chaotic to compare, and must say so.
        assert tol < 1e-6, f"{k}: round-off amplified to {tol:.1e}"
        np.testing.assert_allclose(v, expected[k], rtol=0, atol=tol, err_msg=k)
    assert math.isfinite(last_loss)
