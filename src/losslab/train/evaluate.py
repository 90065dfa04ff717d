"""Evaluation of M models on the full splits, chunk by chunk (update / compute).

Accuracy and loss are accumulated over chunks of ``eval_batch_size`` samples
(torchmetrics' habit: :meth:`SplitMetrics.update` per chunk, :meth:`SplitMetrics.compute`
once), so memory stays O(M x chunk x C) whatever the split size. When measurements need
the logits, the chunks' prediction logits are kept and concatenated to (M, N, C).

Seed: lecture notes 2018, section 5 (train / dev / test evaluation); Janocha &
Czarnecki 2017, section 3 (train and test curves of every loss).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from losslab.train.data import TrainData
from losslab.train.losses import LossPlan

SPLITS = ("train", "dev", "test")


class SplitMetrics:
    """Accuracy and mean loss of M models over one split, accumulated per chunk.

    Args:
        num_models: M.
        device, dtype: of the accumulators.
    """

    def __init__(self, num_models: int, device: torch.device, dtype: torch.dtype):
        self.correct = torch.zeros(num_models, device=device, dtype=dtype)
        self.loss = torch.zeros_like(self.correct)
        self.count = 0

    def update(self, predicted: torch.Tensor, labels: torch.Tensor, losses: torch.Tensor) -> None:
        """Add a chunk: prediction logits (M, n, C), labels (n,), mean losses (M,)."""
        n = labels.shape[0]
        self.correct += (predicted.argmax(-1) == labels).sum(-1).to(self.correct.dtype)
        self.loss += losses.detach() * n
        self.count += n

    def compute(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(accuracy (M,), mean loss (M,)) over every chunk so far."""
        return self.correct / self.count, self.loss / self.count


class Evaluator:
    """Evaluates the models of a run on the train / dev / test splits.

    Args:
        data: the splits.
        eval_train: evaluate the (full) training split too.
        chunk: samples per forward pass.
    """

    def __init__(self, data: TrainData, eval_train: bool, chunk: int):
        self.data, self.eval_train, self.chunk = data, eval_train, chunk

    def splits(self) -> list[str]:
        """The splits evaluated (present, and train only with ``eval_train``)."""
        return [
            s
            for s in SPLITS
            if self.data.split(s) is not None and (s != "train" or self.eval_train)
        ]

    @torch.no_grad()
    def __call__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        plan: LossPlan,
        scales: torch.Tensor | None,
        num_models: int,
        keep_logits: bool,
    ) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict[str, torch.Tensor]]:
        """Evaluate every split.

        Args:
            forward: ``x (n, ...) -> logits (M, n, C)`` of the models in evaluation mode.
            plan: the per-model losses.
            scales: (M,) parameter scales R (for losses that require them), or None.
            num_models: M.
            keep_logits: also return the prediction logits (M, N, C) of every split.

        Returns:
            ``{split: (accuracy (M,), loss (M,))}`` for every split (NaN for absent ones)
            and ``{split: logits}`` (empty unless ``keep_logits``).
        """
        x0 = self.data.x_train
        nan = torch.full((num_models,), math.nan, device=x0.device, dtype=x0.dtype)
        metrics = {s: (nan, nan) for s in SPLITS}
        logits_out: dict[str, torch.Tensor] = {}
        for split in self.splits():
            pair = self.data.split(split)
            assert pair is not None  # splits() lists the present ones
            x, y = pair
            acc = SplitMetrics(num_models, x.device, x.dtype)
            kept = []
            for start in range(0, x.shape[0], self.chunk):
                xc, yc = x[start : start + self.chunk], y[start : start + self.chunk]
                logits = forward(xc)
                predicted = plan.predict(logits, scales)
                acc.update(predicted, yc, plan(logits, yc, scales))
                if keep_logits:
                    kept.append(predicted)
            metrics[split] = acc.compute()
            if keep_logits:
                logits_out[split] = torch.cat(kept, dim=1)
        return metrics, logits_out
