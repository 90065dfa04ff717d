r"""The twelve classification losses of Janocha & Czarnecki (2017), Table 1.

Notation: ``o`` logits (N, C); ``y`` target rows (N, C), one-hot or probabilities;
:math:`\hat y = 2y - 1` (the +/-1 coding); ``p`` = softmax(o) or, with
``probability="sigmoid"``, the element-wise sigmoid(o). Each class supplies its kernel
from :mod:`losslab.losses.functional` (which also offers every loss as a function); the
base class validates, weights and reduces (see
:class:`~losslab.losses._base.ClassificationLoss`).

Which losses take ``probability``: the seven written with :math:`\sigma(o)` in Table 1 —
expectation, regularised_expectation, chebyshev, log, squared_log, tanimoto and
cauchy_schwarz. For the non-log ones ``"sigmoid"`` substitutes
:math:`p_j = \mathrm{sigmoid}(o_j)` into the same formula. For the two log losses the
literal substitution :math:`-\sum_j y_j \log \mathrm{sigmoid}(o_j)` would only ever
push the correct logit up and never the others down, so ``"sigmoid"`` instead treats
each class as its own binary problem with probabilities :math:`(p_j, 1 - p_j)` and
target :math:`(y_j, 1 - y_j)`: log loss becomes the binary cross-entropy summed over
classes (``F.binary_cross_entropy_with_logits(o, y, reduction="none").sum(-1)``).
The raw-logit losses (l1, l2 and the three hinges) take no ``probability``.
"""

from __future__ import annotations

import torch

from losslab.losses import functional as LF
from losslab.losses._base import ClassificationLoss, ProbabilityLoss

_SEED = "Janocha & Czarnecki 2017, Table 1"

# ---------------------------------------------------------------------------------------
# modules


class L1Loss(ClassificationLoss):
    r"""L1 loss on the raw logits (registry ``"l1"``).

    .. math:: \ell(o, y) = \sum_j |y_j - o_j|

    Seed: Janocha & Czarnecki 2017, Table 1 (:math:`\mathcal{L}_1`).

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        weight: optional per-class weights (C,), applied per sample as
            :math:`w_i = \sum_j \mathrm{weight}_j y_{ij}`.
        validate: per-call finiteness / label-range check (default True).

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("l1")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        2.0
    """

    formula = "Σ_j |y_j − o_j|"
    seed = _SEED + " (L1)"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.l1_kernel(x, target)


class L2Loss(ClassificationLoss):
    r"""Squared L2 loss on the raw logits (registry ``"l2"``).

    .. math:: \ell(o, y) = \sum_j (y_j - o_j)^2

    Seed: Janocha & Czarnecki 2017, Table 1 (:math:`\mathcal{L}_2`).

    Args:
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("l2")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        2.0
    """

    formula = "Σ_j (y_j − o_j)²"
    seed = _SEED + " (L2)"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.l2_kernel(x, target)


class ExpectationLoss(ProbabilityLoss):
    r"""Expectation loss: L1 on the probabilities (registry ``"expectation"``).

    .. math:: \ell(o, y) = \sum_j |y_j - p_j| \quad (= 2 - 2 p_c \text{ for one-hot } y)

    The identity is Proposition 1: the loss is the expected misclassification
    probability (up to the constant 2 and the factor 2) when a label is drawn from p.
    Its gradient vanishes for heavily misclassified samples (Proposition 2).

    Seed: Janocha & Czarnecki 2017, Table 1 (:math:`\mathcal{L}_1\circ\sigma`),
    Propositions 1-2.

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"``.
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("expectation")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        0.9443
    """

    formula = "Σ_j |y_j − p_j|  (= 2 − 2 p_c)"
    seed = _SEED + " (L1∘σ), Prop. 1"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.expectation_kernel(x, target, self.probability)


