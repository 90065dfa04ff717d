"""Per-model bookkeeping of a run: divergence, early stopping, best weights, curves.

Divergence: a model diverges when its training-batch loss turns NaN/inf or grows beyond
:data:`DIVERGENCE_FACTOR` times max(|its first batch loss|, 1); the check runs on the
device every step (no host synchronisation). Early stopping follows the lecture notes
2018, section 5: stop a model after ``patience`` evaluations without a dev improvement
and keep the weights (and loss scales) of its best evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from losslab.train.config import TrainConfig

# A loss this many times its first value (at least 1) counts as diverged: no
# classification loss of a sane run grows by six orders of magnitude, while a run that
# blows up passes such a bound steps before it overflows to inf.
DIVERGENCE_FACTOR = 1e6


class Tracker:
    """Which of the M models still train, and the history of each.

    Args:
        num_models: M.
        config: ``patience``, ``monitor`` and ``steps``.
        device, dtype: of the per-step flags.
    """

    def __init__(
        self, num_models: int, config: TrainConfig, device: torch.device, dtype: torch.dtype
    ):
        self.m, self.config, self.device = num_models, config, device
        self.alive = torch.ones(num_models, dtype=torch.bool, device=device)
        self.running = torch.ones(num_models, dtype=torch.bool, device=device)
        self.death = torch.full((num_models,), -1, dtype=torch.long, device=device)
        self.bound = torch.full((num_models,), math.inf, dtype=dtype, device=device)
        self.records: list[list[dict[str, float]]] = [[] for _ in range(num_models)]
        self.diverged_at: list[int | None] = [None] * num_models
        self.stopped_at: list[int | None] = [None] * num_models
        self.best_value = [math.nan] * num_models
        self.best_step: list[int | None] = [None] * num_models
        self.waits = [0] * num_models
        self.best_tensors: list[torch.Tensor] | None = None
        # Trainable loss scales (R1, R2, R_s) belong to the best state as much as weights.
        self.best_losses: list[dict[str, torch.Tensor] | None] = [None] * num_models

    def observe(self, step: int, values: torch.Tensor) -> torch.Tensor:
        """Flag models whose batch loss ``values`` (M,) of step ``step`` (0-based) diverged.

        Returns:
            (M,) bool: the models whose gradients this step are used.
        """
        detached = values.detach()
        if step == 0:
            self.bound = DIVERGENCE_FACTOR * detached.abs().clamp(min=1.0)
        finite = torch.isfinite(detached) & (detached.abs() <= self.bound)
        self.death.masked_fill_(self.alive & ~finite, step + 1)
        self.alive &= finite
        return self.alive & self.running

    def any_active(self) -> bool:
        """Some model still trains (one host synchronisation)."""
        return bool((self.alive & self.running).any())

    def update(self, step: int, rows: list[dict[str, float]], present: Sequence[str]) -> list[bool]:
        """Record evaluation ``rows`` (one per model) of step ``step``.

        Args:
            rows: the curve values of every model at this evaluation.
            present: the loss keys a live model must have finite.

        Returns:
            Per model, whether this evaluation is its best so far (early stopping only).
        """
        alive = self.alive.tolist()
        death = self.death.tolist()
        improved = []
        for i, row in enumerate(rows):
            if self.diverged_at[i] is not None or self.stopped_at[i] is not None:
                improved.append(False)
                continue
            if not alive[i] or not all(math.isfinite(row[k]) for k in present):
                self.diverged_at[i] = death[i] if death[i] > 0 else step
                improved.append(False)
                continue
            self.records[i].append(row)
            improved.append(self._early_stopping(i, step, row))
        dead = [d is not None for d in self.diverged_at]
        if any(dead) or self.config.patience is not None:
            stopped = [s is not None for s in self.stopped_at]
            self.alive &= ~torch.tensor(dead, device=self.device)
            self.running &= ~torch.tensor(stopped, device=self.device)
        return improved

    def _early_stopping(self, i: int, step: int, row: dict[str, float]) -> bool:
        if self.config.patience is None:
            return False
        value = row[self.config.monitor]
        sign = 1.0 if self.config.monitor == "dev_accuracy" else -1.0
        if math.isnan(self.best_value[i]) or sign * (value - self.best_value[i]) > 0:
            self.best_value[i], self.best_step[i], self.waits[i] = value, step, 0
            return True
        self.waits[i] += 1
        if self.waits[i] >= self.config.patience:
            self.stopped_at[i] = step
        return False

    def snapshot(
        self, improved: list[bool], tensors: Sequence[torch.Tensor], losses: Sequence[nn.Module]
    ) -> None:
        """Keep the current weights ``tensors`` (M, ...) and loss state of improved models."""
        if not any(improved):
            return
        for i, better in enumerate(improved):
            if better:
                state = losses[i].state_dict()
                self.best_losses[i] = {k: v.detach().clone() for k, v in state.items()}
        if self.best_tensors is None:
            self.best_tensors = [t.detach().clone() for t in tensors]
            return
        mask = torch.tensor(improved, device=self.device)
        for best, t in zip(self.best_tensors, tensors, strict=True):
            keep = mask.view(-1, *([1] * (t.dim() - 1)))
            best.copy_(torch.where(keep, t.detach(), best))

    def state_dict(self) -> dict[str, Any]:
        """Everything above, on the CPU."""
        return {
            "alive": self.alive.cpu(),
            "running": self.running.cpu(),
            "death": self.death.cpu(),
            "bound": self.bound.cpu(),
            "records": self.records,
            "diverged_at": self.diverged_at,
            "stopped_at": self.stopped_at,
            "best_value": self.best_value,
            "best_step": self.best_step,
            "waits": self.waits,
            "best_tensors": None
            if self.best_tensors is None
            else [t.cpu() for t in self.best_tensors],
            "best_losses": [
                None if b is None else {k: v.cpu() for k, v in b.items()} for b in self.best_losses
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.alive = state["alive"].to(self.device)
        self.running = state["running"].to(self.device)
        self.death = state["death"].to(self.device)
        self.bound = state["bound"].to(self.device)
        self.records = state["records"]
        self.diverged_at, self.stopped_at = state["diverged_at"], state["stopped_at"]
        self.best_value, self.best_step = state["best_value"], state["best_step"]
        self.waits = state["waits"]
        best = state["best_tensors"]
        self.best_tensors = None if best is None else [t.to(self.device) for t in best]
        self.best_losses = state["best_losses"]
