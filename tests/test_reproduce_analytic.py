"""Analytic claims of the seed documents that REPRODUCTION.md marks "verified by test"
(src/losslab/studies/claims.toml names these functions; the claims check fails if one is renamed).

Each test compares losslab's losses, by autograd in float64, with a closed form derived by
hand here, then checks the property the claim states.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from losslab.losses import get_loss
from losslab.metrics.classification import accuracy, top_k_accuracy
from losslab.models.scale import parameter_scale

C = 10
# float64 autograd against a closed form of a few exp/divisions: both are within a few
# ulps of the exact value, so 1e-12 relative (plus 1e-300 absolute for the tails) holds.
RTOL = 1e-12


def _correct_class_derivative(name: str, t: np.ndarray, classes: int = C) -> np.ndarray:
    """d loss / d o_c at o = (t, 0, ..., 0) with label c = 0, for every t (float64)."""
    logits = torch.zeros(len(t), classes, dtype=torch.float64)
    logits[:, 0] = torch.from_numpy(t)
    logits.requires_grad_(True)
    labels = torch.zeros(len(t), dtype=torch.long)
    get_loss(name, reduction="sum")(logits, labels).backward()
    return logits.grad[:, 0].numpy()


def test_j2_probability_losses_have_derivatives_that_vanish_at_both_ends():
    # Janocha & Czarnecki Prop. 2. With o = (t, 0, ...), p = e^t / (e^t + C - 1):
    # expectation 2 - 2p -> -2 p (1 - p); regularised expectation (1-p)^2 + (C-1) q^2 with
    # q = (1-p)/(C-1) -> C/(C-1) (1-p)^2, derivative -2C/(C-1) p (1-p)^2.
    t = np.linspace(-30.0, 30.0, 6001)
    p = np.exp(t) / (np.exp(t) + C - 1)
    closed = {
        "expectation": -2.0 * p * (1.0 - p),
        "regularised_expectation": -2.0 * C / (C - 1) * p * (1.0 - p) ** 2,
    }
    for name, reference in closed.items():
        d = _correct_class_derivative(name, t)
        # For p near 1 both sides form 1 - p, which keeps only an absolute precision of
        # ulp(1) = 2.2e-16 times factors <= 3: hence the absolute 1e-15.
        np.testing.assert_allclose(d, reference, rtol=1e-9, atol=1e-15)
        magnitude = np.abs(d)
        peak = int(np.argmax(magnitude))
        assert 0 < peak < len(t) - 1, name
        # Non-monotonic: |d| rises to the peak, then falls (checked where |d| stands well
        # above that 1e-15 round-off); it vanishes at both ends.
        clear = magnitude > 1e-6 * magnitude[peak]
        rise, fall = magnitude[: peak + 1], magnitude[peak:]
        assert np.all(np.diff(rise)[clear[1 : peak + 1]] >= 0), name
        assert np.all(np.diff(fall)[clear[peak + 1 :]] <= 0), name
        assert magnitude[0] < 1e-10 * magnitude[peak] and magnitude[-1] < 1e-10 * magnitude[peak]


def _pieces(d: np.ndarray, h: float) -> tuple[int, bool]:
    """(points where the derivative bends, whether it varies at all) on a uniform grid."""
    second = np.abs(np.diff(d, 2)) / h**2
    # A linear piece has a second difference of round-off only: O(1) derivative values
    # in float64 give |diff2| ~ 1e-15, i.e. 1e-15 / h^2 = 1e-11 here; a curved loss on
    # probabilities bends by far more than 1e-6 per unit^2 on [-3, 3].
    bends = int(np.sum(second > 1e-6))
    return bends, bool(np.ptp(d) > 1e-9)


def test_j3_only_l2_and_squared_hinge_have_piecewise_linear_derivatives():
    # Janocha & Czarnecki §2. On o_c in [-3, 3] (others 0): L2 -> 2(o - 1), squared hinge
    # -> -2 max(0, 1/2 - o): linear pieces, not constant; L1 and hinge: constant pieces;
    # every other loss of the paper bends everywhere.
    h = 0.01
    t = np.arange(-300, 301) * h
    kinks = {"l1": 1, "hinge": 1, "squared_hinge": 1, "l2": 0}
    for name in ("l1", "l2", "expectation", "regularised_expectation", "chebyshev", "hinge",
                 "squared_hinge", "cubed_hinge", "log", "squared_log", "tanimoto",
                 "cauchy_schwarz"):
        d = _correct_class_derivative(name, t)
        bends, varies = _pieces(d, h)
        piecewise_linear = bends <= 2 * kinks.get(name, 0)  # a kink shows at 2 grid points
        if name in ("l2", "squared_hinge"):
            assert piecewise_linear and varies and not np.all(d == d[0]), name
            slopes = np.unique(np.round(np.diff(d) / h, 6))
            assert len(slopes) >= 1 and np.any(slopes != 0), name
        elif name in ("l1", "hinge"):
            assert piecewise_linear and np.allclose(np.diff(d)[np.abs(np.diff(d)) < 0.5], 0)
        else:
            assert not piecewise_linear, name
    np.testing.assert_allclose(_correct_class_derivative("l2", t), 2 * (t - 1), rtol=RTOL)
    np.testing.assert_allclose(_correct_class_derivative("squared_hinge", t),
                               -2 * np.maximum(0.0, 0.5 - t), rtol=RTOL, atol=1e-300)


def test_b1_accuracy_and_top_k_do_not_depend_on_the_scale_of_a_homogeneous_net():
    # Berlyand et al. eq. 8-10: a bias-free ReLU net is homogeneous of degree 1 per layer,
    # so scaling layer l by c_l scales the logits by prod c_l and R by the same factor;
    # argmax and the top-k sets are unchanged.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16, bias=False), nn.ReLU(), nn.Linear(16, 16, bias=False),
                        nn.ReLU(), nn.Linear(16, C, bias=False)).double()
    x = torch.randn(200, 5, dtype=torch.float64)
    labels = np.random.default_rng(0).integers(0, C, 200)
    z = net(x).detach()
    r = parameter_scale(net).item()
    factors = (0.5, 3.0, 7.0)
    with torch.no_grad():
        for layer, c in zip((net[0], net[2], net[4]), factors, strict=True):
            layer.weight.mul_(c)
    z_scaled = net(x).detach()
    product = float(np.prod(factors))
    # Three float64 matmuls of width <= 16: relative round-off below 1e-13.
    np.testing.assert_allclose(z_scaled.numpy(), product * z.numpy(), rtol=1e-12, atol=1e-14)
    assert parameter_scale(net).item() == pytest.approx(product * r, rel=1e-12)
    assert accuracy(z_scaled.numpy(), labels) == accuracy(z.numpy(), labels)
    for k in (1, 2, 3, 5):
        assert top_k_accuracy(z_scaled.numpy(), labels, k) == top_k_accuracy(z.numpy(), labels, k)


def test_a8_squared_error_on_a_sigmoid_has_a_tiny_gradient_when_badly_wrong():
    # Slides "Problems with squared error". Two classes, o = (z, 0): p = sigmoid(z), and the
    # squared error on the probabilities (regularised expectation) is (1 - p)^2 for the
    # correct class plus (0 - (1 - p))^2 for the other, 2 (1 - p)^2, with derivative
    # -4 p (1 - p)^2; log loss gives p - 1.
    z = np.array([-5.0])
    p = 1.0 / (1.0 + np.exp(5.0))
    squared = _correct_class_derivative("regularised_expectation", z, classes=2)
    log = _correct_class_derivative("log", z, classes=2)
    np.testing.assert_allclose(squared, -4 * p * (1 - p) ** 2, rtol=RTOL)
    np.testing.assert_allclose(log, p - 1, rtol=RTOL)
    # The slides' number, (1/2)(sigmoid - 1)^2 at z = -5: -(1 - p) p (1 - p) = -0.0066.
    assert -(1 - p) * p * (1 - p) == pytest.approx(-0.0066, abs=5e-5)
    assert abs(squared[0]) < 0.03 * abs(log[0])
