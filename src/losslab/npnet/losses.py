"""Every classification loss of the seeds (two-scale excepted) with its gradient, in NumPy.

A loss object has the npnet module protocol: ``forward(logits, target)`` returns the
reduced loss, ``backward(dout=1.0)`` returns dL/d(logits) of shape (N, C). Each class
writes its per-sample value and the derivative of that value next to each other.

Notation: ``o`` logits (N, C); ``y`` targets as an (N, C) matrix
(integer labels become one-hot rows); ``ŷ = 2y - 1``; ``p = softmax(o)``
(``probability="sigmoid"``: the element-wise sigmoid); ``c`` the correct class.

The losses defined on probabilities only say how the value depends on ``p`` (or on
``log p``, which is what keeps them finite when ``p_c`` underflows); one shared chain
rule carries that derivative through the softmax or the sigmoid:

.. math::
    \\text{softmax: } \\frac{\\partial L}{\\partial o} = p \\odot (g_p - \\langle g_p, p \\rangle)
    + g_{\\log p} - p \\textstyle\\sum_j (g_{\\log p})_j, \\\\
    \\text{sigmoid: } \\frac{\\partial L}{\\partial o} = g_p \\odot p (1 - p)
    + g_{\\log p} \\odot (1 - p) - g_{\\log (1-p)} \\odot p

with :math:`g_p = \\partial L / \\partial p`, :math:`g_{\\log p} = \\partial L /
\\partial \\log p` (the softmax Jacobian is :math:`\\mathrm{diag}(p) - p p^\\top`, Daza
eq. 16; that of log-softmax is :math:`I - \\mathbf{1} p^\\top`) and, for the sigmoid,
whose classes are independent binary problems, :math:`g_{\\log(1-p)}`: with
``probability="sigmoid"`` the log and squared-log losses also score the negative
classes (``log`` is the binary cross-entropy summed over classes), as in
``losslab.losses``.

Soft targets: the losses written with :math:`p_c` (alpha, gce, truncated_log) are
extended linearly, :math:`\\sum_j y_j f(p_j)`, which equals :math:`f(p_c)` for one-hot y.

Seeds: Janocha & Czarnecki 2017, Table 1; Mendez-Vazquez slides (alpha-loss);
Zhang & Sabuncu 2018 (gce); Berlyand et al. eq. 12 (truncated log).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.special import expit, log_softmax, logsumexp

from losslab.errors import LosslabError
from losslab.registry import build

Array = np.ndarray

REDUCTIONS = ("mean", "sum", "none")
PROBABILITIES = ("softmax", "sigmoid")


def target_matrix(target: Array, num_classes: int, dtype: np.dtype) -> Array:
    """Targets as an (N, C) matrix: integer labels (N,) become one-hot rows.

    Args:
        target: integer labels (N,) in [0, C), or a float matrix (N, C).
        num_classes: C.
        dtype: dtype of the returned matrix (that of the logits).
    """
    target = np.asarray(target)
    if target.ndim == 1 and np.issubdtype(target.dtype, np.integer):
        if target.size and (target.min() < 0 or target.max() >= num_classes):
            raise LosslabError(
                f"labels must lie in [0, {num_classes}), got values in "
                f"[{target.min()}, {target.max()}]; check the number of classes"
            )
        y = np.zeros((target.shape[0], num_classes), dtype=dtype)
        y[np.arange(target.shape[0]), target] = 1
        return y
    if target.ndim == 2 and target.shape[1] == num_classes:
        if not np.all(np.isfinite(target)):
            raise LosslabError("target matrix contains NaN or inf")
        return target.astype(dtype, copy=False)
    raise LosslabError(
        f"targets must be integer labels of shape (N,) or a matrix (N, {num_classes}); "
        f"got shape {target.shape} and dtype {target.dtype}"
    )


class Loss:
    """Base class: validation, reduction, and the upstream factor of the backward pass.

    Subclasses implement ``_forward(o, y) -> (values (N,), cache)`` and
    ``_backward(cache) -> (N, C)``, the derivative of each sample's value with
    respect to its own logits.

    Args:
        reduction: "mean" (default) over the batch, "sum", or "none" (per-sample values).

    Shape:
        logits (N, C); target (N,) integer labels or (N, C) probabilities; output a
        Python float, or (N,) for ``reduction="none"``.
    """

    name = ""  # the registry name (that of its torch twin)

    def __init__(self, reduction: str = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise LosslabError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
        # Empty: no npnet loss has parameters, but it speaks the module protocol.
        self.params: dict[str, Array] = {}
        self.grads: dict[str, Array] = {}
        self.reduction = reduction
        self._cache: Any = None  # what _forward keeps for _backward; None: not run
        self._n = 0

    def forward(self, logits: Array, target: Array) -> float | Array:
        """The reduced loss of ``logits`` (N, C) against ``target``."""
        logits = np.asarray(logits)
        if logits.ndim != 2 or not np.issubdtype(logits.dtype, np.floating):
            raise LosslabError(
                f"logits must be a float array of shape (N, C), got {logits.shape} {logits.dtype}"
            )
        if not np.all(np.isfinite(logits)):
            raise LosslabError("logits contain NaN or inf; lower the learning rate or check inputs")
        y = target_matrix(target, logits.shape[1], logits.dtype)
        if y.shape[0] != logits.shape[0]:
            raise LosslabError(f"{logits.shape[0]} logits rows but {y.shape[0]} targets")
        values, self._cache = self._forward(logits, y)
        self._n = logits.shape[0]
        if self.reduction == "none":
            return values
        total = float(values.sum())
        return total / self._n if self.reduction == "mean" else total

    def backward(self, dout: float | Array = 1.0) -> Array:
        """dL/d(logits), shape (N, C), given dL/d(output): a scalar, or (N,) for "none"."""
        if self._cache is None:
            raise LosslabError("call forward before backward")
        per_sample = self._backward(self._cache)
        if self.reduction == "none":
            upstream = np.asarray(dout, dtype=per_sample.dtype)[:, None]
        elif self.reduction == "mean":
            upstream = per_sample.dtype.type(dout / self._n)
        else:
            upstream = per_sample.dtype.type(dout)
        return per_sample * upstream

    __call__ = forward

    def _forward(self, o: Array, y: Array) -> tuple[Array, Any]:
        raise NotImplementedError

    def _backward(self, cache: Any) -> Array:
        raise NotImplementedError


# ---------------------------------------------------------------------------
# Losses on the logits
# ---------------------------------------------------------------------------


class L1Loss(Loss):
    """:math:`\\ell = \\sum_j |y_j - o_j|`;
    :math:`\\partial\\ell/\\partial o = \\mathrm{sign}(o - y)`.

    (seed: Janocha & Czarnecki 2017, Table 1)
    """

    name = "l1"

    def _forward(self, o: Array, y: Array) -> tuple[Array, Any]:
        diff = o - y
        return np.abs(diff).sum(axis=1), diff

    def _backward(self, diff: Any) -> Array:
        return np.sign(diff)


class L2Loss(Loss):
    """:math:`\\ell = \\sum_j (y_j - o_j)^2`; :math:`\\partial\\ell/\\partial o = 2 (o - y)`.

    (seed: Janocha & Czarnecki 2017, Table 1)
    """

    name = "l2"

    def _forward(self, o: Array, y: Array) -> tuple[Array, Any]:
        diff = o - y
        return np.sum(diff * diff, axis=1), diff

    def _backward(self, diff: Any) -> Array:
        return 2 * diff


class _HingeLoss(Loss):
    """:math:`\\ell = \\sum_j m_j^r` with margin violation :math:`m = \\max(0, 1/2 - \\hat y o)`;

    .. math:: \\partial\\ell/\\partial o = -r\\, m^{r-1} \\hat y \\,\\mathbb{I}[m > 0]

    (seed: Janocha & Czarnecki 2017, Table 1; r = 1, 2, 3 for hinge, squared, cubed)
    """

    power = 1

    def _forward(self, o: Array, y: Array) -> tuple[Array, Any]:
        y_pm = 2 * y - 1
        m = np.maximum(0.5 - y_pm * o, 0)
        return np.sum(m**self.power, axis=1), (m, y_pm)

    def _backward(self, cache: Any) -> Array:
        m, y_pm = cache
        if self.power == 1:
            return -y_pm * (m > 0)
        return -self.power * m ** (self.power - 1) * y_pm


class HingeLoss(_HingeLoss):
    __doc__ = _HingeLoss.__doc__
    name = "hinge"
    power = 1


class SquaredHingeLoss(_HingeLoss):
    __doc__ = _HingeLoss.__doc__
    name = "squared_hinge"
    power = 2


class CubedHingeLoss(_HingeLoss):
    __doc__ = _HingeLoss.__doc__
    name = "cubed_hinge"
    power = 3


# ---------------------------------------------------------------------------
# Losses on the probabilities
# ---------------------------------------------------------------------------


class ProbabilityLoss(Loss):
    """A loss of :math:`p`, :math:`\\log p` (and :math:`\\log(1 - p)` for the sigmoid);
    subclasses return the derivatives (g_p, g_log_p, g_log_1mp), None for an absent one.

    Args:
        reduction: "mean" | "sum" | "none".
        probability: "softmax" (default) or "sigmoid" (element-wise, one-vs-rest).
    """

    def __init__(self, reduction: str = "mean", probability: str = "softmax") -> None:
        super().__init__(reduction)
        if probability not in PROBABILITIES:
            raise LosslabError(f"probability must be one of {PROBABILITIES}, got {probability!r}")
        self.probability = probability

    def _forward(self, o: Array, y: Array) -> tuple[Array, Any]:
        if self.probability == "softmax":
            logp = log_softmax(o, axis=1)
            one_minus_p = log_1mp = None
        else:
            logp = -np.logaddexp(0, -o)
            log_1mp = -np.logaddexp(0, o)
            one_minus_p = expit(-o)
        p = np.exp(logp)
        values, cache = self._values(p, logp, y, log_1mp)
        return values, (p, one_minus_p, cache)

    def _backward(self, cache: Any) -> Array:
        p, one_minus_p, own = cache
        g_p, g_logp, g_log_1mp = self._grads(own)
        grad = np.zeros_like(p)
        if self.probability == "softmax":
            if g_p is not None:
                grad += p * (g_p - np.sum(g_p * p, axis=1, keepdims=True))
            if g_logp is not None:
                grad += g_logp - p * g_logp.sum(axis=1, keepdims=True)
            return grad
        if g_p is not None:
            grad += g_p * p * one_minus_p
        if g_logp is not None:
            grad += g_logp * one_minus_p
        if g_log_1mp is not None:
            grad -= g_log_1mp * p
        return grad

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        raise NotImplementedError

    def _grads(self, cache: Any) -> tuple[Array | None, Array | None, Array | None]:
        raise NotImplementedError


class ExpectationLoss(ProbabilityLoss):
    """:math:`\\ell = \\sum_j |y_j - p_j|` (= 2 - 2 p_c for one-hot y, Janocha Prop. 1);
    :math:`g_p = \\mathrm{sign}(p - y)`. (seed: Janocha & Czarnecki 2017, Table 1)"""

    name = "expectation"

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        diff = p - y
        return np.abs(diff).sum(axis=1), diff

    def _grads(self, diff: Any) -> tuple[Array | None, Array | None, Array | None]:
        return np.sign(diff), None, None


class RegularisedExpectationLoss(ProbabilityLoss):
    """:math:`\\ell = \\sum_j (y_j - p_j)^2`; :math:`g_p = 2 (p - y)`.
    (seed: Janocha & Czarnecki 2017, Table 1)"""

    name = "regularised_expectation"

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        diff = p - y
        return np.sum(diff * diff, axis=1), diff

    def _grads(self, diff: Any) -> tuple[Array | None, Array | None, Array | None]:
        return 2 * diff, None, None


class ChebyshevLoss(ProbabilityLoss):
    """:math:`\\ell = \\max_j |p_j - y_j|`;
    :math:`g_p = \\mathrm{sign}(p - y) \\odot m / \\sum_j m_j` with :math:`m` the
    indicator of the maximising classes: at ties the subgradient is
    shared evenly, as ``torch.amax`` (and so :mod:`losslab.losses`) shares it.
    (seed: Janocha & Czarnecki 2017, Table 1)"""

    name = "chebyshev"

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        distance = np.abs(p - y)
        value = distance.max(axis=1)
        return value, (p - y, distance == value[:, None])

    def _grads(self, cache: Any) -> tuple[Array | None, Array | None, Array | None]:
        diff, tied = cache
        return np.sign(diff) * tied / tied.sum(axis=1, keepdims=True), None, None


class LogLoss(ProbabilityLoss):
    """Cross-entropy :math:`\\ell = -\\sum_j y_j \\log p_j`; :math:`g_{\\log p} = -y`, which the
    softmax chain rule turns into :math:`p \\sum_j y_j - y` (= p - y, Daza eq. 3 + eq. 29).

    Sigmoid: :math:`-\\sum_j y_j \\log p_j + (1 - y_j) \\log(1 - p_j)`,
    :math:`g_{\\log(1-p)} = -(1 - y)`, so :math:`\\partial\\ell/\\partial o = p - y` again.
    (seed: Janocha & Czarnecki 2017, Table 1)"""

    name = "log"

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        values = -np.sum(y * logp, axis=1)
        if log_1mp is not None:
            values -= np.sum((1 - y) * log_1mp, axis=1)
        return values, (y, log_1mp is not None)

    def _grads(self, cache: Any) -> tuple[Array | None, Array | None, Array | None]:
        y, binary = cache
        return None, -y, -(1 - y) if binary else None


class SquaredLogLoss(ProbabilityLoss):
    """:math:`\\ell = \\sum_j (y_j \\log p_j)^2`; :math:`g_{\\log p} = 2 y^2 \\log p`.
    Sigmoid: plus :math:`((1 - y_j) \\log(1 - p_j))^2`, with
    :math:`g_{\\log(1-p)} = 2 (1 - y)^2 \\log(1 - p)`.

    (seed: Janocha & Czarnecki 2017, Table 1, whose printed minus sign is a typo)
    """

    name = "squared_log"

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        ylogp = y * logp
        values = np.sum(ylogp * ylogp, axis=1)
        neg = None
        if log_1mp is not None:
            neg = (1 - y) * log_1mp
            values += np.sum(neg * neg, axis=1)
        return values, (y, ylogp, neg)

    def _grads(self, cache: Any) -> tuple[Array | None, Array | None, Array | None]:
        y, ylogp, neg = cache
        return None, 2 * y * ylogp, None if neg is None else 2 * (1 - y) * neg


class TanimotoLoss(ProbabilityLoss):
    """:math:`\\ell = -S / D` with :math:`S = \\sum_j p_j y_j`, :math:`A = \\|p\\|^2`,
    :math:`B = \\|y\\|^2`, :math:`D = A + B - S`;

    .. math:: g_p = -\\frac{y D - S (2p - y)}{D^2} = -\\frac{(A + B)\\, y - 2 S p}{D^2}

    (seed: Janocha & Czarnecki 2017, Table 1)
    """

    name = "tanimoto"

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        s = np.sum(p * y, axis=1, keepdims=True)
        ab = np.sum(p * p, axis=1, keepdims=True) + np.sum(y * y, axis=1, keepdims=True)
        d = ab - s
        return -(s / d)[:, 0], (p, y, s, ab, d)

    def _grads(self, cache: Any) -> tuple[Array | None, Array | None, Array | None]:
        p, y, s, ab, d = cache
        return -(ab * y - 2 * s * p) / (d * d), None, None


class CauchySchwarzLoss(ProbabilityLoss):
    """:math:`\\ell = -\\log \\frac{\\sum_j p_j y_j}{\\|p\\| \\|y\\|}
    = -\\log S + \\tfrac12 \\log A + \\tfrac12 \\log B` (notation of :class:`TanimotoLoss`).

    Both logs are taken of sums of exponentials of :math:`\\log p`, so nothing
    underflows: :math:`\\log S = \\mathrm{logsumexp}_j(\\log p_j; b = y)`,
    :math:`\\log A = \\mathrm{logsumexp}_j(2 \\log p_j)`, and

    .. math:: g_{\\log p} = -\\frac{y \\odot p}{S} + \\frac{p \\odot p}{A}

    (= log loss + 1/2 log ||p||^2 for one-hot y, Janocha Prop. 3; seed: Janocha &
    Czarnecki 2017, Table 1)
    """

    name = "cauchy_schwarz"

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        log_s = logsumexp(logp, b=y, axis=1, keepdims=True)
        log_a = logsumexp(2 * logp, axis=1, keepdims=True)
        log_b = np.log(np.sum(y * y, axis=1, keepdims=True))
        values = (-log_s + 0.5 * log_a + 0.5 * log_b)[:, 0]
        return values, (logp, y, log_s, log_a)

    def _grads(self, cache: Any) -> tuple[Array | None, Array | None, Array | None]:
        logp, y, log_s, log_a = cache
        # Classes with y_j = 0 are masked before the exp: log p_j - log S can be huge there.
        log_py = np.where(y > 0, logp + np.log(np.where(y > 0, y, 1)), -np.inf)
        return None, -np.exp(log_py - log_s) + np.exp(2 * logp - log_a), None


class _SoftmaxLoss(ProbabilityLoss):
    """A loss of :math:`p_c` under the softmax only (``losslab.losses`` offers no sigmoid
    form of alpha, gce and truncated_log either)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__(reduction, "softmax")