class RegularisedExpectationLoss(ProbabilityLoss):
    r"""Regularised expectation loss: squared L2 on the probabilities.

    Registry ``"regularised_expectation"``.

    .. math:: \ell(o, y) = \sum_j (y_j - p_j)^2 = 1 - 2 p_c + \|p\|^2 \text{ (one-hot } y)

    Proposition 1: the expected misclassification regularised by the squared norm of p.

    Seed: Janocha & Czarnecki 2017, Table 1 (:math:`\mathcal{L}_2\circ\sigma`),
    Proposition 1.

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"``.
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("regularised_expectation")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        0.5185
    """

    formula = "Σ_j (y_j − p_j)²"
    seed = _SEED + " (L2∘σ), Prop. 1"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.regularised_expectation_kernel(x, target, self.probability)


class ChebyshevLoss(ProbabilityLoss):
    r"""Chebyshev (L-infinity) loss on the probabilities (registry ``"chebyshev"``).

    .. math:: \ell(o, y) = \max_j |p_j - y_j|

    The seed prints the bars of the absolute value as spaces; the name
    :math:`\mathcal{L}_\infty\circ\sigma` fixes the reading. At ties the subgradient
    is shared evenly among the maximising classes, so the gradient stays finite.

    Seed: Janocha & Czarnecki 2017, Table 1 (:math:`\mathcal{L}_\infty\circ\sigma`).

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"``.
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("chebyshev")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        0.4721
    """

    formula = "max_j |p_j − y_j|"
    seed = _SEED + " (L∞∘σ)"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.chebyshev_kernel(x, target, self.probability)


class HingeLoss(ClassificationLoss):
    r"""Hinge (margin) loss on the raw logits with the +/-1 target coding (registry ``"hinge"``).

    .. math:: \ell(o, y) = \sum_j \max(0, \tfrac12 - \hat y_j o_j), \quad \hat y = 2y - 1

    For soft targets :math:`\hat y_j = 2y_j - 1` lies in [-1, 1] (our extension; the
    seed only uses one-hot targets).

    Seed: Janocha & Czarnecki 2017, Table 1 (hinge).

    Args:
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("hinge")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        1.5
    """

    formula = "Σ_j max(0, ½ − ŷ_j o_j)"
    seed = _SEED + " (hinge)"
    power = 1

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.hinge_kernel(x, target, self.power)


class SquaredHingeLoss(HingeLoss):
    r"""Squared hinge loss (registry ``"squared_hinge"``).

    .. math:: \ell(o, y) = \sum_j \max(0, \tfrac12 - \hat y_j o_j)^2

    The seed's summation bounds (:math:`j = 1..3`) are a typo: the sum runs over all classes.

    Seed: Janocha & Czarnecki 2017, Table 1 (hinge²).

    Args:
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("squared_hinge")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        1.5
    """

    formula = "Σ_j max(0, ½ − ŷ_j o_j)²"
    seed = _SEED + " (hinge²)"
    power = 2


class CubedHingeLoss(HingeLoss):
    r"""Cubed hinge loss (registry ``"cubed_hinge"``).

    .. math:: \ell(o, y) = \sum_j \max(0, \tfrac12 - \hat y_j o_j)^3

    Seed: Janocha & Czarnecki 2017, Table 1 (hinge³).

    Args:
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("cubed_hinge")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        1.875
    """

    formula = "Σ_j max(0, ½ − ŷ_j o_j)³"
    seed = _SEED + " (hinge³)"
    power = 3


class LogLoss(ProbabilityLoss):
    r"""Log loss (cross-entropy) computed with log-softmax (registry ``"log"``).

    .. math:: \ell(o, y) = -\sum_j y_j \log p_j

    With ``probability="sigmoid"`` it is the binary cross-entropy summed over classes,
    :math:`-\sum_j [y_j \log p_j + (1 - y_j)\log(1 - p_j)]` (see the module docstring
    for why not the literal substitution). With index targets and ``"softmax"`` it
    equals ``F.cross_entropy`` (class weights included).

    Seed: Janocha & Czarnecki 2017, Table 1 (log); Berlyand et al. 2021, eq. 4.

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"``.
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("log", weight=[1.0, 1.0, 2.0])
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        1.0909
    """

    formula = "−Σ_j y_j log p_j"
    seed = _SEED + " (log)"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.log_kernel(x, target, self.probability)

    def reduced(self, x, target, weight, reduction):
        return LF.log_kernel.reduced(x, target, weight, reduction, self.probability)


