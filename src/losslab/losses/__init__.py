"""Every classification loss of the seeds as a drop-in PyTorch module.

``LOSSES`` maps each registry name to its class; :func:`get_loss` builds one::

    from losslab.losses import get_loss
    loss = get_loss("cauchy_schwarz")            # an nn.Module
    value = loss(logits, target)                 # logits (N, C); target (N,) int64 or (N, C)

Families: :mod:`~losslab.losses.janocha` (the 12 losses of Janocha & Czarnecki 2017,
Table 1), :mod:`~losslab.losses.robust` (alpha, gce, truncated_log) and
:mod:`~losslab.losses.two_scale` (Berlyand, Creese & Jabin 2021). Every loss subclasses
:class:`Loss`, the interface a trainer relies on; validation, class weights, dtypes and
reductions live in :mod:`~losslab.losses._base`, the kernels and the functional forms
(``losslab.functional``) in :mod:`~losslab.losses.functional`.
"""

from __future__ import annotations

from typing import Any

from losslab.losses import functional
from losslab.losses._base import (
    ClassificationLoss,
    Loss,
    ProbabilityLoss,
    skip_finite_check,
    skip_label_check,
)
from losslab.losses.janocha import (
    JANOCHA_LOSSES,
    CauchySchwarzLoss,
    ChebyshevLoss,
    CubedHingeLoss,
    ExpectationLoss,
    HingeLoss,
    L1Loss,
    L2Loss,
    LogLoss,
    RegularisedExpectationLoss,
    SquaredHingeLoss,
    SquaredLogLoss,
    TanimotoLoss,
)
from losslab.losses.robust import ROBUST_LOSSES, AlphaLoss, GCELoss, TruncatedLogLoss
from losslab.losses.two_scale import (
    TWO_SCALE_LOSSES,
    TwoScaleFixedLoss,
    TwoScaleLoss,
    TwoScaleSeparationLoss,
    classification_confidence,
)
from losslab.registry import build

LOSSES: dict[str, type[Loss]] = {
    **JANOCHA_LOSSES,
    **ROBUST_LOSSES,
    **TWO_SCALE_LOSSES,
}


def get_loss(name: str, **kwargs: Any) -> Loss:
    """Build the loss registered as ``name`` with keyword arguments ``kwargs``.

    Args:
        name: a key of :data:`LOSSES` (case-insensitive, ``-`` read as ``_``).
        **kwargs: the class's keyword arguments, e.g. ``reduction="sum"``,
            ``weight=[1, 2, 1]``, ``probability="sigmoid"``, ``alpha=3.0``, ``q=0.5``,
            ``k=0.3``, ``eta=0.01``.

    Returns:
        An ``nn.Module``; call it as ``loss(logits (N, C), target)``.

    Raises:
        LosslabError: unknown name (the message lists the valid ones), an unknown
            keyword, or an invalid value.
    """
    return build(LOSSES, name, "loss", **kwargs)


__all__ = [
    "JANOCHA_LOSSES",
    "LOSSES",
    "ROBUST_LOSSES",
    "TWO_SCALE_LOSSES",
    "AlphaLoss",
    "CauchySchwarzLoss",
    "ChebyshevLoss",
    "ClassificationLoss",
    "CubedHingeLoss",
    "ExpectationLoss",
    "GCELoss",
    "HingeLoss",
    "L1Loss",
    "L2Loss",
    "LogLoss",
    "Loss",
    "ProbabilityLoss",
    "RegularisedExpectationLoss",
    "SquaredHingeLoss",
    "SquaredLogLoss",
    "TanimotoLoss",
    "TruncatedLogLoss",
    "TwoScaleFixedLoss",
    "TwoScaleLoss",
    "TwoScaleSeparationLoss",
    "classification_confidence",
    "functional",
    "get_loss",
    "skip_finite_check",
    "skip_label_check",
]
