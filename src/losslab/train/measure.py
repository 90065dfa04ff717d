"""Measurement hooks: extra quantities recorded during training without touching the loop.

A :class:`Measurement` is called after every evaluation (``when="eval"``) or once at the
end (``when="final"``) with a :class:`MeasureContext`, which hands it what the engine
already has at that moment: every model's evaluation logits per split (through each
loss's ``predict_logits``, so a two-scale model is read at its scale R1), the labels and
inputs, a ``predict`` function for new inputs, the per-layer gradient norms of the last
step and the loss scales. It returns rows ``(name, index, value)`` per model; the engine
prefixes the step and stores them in :attr:`losslab.train.TrainResult.measurements`.

Example::

    class MeanMargin:
        name, when, needs_grads = "mean_max_logit", "eval", False

        def __call__(self, ctx):
            top = ctx.logits("test").max(-1).values.mean(-1)  # (M,)
            return [[(self.name, "", float(v))] for v in top]

    results = train_many(net, specs, data, config, measure=[MeanMargin()])
    results[0].measurements  # [(step, "mean_max_logit", "", value), ...]

Seed: Berlyand, Creese & Jabin 2021, sections 3.3-3.5 (confidence dX, the scales R1, R2
during training); Janocha & Czarnecki 2017, section 3 (learning curves per loss).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import torch

from losslab.errors import LosslabError
from losslab.train.data import TrainData

Rows = list[list[tuple[str, str, float]]]
WHENS = ("eval", "final")


@runtime_checkable
class Measurement(Protocol):
    """Something recorded from a :class:`MeasureContext`.

    Attributes:
        name: e.g. ``"grad_norm"``.
        when: ``"eval"`` (after every evaluation) or ``"final"`` (once, at the end).
        needs_grads: the engine must keep the per-layer gradient norms of the step before
            each evaluation (:meth:`MeasureContext.grad_norms`).
    """

    name: str
    when: str
    needs_grads: bool

    def __call__(self, ctx: MeasureContext) -> Rows:
        """One list per model of ``(name, index, value)`` rows."""
        ...


class MeasureContext:
    """What a measurement may read at one evaluation of M models.

    Attributes:
        step: optimizer steps taken so far.
        num_models: M.
        num_classes: C.
        models: the M models' labels, in the order of every (M, ...) tensor here (the
            engine's stacking order; the rows a measurement returns in this order are
            handed back to each model's result).
    """

    def __init__(
        self,
        step: int,
        models: list[str],
        data: TrainData,
        logits: dict[str, torch.Tensor],
        predict: Callable[[torch.Tensor], torch.Tensor],
        grad_norms: dict[str, torch.Tensor] | None,
        loss_scales: list[dict[str, float]],
    ):
        self.step = step
        self.models = models
        self.num_models = len(models)
        self.num_classes = data.num_classes
        self._data = data
        self._logits = logits
        self._predict = predict
        self._grad_norms = grad_norms
        self._loss_scales = loss_scales

    def _check(self, split: str) -> None:
        if split not in ("train", "dev", "test"):
            raise LosslabError(f"split must be 'train', 'dev' or 'test', got {split!r}")

    def logits(self, split: str) -> torch.Tensor | None:
        """(M, N, C) evaluation logits of every model on ``split`` (None if it is absent)."""
        self._check(split)
        return self._logits.get(split)

    def labels(self, split: str) -> torch.Tensor | None:
        """(N,) int64 labels of ``split`` (None if it is absent)."""
        self._check(split)
        pair = self._data.split(split)
        return None if pair is None else pair[1]

    def inputs(self, split: str) -> torch.Tensor | None:
        """(N, ...) inputs of ``split`` (None if it is absent)."""
        self._check(split)
        pair = self._data.split(split)
        return None if pair is None else pair[0]

    def coarse_labels(self, split: str) -> torch.Tensor | None:
        """(N,) int64 super-class labels of ``split`` (e.g. CIFAR-100's 20), or None."""
        self._check(split)
        return self._data.coarse(split)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """(M, N, C) logits of every model on inputs ``x`` (N, ...), through each loss's
        ``predict_logits``, in evaluation mode, without gradient."""
        return self._predict(x)

    def grad_norms(self) -> dict[str, torch.Tensor]:
        """Per layer (module path, e.g. ``"3"``), the (M,) L2 norm of the gradient of the
        last training step (the loss gradient, before weight decay)."""
        if self._grad_norms is None:
            raise LosslabError(
                "grad_norms() needs a measurement with needs_grads = True (and a training "
                "step before it: final measurements see the last evaluation's)"
            )
        return self._grad_norms

    def loss_scales(self) -> list[dict[str, float]]:
        """Per model, the current loss scales (e.g. {"R1": .., "R2": ..}; {} for others)."""
        return self._loss_scales


def check_measurements(measure: Sequence[Measurement]) -> list[Measurement]:
    """The measurements as a list, each checked to have a name, a ``when`` and a call."""
    if isinstance(measure, Measurement):
        measure = [measure]
    out = list(measure)
    for m in out:
        if not isinstance(m, Measurement) or not isinstance(m.name, str):
            raise LosslabError(
                f"measure= takes Measurement objects (name, when, needs_grads, __call__); got {m!r}"
            )
        if m.when not in WHENS:
            raise LosslabError(
                f"measurement {m.name!r}: when must be 'eval' or 'final', got {m.when!r}"
            )
    return out


def collect(measure: Sequence[Measurement], ctx: MeasureContext) -> list[list[tuple]]:
    """Run ``measure`` on ``ctx``: per model, rows ``(step, name, index, value)``."""
    out: list[list[tuple]] = [[] for _ in range(ctx.num_models)]
    for m in measure:
        rows = m(ctx)
        if len(rows) != ctx.num_models:
            raise LosslabError(
                f"measurement {m.name!r} returned {len(rows)} lists of rows for "
                f"{ctx.num_models} models; return one list per model"
            )
        for i, model_rows in enumerate(rows):
            out[i].extend((ctx.step, str(n), str(k), float(v)) for n, k, v in model_rows)
    return out
