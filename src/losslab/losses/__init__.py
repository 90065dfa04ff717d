"""Every classification loss of the seeds as a drop-in PyTorch module.

``LOSSES`` maps each registry name to its class; :func:`get_loss` builds one::

    from losslab.losses import get_loss
    loss = get_loss("cauchy_schwarz")            # an nn.Module
    value = loss(logits, target)                 # logits (N, C); target (N,) int64 or (N, C)

Families: :mod:`~losslab.losses.janocha` (the 12 losses of Janocha & Czarnecki 2017,
Table 1), :mod:`~losslab.losses.robust` (alpha, gce, truncated_log) and
:mod:`~losslab.losses.two_scale` (Berlyand, Creese & Jabin 2021). Every loss subclasses
:class:`Loss`, the interface a trainer relies on; validation, class weights, dtypes and
reductions live in :mod:`~losslab.losses._base`, the kernels in
:mod:`~losslab.losses.kernels`, the functional forms (``losslab.functional``) in
:mod:`~losslab.losses.functional`.

A loss is added in one place: :func:`register_loss` with its kernel and what the docs say
of it (:func:`~losslab.losses.definition.define_loss`); the module class, its functional
form (:func:`functional_form`), ``losslab list``/``show``, studies and the report follow.
"""

from __future__ import annotations

import sys
from typing import Any

from losslab.errors import LosslabError
from losslab.losses import functional
from losslab.losses._base import (
    ClassificationLoss,
    Kernel,
    Loss,
    ProbabilityLoss,
    skip_finite_check,
    skip_label_check,
)
from losslab.losses.definition import Hyper, LossDefinition, define_loss, functional_form
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


def register_loss(
    name: str, loss: Kernel | type[Loss], *, replace: bool = False, **definition: Any
) -> type[Loss]:
    """Add a loss to :data:`LOSSES` (the public route for plugins); returns its class.

    Args:
        name: the registry name, lowercase snake_case, not yet taken (unless ``replace``).
        loss: a kernel ``(x (N, C), target, **options) -> (values (N,), probe)``, made into
            a class by :func:`~losslab.losses.definition.define_loss` with ``definition``
            (title, math, formula, seed, hyper, probability, ...), or a :class:`Loss`
            subclass registered as it is.
        replace: allow replacing an existing entry.
        **definition: the keyword arguments of ``define_loss`` (with a kernel only).

    Raises:
        LosslabError: a taken or malformed name, or a definition given with a class.
    """
    if not isinstance(name, str) or not name.isidentifier() or name != name.lower():
        raise LosslabError(f"a loss name must be lowercase snake_case; got {name!r}")
    if name in LOSSES and not replace:
        raise LosslabError(
            f"the loss name {name!r} is taken by {LOSSES[name].__qualname__}; pick another "
            "name, or pass replace=True"
        )
    if isinstance(loss, type):
        if not issubclass(loss, Loss) or definition:
            raise LosslabError(
                f"register_loss({name!r}, ...): give a Loss subclass alone, or a kernel "
                "function with its definition (title=, math=, formula=, seed=, ...)"
            )
        cls = loss
    else:
        definition.setdefault("module", sys._getframe(1).f_globals.get("__name__", __name__))
        cls = define_loss(name, loss, **definition)
    LOSSES[name] = cls
    return cls


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
    "Hyper",
    "L1Loss",
    "L2Loss",
    "LogLoss",
    "Loss",
    "LossDefinition",
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
    "define_loss",
    "functional",
    "functional_form",
    "get_loss",
    "register_loss",
    "skip_finite_check",
    "skip_label_check",
]
