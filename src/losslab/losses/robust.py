r"""Losses that bound or flatten the penalty on badly misclassified samples.

alpha-loss (Mendez-Vazquez slides, "alpha-Loss"), the generalised cross-entropy of
Zhang & Sabuncu (2018) and the truncated log loss (Berlyand et al. eq. 12). All three
are functions of the correct-class probability :math:`p_c` = softmax(o)_c. For soft
targets they are extended as the expectation over the target distribution,
:math:`\sum_j y_j f(p_j)`, which is :math:`f(p_c)` for a one-hot row. For index targets
each is computed from the per-sample cross-entropy :math:`-\log p_c` (one
``F.cross_entropy`` plus O(N) work; see :mod:`losslab.losses.functional`).

Stability: :math:`p^q` is computed as :math:`\exp(q \log p)` with log-softmax, and
:math:`1 - p^q` as ``-expm1(q log p)`` so that alpha near 1 does not cancel. Classes
with :math:`y_j = 0` are masked *before* the power (not multiplied by zero after it),
so that an infinite :math:`p_j^{q}` of a wrong class (alpha < 1) cannot produce
``0 * inf = NaN`` in the value or the gradient.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from losslab.losses import functional as LF
from losslab.losses._base import ClassificationLoss


class AlphaLoss(ClassificationLoss):
    r"""alpha-loss (registry ``"alpha"``), a family from log loss to 1 - p_c.

    .. math::
        \ell(o, c) = \frac{\alpha}{\alpha - 1}\left(1 - p_c^{\,1 - 1/\alpha}\right),
        \quad \ell^{1} = -\log p_c, \quad \ell^{\infty} = 1 - p_c

    The two limits are the continuous extensions. The slides print
    :math:`\alpha/(1-\alpha)` and :math:`\ell^\infty = 1 - \log P`: both typos (the first
    makes the loss negative, the second contradicts the slides' own limit). With
    :math:`q = 1 - 1/\alpha` this is exactly :class:`GCELoss` (q in (0, 1] for
    alpha > 1; alpha < 1 gives q < 0). For alpha < 1 the loss is unbounded:
    it grows like :math:`p_c^{-(1/\alpha - 1)}` and overflows to inf once that
    exceeds the dtype's range (a truly lost sample "pays an infinite cost"), so
    only alpha >= 1 is finite for every input.

    Seed: Mendez-Vazquez 2025 slides, "Beyond Convex Functions: alpha-Loss".

    Args:
        alpha: alpha > 0, ``float("inf")`` allowed. Default 2.0 (our choice, the seed
            gives none: the family member halfway between log loss and 1 - p_c,
            2(1 - sqrt(p_c)) = gce(q=1/2)).
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        weight: optional per-class weights (C,).
        validate: per-call finiteness / label-range check (default True).

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("alpha", alpha=3.0)
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        0.5637
    """

    formula = "α/(α−1) (1 − p_c^(1−1/α)); α=1: −log p_c; α=∞: 1 − p_c"
    seed = "Mendez-Vazquez 2025 slides, alpha-Loss (typos fixed)"
    hyper_parameters = ("alpha",)

    def __init__(
        self,
        alpha: float = 2.0,
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool | str = True,
    ) -> None:
        super().__init__(reduction=reduction, weight=weight, validate=validate)
        self.alpha = LF.check_alpha(alpha)

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.alpha_kernel(x, target, self.alpha)


class GCELoss(ClassificationLoss):
    r"""Generalised cross-entropy (registry ``"gce"``), Zhang & Sabuncu 2018.

    .. math:: \ell(o, c) = \frac{1 - p_c^{\,q}}{q}, \quad q \in (0, 1]

    q -> 0 recovers log loss, q = 1 gives 1 - p_c (half the expectation loss).
    alpha-loss with alpha = 1 / (1 - q) is the same function.

    Seed: Zhang & Sabuncu 2018, cited by Berlyand, Creese & Jabin 2021 (section 2.2,
    ref. [15]); equal to the alpha-loss of the Mendez-Vazquez slides.

    Args:
        q: exponent in (0, 1], default 0.7 (Zhang & Sabuncu's recommended value).
        reduction, weight, validate: as :class:`AlphaLoss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("gce", q=0.5)
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        0.621
    """

    formula = "(1 − p_c^q) / q"
    seed = "Zhang & Sabuncu 2018 (Berlyand et al. ref. 15); = alpha(α = 1/(1−q))"
    hyper_parameters = ("q",)

    def __init__(
        self,
        q: float = 0.7,
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool | str = True,
    ) -> None:
        super().__init__(reduction=reduction, weight=weight, validate=validate)
        self.q = LF.check_q(q)

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.gce_kernel(x, target, self.q)


class TruncatedLogLoss(ClassificationLoss):
    r"""Truncated log loss (registry ``"truncated_log"``): log loss capped at -log k.

    .. math:: \ell(o, c) = -\log \max(p_c, k)

    A sample whose correct-class probability is below k costs the constant -log k and
    contributes no gradient, which limits the pull of outliers and mislabelled samples.
    The seed's case split compares :math:`\delta X` with k in its second branch; that
    mixes two quantities (a typo): both branches compare :math:`p_c` with k. k = 0 is
    log loss.

    Seed: Berlyand, Creese & Jabin 2021, section 2.2, eq. 12.

    Args:
        k: truncation level in [0, 1], default 0.5.
        reduction, weight, validate: as :class:`AlphaLoss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("truncated_log", k=0.3)
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        0.6869
    """

    formula = "−log max(p_c, k)"
    seed = "Berlyand, Creese & Jabin 2021, eq. 12"
    hyper_parameters = ("k",)

    def __init__(
        self,
        k: float = 0.5,
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool | str = True,
    ) -> None:
        super().__init__(reduction=reduction, weight=weight, validate=validate)
        self.k = LF.check_k(k)

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.truncated_log_kernel(x, target, self.k)


ROBUST_LOSSES: dict[str, type[ClassificationLoss]] = {
    "alpha": AlphaLoss,
    "gce": GCELoss,
    "truncated_log": TruncatedLogLoss,
}
