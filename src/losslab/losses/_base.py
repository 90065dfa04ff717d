"""Shared machinery of every losslab loss: targets, validation, class weights, reduction.

Every loss is a per-sample function of logits ``o`` (N, C) and a dense target matrix
``y`` (N, C), wrapped by a thin :class:`ClassificationLoss` module (keras / timm style)
that validates the inputs, turns class indices into one-hot rows, applies class weights
and reduces over the batch. Index targets and their one-hot matrices therefore take the
same code path and give bit-identical results.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from losslab.checks import check_choice, check_real
from losslab.errors import LosslabError

REDUCTIONS = ("mean", "sum", "none")
PROBABILITIES = ("softmax", "sigmoid")

# A probability target row may miss a sum of 1 by this much (float32 label smoothing
# and mixup rows are off by a few ulps, never by 1e-3).
_ROW_SUM_TOLERANCE = 1e-3


def check_number(value: object, what: str, **bounds: Any) -> float:
    """:func:`losslab.checks.check_real` that also accepts a one-element tensor.

    Args:
        value: a real number (Python, NumPy or a one-element tensor).
        what: how the message names it, e.g. ``"alpha (alpha loss)"``.
        **bounds: ``low``, ``high``, ``low_open``, ``high_open``, ``allow_inf`` of
            :func:`~losslab.checks.check_real`.
    """
    if isinstance(value, torch.Tensor):
        if value.numel() != 1 or value.dtype == torch.bool or value.is_complex():
            raise LosslabError(f"{what} must be a real number; got {value!r}")
        value = value.item()
    return check_real(what, value, **bounds)


def log_probabilities(logits: torch.Tensor, probability: str) -> torch.Tensor:
    """log p for ``probability="softmax"`` (log-softmax) or ``"sigmoid"`` (log-sigmoid), (N, C).

    Computed in the log domain so that an underflowing p gives a finite, very negative
    log p rather than ``log(0) = -inf``.
    """
    if probability == "softmax":
        return F.log_softmax(logits, dim=-1)
    return F.logsigmoid(logits)


def probabilities(logits: torch.Tensor, probability: str) -> torch.Tensor:
    """p = softmax(o) over classes or the element-wise sigmoid(o), (N, C)."""
    if probability == "softmax":
        return torch.softmax(logits, dim=-1)
    return torch.sigmoid(logits)


class ClassificationLoss(nn.Module):
    r"""Base class of every losslab loss: validation, targets, class weights, reduction.

    Subclasses implement :meth:`per_sample` ``(logits (N, C), y (N, C)) -> (N,)``, where
    ``y`` is always a dense float matrix (index targets arrive as one-hot rows).

    Weighting follows ``torch.nn.functional.cross_entropy`` for index targets: sample i
    gets the weight :math:`w_i = \sum_j \mathrm{weight}_j y_{ij}` (= ``weight[c_i]`` for a
    one-hot row), ``"none"`` returns :math:`w_i \ell_i`, ``"sum"`` their sum and ``"mean"``
    :math:`\sum_i w_i \ell_i / \sum_i w_i`. For soft targets this differs from torch,
    which weights inside the class sum and divides ``"mean"`` by N.

    Args:
        reduction: ``"mean"`` (default), ``"sum"`` or ``"none"``.
        weight: optional per-class weights, shape (C,), finite and non-negative.
        validate: check every call that logits are finite, labels lie in [0, C) and
            probability targets are distributions (one host sync). Shape checks always
            run; a training loop may set ``loss.validate = False`` in its hot path.

    Shape:
        - logits: (N, C) floating point, C >= 2.
        - target: (N,) integer class indices in [0, C), or (N, C) float probability rows.
        - output: scalar, or (N,) for ``reduction="none"``.
    """

    formula: ClassVar[str] = ""
    seed: ClassVar[str] = ""
    requires_scale: ClassVar[bool] = False

    weight: torch.Tensor | None

    def __init__(
        self,
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__()
        self.reduction = check_choice("reduction", reduction, REDUCTIONS)
        self.validate = bool(validate)
        self.register_buffer("weight", _as_weight(weight))

    def per_sample(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The unreduced, unweighted loss of each sample: logits (N, C), y (N, C) -> (N,)."""
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Loss of a batch: logits (N, C), target (N,) int or (N, C) float -> () or (N,)."""
        y = self.prepare_target(logits, target)
        return self.reduce(self.per_sample(logits, y), y)

    def prepare_target(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Validate the inputs and return the dense target matrix y, (N, C), logits' dtype."""
        name = type(self).__name__
        if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
            raise LosslabError(f"{name}: logits must be a floating-point tensor (N, C)")
        if logits.ndim != 2 or logits.shape[1] < 2:
            raise LosslabError(
                f"{name}: logits must have shape (N, C) with C >= 2 classes; got "
                f"{tuple(logits.shape)}. Flatten extra dimensions into N first."
            )
        if not isinstance(target, torch.Tensor):
            raise LosslabError(f"{name}: target must be a tensor, got {type(target).__name__}")
        n, c = logits.shape
        if self.weight is not None and self.weight.shape[0] != c:
            raise LosslabError(
                f"{name}: weight has {self.weight.shape[0]} entries but the logits have "
                f"C = {c} classes"
            )
        if target.ndim == 1:
            if target.dtype == torch.bool or target.is_floating_point() or target.is_complex():
                raise LosslabError(
                    f"{name}: a 1-d target holds class indices and must be an integer tensor; "
                    f"got dtype {target.dtype}. Pass target.long(), or a (N, C) probability matrix."
                )
            if target.shape[0] != n:
                raise LosslabError(
                    f"{name}: target has {target.shape[0]} labels but logits have N = {n} rows"
                )
            target = target.long()
            if self.validate:
                ok = torch.isfinite(logits).all() & (target >= 0).all() & (target < c).all()
                if not bool(ok):
                    self._diagnose(logits, labels=target)
            return F.one_hot(target, c).to(logits.dtype)
        if target.ndim == 2:
            if not target.is_floating_point():
                raise LosslabError(
                    f"{name}: a (N, C) target must be a float probability matrix; got dtype "
                    f"{target.dtype}. Pass class indices as a 1-d integer tensor instead."
                )
            if tuple(target.shape) != (n, c):
                raise LosslabError(
                    f"{name}: target shape {tuple(target.shape)} does not match logits shape "
                    f"{(n, c)}"
                )
            y = target.to(logits.dtype)
            if self.validate:
                ok = (
                    torch.isfinite(logits).all()
                    & torch.isfinite(y).all()
                    & (y >= 0).all()
                    & ((y.sum(-1) - 1).abs() <= _ROW_SUM_TOLERANCE).all()
                )
                if not bool(ok):
                    self._diagnose(logits, probs=y)
            return y
        raise LosslabError(
            f"{name}: target must be (N,) class indices or an (N, C) probability matrix; got "
            f"shape {tuple(target.shape)}"
        )

    def _diagnose(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor | None = None,
        probs: torch.Tensor | None = None,
    ) -> None:
        """Called only when a check failed: find out which one and raise its message."""
        name = type(self).__name__
        if not torch.isfinite(logits).all():
            bad = int((~torch.isfinite(logits)).any(-1).sum())
            raise LosslabError(
                f"{name}: logits contain NaN or inf in {bad} of {logits.shape[0]} rows; the "
                "model has probably diverged (lower the learning rate) or its input holds NaN"
            )
        c = logits.shape[1]
        if labels is not None:
            raise LosslabError(
                f"{name}: class labels must lie in [0, {c}); got values from "
                f"{int(labels.min())} to {int(labels.max())}"
            )
        if probs is not None:
            if not torch.isfinite(probs).all() or (probs < 0).any():
                raise LosslabError(
                    f"{name}: a (N, C) target must hold finite, non-negative probabilities"
                )
            sums = probs.sum(-1)
            raise LosslabError(
                f"{name}: every row of a (N, C) target must sum to 1 (a probability "
                f"distribution); row sums range from {float(sums.min()):g} to "
                f"{float(sums.max()):g}"
            )

    def reduce(self, values: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Apply the class weights and the reduction to per-sample values (N,)."""
        if self.weight is None:
            if self.reduction == "none":
                return values
            return values.sum() if self.reduction == "sum" else values.mean()
        w = y @ self.weight.to(device=y.device, dtype=y.dtype)
        weighted = w * values
        if self.reduction == "none":
            return weighted
        if self.reduction == "sum":
            return weighted.sum()
        return weighted.sum() / w.sum()

    def extra_repr(self) -> str:
        parts = [f"reduction={self.reduction!r}"]
        if self.weight is not None:
            parts.append(f"weight={self.weight.tolist()}")
        return ", ".join(parts)


class ProbabilityLoss(ClassificationLoss):
    """A loss defined on probability estimates p = softmax(o) or p = sigmoid(o).

    Args:
        probability: ``"softmax"`` (default) or ``"sigmoid"`` (element-wise, each class
            its own probability; p no longer sums to 1).
        reduction, weight, validate: see :class:`ClassificationLoss`.
    """

    def __init__(
        self,
        probability: str = "softmax",
        reduction: str = "mean",
        weight: torch.Tensor | Sequence[float] | None = None,
        validate: bool = True,
    ) -> None:
        super().__init__(reduction=reduction, weight=weight, validate=validate)
        self.probability = check_choice("probability", probability, PROBABILITIES)

    def extra_repr(self) -> str:
        return f"probability={self.probability!r}, " + super().extra_repr()


def _as_weight(weight: torch.Tensor | Sequence[float] | None) -> torch.Tensor | None:
    if weight is None:
        return None
    try:
        w = torch.as_tensor(weight, dtype=torch.get_default_dtype()).detach().clone()
    except (TypeError, ValueError, RuntimeError):
        raise LosslabError(f"weight must be a sequence of C numbers; got {weight!r}") from None
    if w.ndim != 1 or w.numel() < 2:
        raise LosslabError(
            f"weight must be a 1-d tensor with one entry per class (C,); got shape {tuple(w.shape)}"
        )
    if not torch.isfinite(w).all() or (w < 0).any() or not (w > 0).any():
        raise LosslabError(
            f"weight must be finite and non-negative with at least one positive entry; got "
            f"{w.tolist()}"
        )
    return w