class SquaredLogLoss(ProbabilityLoss):
    r"""Squared log loss (registry ``"squared_log"``).

    .. math:: \ell(o, y) = \sum_j (y_j \log p_j)^2 \quad (= (\log p_c)^2 \text{ one-hot})

    The seed's table prints a leading minus sign: a typo, since it would reward
    confident wrong answers. With ``probability="sigmoid"`` each class is a binary
    problem: :math:`\sum_j [(y_j \log p_j)^2 + ((1-y_j)\log(1-p_j))^2]`.

    Seed: Janocha & Czarnecki 2017, Table 1 (log²).

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"``.
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("squared_log")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        1.2179
    """

    formula = "Σ_j (y_j log p_j)²"
    seed = _SEED + " (log², sign typo fixed)"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.squared_log_kernel(x, target, self.probability)


class TanimotoLoss(ProbabilityLoss):
    r"""Tanimoto loss (registry ``"tanimoto"``); values lie in [-1, 0].

    .. math:: \ell(o, y) = -\frac{\sum_j p_j y_j}{\|p\|^2 + \|y\|^2 - \sum_j p_j y_j}

    Seed: Janocha & Czarnecki 2017, Table 1 (tan).

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"``.
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("tanimoto")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        -0.5654
    """

    formula = "−p·y / (‖p‖² + ‖y‖² − p·y)"
    seed = _SEED + " (Tanimoto)"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.tanimoto_kernel(x, target, self.probability)


class CauchySchwarzLoss(ProbabilityLoss):
    r"""Cauchy-Schwarz divergence (registry ``"cauchy_schwarz"``); non-negative.

    .. math::
        \ell(o, y) = -\log\frac{\sum_j p_j y_j}{\|p\|_2 \|y\|_2}
        \quad (= -\log p_c + \tfrac12 \log\|p\|^2 \text{ for one-hot } y)

    The identity is Proposition 3. With the Rényi quadratic entropy
    :math:`H_2(p) = -\log\|p\|^2` it reads :math:`-\log p_c - \tfrac12 H_2(p)`: log loss
    *minus* half the Rényi entropy, so the loss rewards low-entropy (peaked) predictions.
    The paper says "regularised by half the Rényi quadratic entropy", a sign slip: its
    own formula :math:`-\log p_c + \tfrac12\log\|p\|^2` has the minus. Computed in the
    log domain (see :func:`losslab.losses.functional.cauchy_schwarz_kernel`).

    Seed: Janocha & Czarnecki 2017, Table 1 (:math:`D_{CS}`), Proposition 3.

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"``.
        reduction, weight, validate: as :class:`L1Loss`.

    Shape:
        logits (N, C); target (N,) int64 or (N, C) probabilities; output () or (N,).

    Example::

        >>> import torch
        >>> from losslab.losses import get_loss
        >>> loss = get_loss("cauchy_schwarz", probability="sigmoid")
        >>> logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> round(float(loss(logits, torch.tensor([0, 2]))), 4)
        0.4419
    """

    formula = "−log(p·y / (‖p‖ ‖y‖))"
    seed = _SEED + " (D_CS), Prop. 3"

    def kernel(self, x: torch.Tensor, target: torch.Tensor):
        return LF.cauchy_schwarz_kernel(x, target, self.probability)


JANOCHA_LOSSES: dict[str, type[ClassificationLoss]] = {
    "l1": L1Loss,
    "l2": L2Loss,
    "expectation": ExpectationLoss,
    "regularised_expectation": RegularisedExpectationLoss,
    "chebyshev": ChebyshevLoss,
    "hinge": HingeLoss,
    "squared_hinge": SquaredHingeLoss,
    "cubed_hinge": CubedHingeLoss,
    "log": LogLoss,
    "squared_log": SquaredLogLoss,
    "tanimoto": TanimotoLoss,
    "cauchy_schwarz": CauchySchwarzLoss,
}
