"""Optimizers, L2 weight decay and early stopping (lecture notes §6-7).

Learning-rate schedules are shared with the torch trainer: :mod:`losslab.schedules`.

An optimizer's ``step(params, grads)`` updates every array of ``params`` in place from
the array of ``grads`` with the same key; its state (moving averages) is keyed by
the same names. Relation to ``torch.optim`` (tested to float64 rounding):

* :class:`SGD` is ``torch.optim.SGD(lr)``.
* :class:`Momentum` keeps an EMA of the gradients, :math:`v \\leftarrow \\beta v +
  (1 - \\beta) g` (notes eq. 18). PyTorch keeps a plain sum :math:`b \\leftarrow \\mu b +
  g` with :math:`b_1 = g_1`, so :math:`v_k = (1 - \\beta) b_k` exactly and ours equals
  ``torch.optim.SGD(lr=lr * (1 - beta), momentum=beta)``. (``dampening=beta`` is *not*
  the same: PyTorch skips the dampening on the first step, so its buffer is
  :math:`v_k + \\beta^k g_1`.)
* :class:`RMSprop` is ``torch.optim.RMSprop(lr, alpha=beta, eps)``.
* :class:`Adam` is ``torch.optim.Adam(lr, betas, eps)``.
* :func:`add_l2_gradient` with lambda/m is ``weight_decay=lambda/m`` on the weight
  tensors only (a parameter group without decay for biases).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np

from losslab.errors import LosslabError
from losslab.registry import build

Array = np.ndarray


def is_weight(key: str) -> bool:
    """True for weight matrices/filters (params named "W", e.g. "0.W"), the ones L2 decays."""
    return key.rsplit(".", 1)[-1] == "W"


def l2_penalty(params: dict[str, Array], lam: float, m: int) -> float:
    """The L2 term of the notes' regularised cost (eq. 11), weights only (no biases):

    .. math:: \\frac{\\lambda}{2m} \\sum_l \\|W^{[l]}\\|_F^2

    Args:
        params: name -> array; only keys for which :func:`is_weight` holds count.
        lam: lambda >= 0.
        m: the number of examples the cost averages over (the batch size here).
    """
    total = sum(float(np.sum(v * v)) for k, v in params.items() if is_weight(k))
    return lam / (2 * m) * total


def add_l2_gradient(params: dict[str, Array], grads: dict[str, Array], lam: float, m: int) -> None:
    """Add the gradient of :func:`l2_penalty`, :math:`(\\lambda / m) W`, to each weight's
    gradient, in place (the grads are the layers' fresh arrays of this step)."""
    if lam < 0 or m < 1:
        raise LosslabError(f"weight decay needs lambda >= 0 and m >= 1, got {lam}, {m}")
    if lam == 0:
        return
    for k, w in params.items():
        if is_weight(k):
            grads[k] += (lam / m) * w


class Optimizer:
    """Base class. ``step(params, grads)`` updates ``params`` in place; state keyed by name.

    Args:
        lr: the learning rate alpha (> 0); change ``opt.lr`` for a decay schedule.
    """

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise LosslabError(f"learning rate must be > 0, got {lr}")
        self.lr = lr
        self.state: dict[str, dict[str, Array]] = {}
        self.t = 0

    def step(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """One update of every parameter that has a gradient."""
        missing = set(params) - set(grads)
        if missing:
            raise LosslabError(f"no gradient for {sorted(missing)}; run backward before step")
        self.t += 1
        for k, p in params.items():
            self._update(k, p, grads[k])

    def _update(self, key: str, p: Array, g: Array) -> None:
        raise NotImplementedError

    def _buffer(self, key: str, name: str, like: Array) -> Array:
        slot = self.state.setdefault(key, {})
        if name not in slot:
            slot[name] = np.zeros_like(like)
        return slot[name]


class SGD(Optimizer):
    """Gradient descent (notes eq. 12): :math:`\\theta \\leftarrow \\theta - \\alpha \\nabla J`."""

    def _update(self, key: str, p: Array, g: Array) -> None:
        p -= self.lr * g


class Momentum(Optimizer):
    """Gradient descent with momentum, EMA form (notes eqs. 17-19):

    .. math:: v \\leftarrow \\beta v + (1 - \\beta) \\nabla J, \\quad
        \\theta \\leftarrow \\theta - \\alpha v, \\qquad v_0 = 0

    Args:
        lr: alpha.
        beta: EMA factor in [0, 1) (default 0.9; the notes suggest 0.8).
    """

    def __init__(self, lr: float, beta: float = 0.9) -> None:
        super().__init__(lr)
        if not 0 <= beta < 1:
            raise LosslabError(f"momentum beta must be in [0, 1), got {beta}")
        self.beta = beta

    def _update(self, key: str, p: Array, g: Array) -> None:
        v = self._buffer(key, "v", p)
        v *= self.beta
        v += (1 - self.beta) * g
        p -= self.lr * v


class RMSprop(Optimizer):
    """RMSprop (notes eqs. 20-22):

    .. math:: s \\leftarrow \\beta s + (1 - \\beta) \\nabla J \\odot \\nabla J, \\quad
        \\theta \\leftarrow \\theta - \\alpha \\nabla J \\oslash (\\sqrt{s} + \\epsilon)

    Args:
        lr: alpha.
        beta: EMA factor in [0, 1) (default 0.9; PyTorch's ``alpha``, default 0.99 there).
        eps: epsilon (1e-8).
    """

    def __init__(self, lr: float, beta: float = 0.9, eps: float = 1e-8) -> None:
        super().__init__(lr)
        if not 0 <= beta < 1:
            raise LosslabError(f"RMSprop beta must be in [0, 1), got {beta}")
        self.beta, self.eps = beta, eps

    def _update(self, key: str, p: Array, g: Array) -> None:
        s = self._buffer(key, "s", p)
        s *= self.beta
        s += (1 - self.beta) * g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)


class Adam(Optimizer):
    """Adam with bias-corrected moments (notes §7.1, eq. 23; Kingma & Ba 2014):

    .. math::
        m \\leftarrow \\beta_1 m + (1 - \\beta_1) g, \\quad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) g \\odot g, \\\\
        \\theta \\leftarrow \\theta - \\alpha \\frac{m / (1 - \\beta_1^k)}
        {\\sqrt{v / (1 - \\beta_2^k)} + \\epsilon}

    at step k = 1, 2, ... The bias correction :math:`1/(1 - \\beta^k)` undoes the pull
    of :math:`m_0 = v_0 = 0` towards zero in the first steps (notes eq. 16).

    Args:
        lr: alpha.
        beta1, beta2: 0.9 and 0.999 (the notes' and the paper's values).
        eps: 1e-8.
    """

    def __init__(
        self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
    ) -> None:
        super().__init__(lr)
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise LosslabError(f"Adam betas must be in [0, 1), got {beta1}, {beta2}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps

    def _update(self, key: str, p: Array, g: Array) -> None:
        m = self._buffer(key, "m", p)
        v = self._buffer(key, "v", p)
        # One scratch array per parameter, reused, so a step allocates no temporaries.
        tmp = self._buffer(key, "scratch", p)
        m *= self.beta1
        np.multiply(g, 1 - self.beta1, out=tmp)
        m += tmp
        v *= self.beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.beta2
        v += tmp
        # Same order of operations as torch.optim.Adam, so float64 runs agree to rounding:
        # p -= (lr / (1 - beta1^k)) * m / (sqrt(v) / sqrt(1 - beta2^k) + eps).
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(1 - self.beta2**self.t)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= self.lr / (1 - self.beta1**self.t)
        p -= tmp


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "gd": SGD,
    "momentum": Momentum,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def get_optimizer(name: str, **kwargs: Any) -> Optimizer:
    """Build the optimizer registered as ``name`` ("sgd"/"gd", "momentum", "rmsprop", "adam").

    Example:
        >>> opt = get_optimizer("adam", lr=3e-5)
        >>> opt.step(net.params, net.grads)
    """
    return build(OPTIMIZERS, name, "optimizer", **kwargs)


class EarlyStopping:
    """Early stopping on a development-set metric (notes §6.3).

    Keeps a copy of the parameters at the best value seen; ``update`` says when
    ``patience`` evaluations in a row brought no improvement of at least ``min_delta``.

    Args:
        patience: evaluations without improvement before stopping (default 5).
        min_delta: smallest change that counts as improvement (default 0).
        mode: "min" for a loss or error (default), "max" for an accuracy.

    Example:
        >>> stopper = EarlyStopping(patience=3)
        >>> if stopper.update(dev_loss, net.params): stopper.restore(net.params)
    """

    def __init__(self, patience: int = 5, min_delta: float = 0.0, mode: str = "min") -> None:
        if patience < 1 or mode not in ("min", "max"):
            raise LosslabError(
                "early stopping needs patience >= 1 and mode 'min' or 'max', "
                f"got {patience}, {mode!r}"
            )
        self.patience, self.min_delta, self.mode = patience, min_delta, mode
        self.best = math.inf if mode == "min" else -math.inf
        self.best_params: dict[str, Array] | None = None
        self.bad_evaluations = 0

    def update(self, value: float, params: dict[str, Array]) -> bool:
        """Record a new dev value; return True when training should stop."""
        gain = self.best - value if self.mode == "min" else value - self.best
        if gain > self.min_delta or self.best_params is None:
            self.best = value
            self.best_params = copy.deepcopy(params)
            self.bad_evaluations = 0
            return False
        self.bad_evaluations += 1
        return self.bad_evaluations >= self.patience

    def restore(self, params: dict[str, Array]) -> None:
        """Copy the best parameters back into ``params``, in place."""
        if self.best_params is None:
            raise LosslabError("EarlyStopping.restore before any update")
        for k, v in params.items():
            v[...] = self.best_params[k]
