"""Numerical gradient checking (seed: Daza §3.2 b-c; CS231n ``eval_numerical_gradient_array``).

A backward pass computes :math:`\\partial L / \\partial x = J^\\top d\\text{out}` for the
Jacobian J of ``out = f(x)``. The check compares it with centred differences of the
scalar :math:`\\langle f(x), d\\text{out} \\rangle` for a random upstream gradient
``dout``, which tests the whole Jacobian-vector product, not one output at a time:

.. math::
    \\frac{\\partial}{\\partial x_i} \\langle f(x), d\\text{out} \\rangle \\approx
    \\frac{\\langle f(x + h e_i) - f(x - h e_i), d\\text{out} \\rangle}{2h}

with truncation error :math:`O(h^2)`. Run it in float64.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from losslab.errors import LosslabError

Array = np.ndarray


def numerical_gradient(
    f: Callable[[], Array | float], x: Array, dout: Array | float = 1.0, h: float = 1e-6
) -> Array:
    """Centred-difference estimate of :math:`\\partial \\langle f, d\\text{out} \\rangle
    / \\partial x`.

    Args:
        f: a function of no arguments that reads ``x`` (perturbed in place here, then
            restored) and returns an array (or a scalar).
        x: the float64 array to differentiate with respect to, any shape.
        dout: upstream gradient with the shape of f's output (default 1 for a scalar f).
        h: the step (default 1e-6).

    Returns:
        An array with the shape of ``x``.
    """
    if x.dtype != np.float64:
        raise LosslabError(f"gradient checks need float64 arrays, got {x.dtype}")
    grad = np.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    if not np.shares_memory(flat, x):
        raise LosslabError("numerical_gradient needs a contiguous x it can perturb in place")
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        plus = np.sum(np.asarray(f()) * dout)
        flat[i] = old - h
        minus = np.sum(np.asarray(f()) * dout)
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * h)
    return grad


def relative_error(a: Array, b: Array) -> float:
    """:math:`\\|a - b\\| / \\max(\\|a\\| + \\|b\\|, 10^{-300})`, Euclidean norms.

    A norm-wise error: unlike an element-wise maximum it does not blow up on
    entries that are (numerically) zero in both arrays.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise LosslabError(f"relative_error: shapes differ, {a.shape} vs {b.shape}")
    return float(np.linalg.norm(a - b) / max(float(np.linalg.norm(a) + np.linalg.norm(b)), 1e-300))


def check_layer(
    layer: Any, x: Array, rng: np.random.Generator, h: float = 1e-6
) -> dict[str, float]:
    """Relative errors of a layer's backward against numerical gradients.

    Runs ``layer.forward(x)``, draws ``dout ~ N(0, 1)``, calls ``layer.backward(dout)``
    and compares dx and every entry of ``layer.grads`` with :func:`numerical_gradient`.
    Layers whose forward is random (dropout) must fix their mask between calls.

    Args:
        layer: anything with ``forward``, ``backward``, ``params`` and ``grads``.
        x: float64 input.
        rng: generator for ``dout``.
        h: finite-difference step.

    Returns:
        {"x": error of dx, <param name>: error of that gradient, ...}.
    """
    out = layer.forward(x)
    dout = rng.standard_normal(np.shape(out))
    dx = layer.backward(dout)
    analytic = {"x": dx, **{k: np.copy(v) for k, v in layer.grads.items()}}
    arrays = {"x": x, **layer.params}
    return {
        name: relative_error(
            analytic[name], numerical_gradient(lambda: layer.forward(x), arrays[name], dout, h)
        )
        for name in analytic
    }
