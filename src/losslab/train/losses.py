"""Per-model losses of M models computed with as few calls as possible.

The trainer sees every loss through the declared interface :class:`losslab.losses.Loss`
(``per_sample``, ``requires_scale``, ``attach``, ``predict_logits``); a plain
``nn.Module`` ``(logits, target) -> scalar`` of a user is wrapped in :class:`ModuleLoss`.

Models whose losses are the same plain function (same registry name and keyword
arguments, no trainable or per-model state, mean reduction, no class weights) are
evaluated in ONE call on their stacked logits (G * N, C): per-sample values, then a mean
over each model's N samples. Every other loss (two-scale losses with their per-model
scales R1/R2/R_s, user modules) is called once per model on logits (N, C).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, cast

import torch
from torch import nn

from losslab.errors import LosslabError
from losslab.losses import ClassificationLoss, Loss
from losslab.losses.two_scale import TwoScaleLoss, TwoScaleSeparationLoss


class ModuleLoss(Loss):
    """A user's plain ``nn.Module`` loss ``(logits (N, C), target (N,)) -> ()`` as a
    :class:`~losslab.losses.Loss` (no scale, identity ``predict_logits``).

    Args:
        module: the user's module (kept by reference, trained in place if it has
            parameters).
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.module(logits, target)


def as_loss(loss: nn.Module) -> Loss:
    """``loss`` itself when it is a :class:`~losslab.losses.Loss`, else a :class:`ModuleLoss`."""
    return loss if isinstance(loss, Loss) else ModuleLoss(loss)


def user_module(loss: Loss) -> nn.Module:
    """The module the caller gave (inverse of :func:`as_loss`)."""
    return loss.module if isinstance(loss, ModuleLoss) else loss


def _groupable(loss: nn.Module) -> bool:
    return (
        isinstance(loss, ClassificationLoss)
        and type(loss).forward is ClassificationLoss.forward
        and loss.weight is None
        and loss.reduction == "mean"
        and not any(True for _ in loss.parameters())
    )


def plan_order(losses: Sequence[nn.Module], keys: Sequence[object]) -> list[int]:
    """An order of the models that puts every group of same-kind losses next to each other.

    The trainer stacks the models in this order so that :class:`LossPlan` reads each group
    as a contiguous slice of the logits (a view; ``index_select``'s backward is a
    ``scatter_add`` measured at ~25 ms per call on CPU for (12, 100, 10) logits).
    """
    groups: dict[object, list[int]] = {}
    singles: list[int] = []
    for i, (loss, key) in enumerate(zip(losses, keys, strict=True)):
        if _groupable(loss):
            groups.setdefault(key, []).append(i)
        else:
            singles.append(i)
    return [i for idx in groups.values() for i in idx] + singles


class LossRun(NamedTuple):
    """A run of consecutive models whose losses are computed in one step of the plan."""

    start: int
    size: int  # not "count": that would shadow tuple.count
    grouped: bool


def _model_scale(scales: torch.Tensor | None, i: int) -> torch.Tensor:
    if scales is None:
        raise LosslabError(
            f"loss {i} requires the model's parameter scale: pass scales= (the (M,) scales R)"
        )
    return scales[i]


class LossPlan:
    """Computes the (M,) vector of per-model losses.

    Args:
        losses: the M losses (:class:`~losslab.losses.Loss`), already in
            :func:`plan_order` (each model its own module; modules of one group share
            their configuration).
        keys: one hashable per model; consecutive models with equal keys and a groupable
            loss are computed together.
    """

    def __init__(self, losses: Sequence[Loss], keys: Sequence[object]):
        self.losses = list(losses)
        for i, loss in enumerate(self.losses):
            if isinstance(loss, ClassificationLoss) and loss.reduction == "none":
                raise LosslabError(
                    f"loss {i} ({type(loss).__name__}) has reduction='none'; the trainer needs "
                    "a scalar per model: use reduction='mean' (default) or 'sum'"
                )
        self.scaled = [loss.requires_scale for loss in self.losses]
        self.needs_scale = any(self.scaled)
        self.runs: list[LossRun] = []
        for i, (loss, key) in enumerate(zip(self.losses, keys, strict=True)):
            grouped = _groupable(loss)
            last = self.runs[-1] if self.runs else None
            if grouped and last is not None and last.grouped and keys[last.start] == key:
                self.runs[-1] = last._replace(size=last.size + 1)
            else:
                self.runs.append(LossRun(i, 1, grouped))

    def __call__(
        self,
        logits: torch.Tensor,
        target: torch.Tensor,
        scales: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-model losses.

        Args:
            logits: (M, N, C).
            target: (N,) labels shared by all models, or (M, N) one batch per model.
            scales: (M,) parameter scales R, needed when a loss ``requires_scale``.

        Returns:
            (M,) the loss of each model on its own logits (mean over its N samples).
        """
        m, n, c = logits.shape
        shared = target.dim() == 1
        pieces = []
        for start, g, grouped in self.runs:
            z = logits.narrow(0, start, g)
            t = target if shared else target.narrow(0, start, g)
            loss = self.losses[start]
            if grouped:
                labels = t.expand(g, n) if shared else t
                values = loss.per_sample(z.reshape(g * n, c), labels.reshape(g * n))
                pieces.append(values.view(g, n).mean(1))
            elif self.scaled[start]:
                scale = _model_scale(scales, start)
                pieces.append(loss(z[0], t if shared else t[0], scale=scale).reshape(1))
            else:
                pieces.append(loss(z[0], t if shared else t[0]).reshape(1))
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]

    def predict(self, logits: torch.Tensor, scales: torch.Tensor | None = None) -> torch.Tensor:
        """Prediction logits of every model through its loss's ``predict_logits``, (M, N, C).

        Identity for every loss but the two-scale ones (R1 z / R, Berlyand et al. 2021
        section 2.3); grouped losses are plain functions of the logits, so their slice is
        kept as it is.
        """
        pieces = []
        for start, g, grouped in self.runs:
            z = logits.narrow(0, start, g)
            loss = self.losses[start]
            if grouped:
                pieces.append(z)
            elif self.scaled[start]:
                scaled = cast(TwoScaleLoss | TwoScaleSeparationLoss, loss)
                z0 = scaled.predict_logits(z[0], scale=_model_scale(scales, start))
                pieces.append(z0.unsqueeze(0))
            else:
                pieces.append(loss.predict_logits(z[0]).unsqueeze(0))
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]


def loss_scales(loss: Loss) -> dict[str, float]:
    """The current scales of a two-scale loss ({"R1", "R2"}, {"R_s"} or {"R_s", "R0"});
    {} for every other loss (Berlyand et al. 2021, section 2.3)."""
    if isinstance(loss, TwoScaleLoss):
        if not loss._ready:
            return {}
        out = {"R1": float(loss.r1.detach())}
        if not loss.baseline:
            out["R2"] = float(loss.r2.detach())
        return out
    if isinstance(loss, TwoScaleSeparationLoss):
        out = {"R_s": float(loss.rs.detach())}
        if loss.requires_scale and loss._ready:
            out["R0"] = float(loss.r0.detach())
        return out
    return {}