class _PowerLoss(_SoftmaxLoss):
    """:math:`\\ell = \\sum_j y_j (1 - p_j^e) / e` for an exponent :math:`e \\in (-\\infty, 1]`;
    :math:`e \\to 0` is the log loss. :math:`p^e = \\exp(e \\log p)`, so
    :math:`g_{\\log p} = -y\\, p^e`."""

    exponent = 1.0

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        e = self.exponent
        if e == 0:
            return -np.sum(y * logp, axis=1), (y, None)
        pe = np.exp(e * logp)
        return np.sum(y * (1 - pe), axis=1) / e, (y, pe)

    def _grads(self, cache: Any) -> tuple[Array | None, Array | None, Array | None]:
        y, pe = cache
        return None, -y if pe is None else -y * pe, None


class AlphaLoss(_PowerLoss):
    """Alpha-loss (Sypherd et al.): :math:`\\ell = \\frac{\\alpha}{\\alpha - 1}
    (1 - p_c^{1 - 1/\\alpha})`, alpha in (0, inf].

    With :math:`e = 1 - 1/\\alpha` this is :math:`(1 - p_c^e)/e`, i.e. ``gce(q=e)``;
    alpha = 1 is the log loss, alpha = inf is :math:`1 - p_c`; :math:`g_{\\log p} =
    -y\\, p^e`. For alpha < 1, e < 0 and the value grows like :math:`p_c^{e}` when
    :math:`p_c \\to 0`: finite for moderate logits, but it can overflow.

    Args:
        alpha: the order, > 0 (default 2; ``float("inf")`` allowed).
        reduction: "mean" | "sum" | "none".

    (seed: Mendez-Vazquez slides, alpha-loss; the slides' alpha/(1-alpha) is a typo)
    """

    name = "alpha"

    def __init__(self, alpha: float = 2.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not alpha > 0:
            raise LosslabError(f"alpha must be > 0 (inf allowed), got {alpha}")
        self.alpha = float(alpha)
        self.exponent = 1.0 if math.isinf(alpha) else 1.0 - 1.0 / self.alpha


class GCELoss(_PowerLoss):
    """Generalised cross-entropy (Zhang & Sabuncu 2018): :math:`\\ell = (1 - p_c^q)/q`;
    :math:`g_{\\log p} = -y\\, p^q`.

    Args:
        q: in (0, 1] (default 0.7); q = 1 is :math:`1 - p_c`, q -> 0 the log loss.
    """

    name = "gce"

    def __init__(self, q: float = 0.7, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not 0 < q <= 1:
            raise LosslabError(f"gce: q must be in (0, 1], got {q}")
        self.exponent = float(q)


class TruncatedLogLoss(_SoftmaxLoss):
    """:math:`\\ell = -\\log \\max(p_c, k)`; :math:`g_{\\log p} = -y\\, \\mathbb{I}[p > k]`
    (flat, hence no gradient, once :math:`p_c \\le k`). k = 0 is the plain log loss.

    Args:
        k: the truncation level in [0, 1] (default 0.5).

    (seed: Berlyand, Creese, Jabin 2021, eq. 12)
    """

    name = "truncated_log"

    def __init__(self, k: float = 0.5, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not 0 <= k <= 1:
            raise LosslabError(f"truncated_log: k must be in [0, 1], got {k}")
        self.k = float(k)
        self.log_k = math.log(k) if k > 0 else -math.inf

    def _values(
        self, p: Array, logp: Array, y: Array, log_1mp: Array | None
    ) -> tuple[Array, Any]:
        above = logp > self.log_k
        return -np.sum(y * np.where(above, logp, self.log_k), axis=1), (y, above)

    def _grads(self, cache: Any) -> tuple[Array | None, Array | None, Array | None]:
        y, above = cache
        return None, -y * above, None


# The twins of losslab.losses, under the same names; tests/test_losses.py checks that every
# torch loss has one here or states why not (``npnet_exemption``), and the reverse.
LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (
        L1Loss, L2Loss, ExpectationLoss, RegularisedExpectationLoss, ChebyshevLoss, HingeLoss,
        SquaredHingeLoss, CubedHingeLoss, LogLoss, SquaredLogLoss, TanimotoLoss,
        CauchySchwarzLoss, AlphaLoss, GCELoss, TruncatedLogLoss,
    )
}  # fmt: skip


def get_loss(name: str, **kwargs: Any) -> Loss:
    """Build the npnet loss registered as ``name`` (see :data:`LOSSES`) with ``kwargs``.

    Example:
        >>> loss = get_loss("gce", q=0.5)
        >>> value = loss.forward(logits, labels); dlogits = loss.backward()
    """
    return build(LOSSES, name, "npnet loss", **kwargs)
