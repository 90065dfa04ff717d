"""Per-model losses of M models computed with as few calls as possible.

Models whose losses are the same plain function (same registry name and keyword
arguments, no trainable or per-model state, mean reduction, no class weights) are
evaluated in ONE call on their stacked logits (G * N, C): per-sample values, then a mean
over each model's N samples. Every other loss (two-scale losses with their per-model
scales R1/R2/R_s, user modules) is called once per model on logits (N, C).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from losslab.errors import LosslabError
from losslab.losses import ClassificationLoss
from losslab.losses.two_scale import TwoScaleLoss, TwoScaleSeparationLoss


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
    count: int
    grouped: bool


class LossPlan:
    """Computes the (M,) vector of per-model losses.

    Args:
        losses: the M loss modules, already in :func:`plan_order` (each model its own
            module; modules of one group share their configuration).
        keys: one hashable per model; consecutive models with equal keys and a groupable
            loss are computed together.
    """

    def __init__(self, losses: Sequence[nn.Module], keys: Sequence[object]):
        self.losses = list(losses)
        for i, loss in enumerate(self.losses):
            if getattr(loss, "reduction", "mean") == "none":
                raise LosslabError(
                    f"loss {i} ({type(loss).__name__}) has reduction='none'; the trainer needs "
                    "a scalar per model: use reduction='mean' (default) or 'sum'"
                )
        self.needs_scale = any(getattr(loss, "requires_scale", False) for loss in self.losses)
        self.attachable = [hasattr(loss, "attach") for loss in self.losses]
        self.needs_attach = any(self.attachable)
        self.runs: list[LossRun] = []
        for i, (loss, key) in enumerate(zip(self.losses, keys, strict=True)):
            grouped = _groupable(loss)
            last = self.runs[-1] if self.runs else None
            if grouped and last is not None and last.grouped and keys[last.start] == key:
                self.runs[-1] = last._replace(count=last.count + 1)
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
                onehot = F.one_hot(t, c).to(logits.dtype)
                if shared:
                    onehot = onehot.expand(g, n, c)
                values = loss.per_sample(z.reshape(g * n, c), onehot.reshape(g * n, c))
                pieces.append(values.view(g, n).mean(1))
            elif getattr(loss, "requires_scale", False):
                pieces.append(loss(z[0], t if shared else t[0], scale=scales[start]).reshape(1))
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
            if grouped or not hasattr(loss, "predict_logits"):
                pieces.append(z)
            elif getattr(loss, "requires_scale", False):
                pieces.append(loss.predict_logits(z[0], scale=scales[start]).unsqueeze(0))
            else:
                pieces.append(loss.predict_logits(z[0]).unsqueeze(0))
        return torch.cat(pieces) if len(pieces) > 1 else pieces[0]


def loss_scales(loss: nn.Module) -> dict[str, float]:
    """The current scales of a two-scale loss ({"R1", "R2"} or {"Rs"}); {} for others."""
    if isinstance(loss, TwoScaleLoss) and loss._ready:
        out = {"R1": float(loss.r1.detach())}
        if not loss.baseline:
            out["R2"] = float(loss.r2.detach())
        return out
    if isinstance(loss, TwoScaleSeparationLoss):
        return {"Rs": float(loss.rs.detach())}
    return {}


@contextlib.contextmanager
def validation_off(losses: Sequence[nn.Module]) -> Iterator[None]:
    """Switch the losses' per-call NaN check off while training, and back on afterwards.

    The check would raise (and synchronise) on a diverging model, which the trainer
    handles itself by masking it; the flags are restored even when training raises.
    """
    saved = [(loss, loss.validate) for loss in losses if hasattr(loss, "validate")]
    try:
        for loss, _ in saved:
            loss.validate = False
        yield
    finally:
        for loss, flag in saved:
            loss.validate = flag
