"""What training one model gives: :class:`TrainResult`, its JSON, and the resolved
configuration it records (``TrainResult.config``).

Seed: Janocha & Czarnecki 2017 §3 (learning curves of every loss x seed); lecture notes
2018 §6.1 (train / dev / test metrics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from losslab.losses import Loss
from losslab.provenance import jsonable, versions
from losslab.train.config import ModelSpec, TrainConfig
from losslab.train.data import TrainData
from losslab.train.evaluate import SPLITS
from losslab.train.losses import user_module

CURVE_KEYS = (
    "step",
    "lr",
    "train_batch_accuracy",
    "train_batch_loss",
    "train_accuracy",
    "train_loss",
    "dev_accuracy",
    "dev_loss",
    "test_accuracy",
    "test_loss",
)
RESULT_SCHEMA = 1

@dataclass
class TrainResult:
    """The outcome of training one model.

    Attributes:
        label: the model's name (from its :class:`ModelSpec`).
        spec: the spec it was trained with.
        curves: learning curves, one list per key of :data:`CURVE_KEYS` (step, lr,
            train-batch / train / dev / test accuracy and loss), one entry per evaluation;
            a split that is absent (or ``eval_train=False``) has NaN entries.
        final: the metrics of the final evaluation (or, with early stopping, of the best
            one; for a diverged model, of the last one before it diverged), same keys.
        diverged: its loss became NaN/inf or exceeded ``DIVERGENCE_FACTOR`` (1e6) times
            max(|its first batch loss|, 1); ``diverged_at`` is that step.
        stopped_early: early stopping ended it before ``steps``; ``best_step`` is the
            step whose weights it holds when early stopping is on.
        interrupted: the run was stopped by the caller (``stop`` event, Ctrl-C) before
            ``steps``; the result holds what was trained until then.
        steps_run: optimizer steps it took.
        seconds: wall time of the whole run it was part of (training and evaluations,
            summed over resumed sessions; data loading and set-up excluded).
        measurements: rows ``(step, name, index, value)`` of the measurement hooks
            (:mod:`losslab.train.measure`).
        config: the fully resolved configuration that produced it (TrainConfig fields
            with this model's lr, weight decay and seed, the loss and its kwargs, the
            model and data when known, the versions of losslab / torch / numpy).
        model: the trained model (evaluation mode); ``loss``: its loss module (two-scale
            losses hold the trained scales and are attached to ``model``).
    """

    label: str
    spec: ModelSpec
    curves: dict[str, list[float]]
    final: dict[str, float]
    diverged: bool = False
    diverged_at: int | None = None
    stopped_early: bool = False
    best_step: int | None = None
    interrupted: bool = False
    steps_run: int = 0
    seconds: float = 0.0
    measurements: list[tuple[int, str, str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    model: nn.Module | None = field(default=None, repr=False)
    loss: nn.Module | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able record (NaN -> None), without the model and loss modules.

        Keys: ``schema`` (:data:`RESULT_SCHEMA`), ``label``, ``loss``, ``seed``,
        ``config``, ``final``, ``curves``, ``measurements`` (lists ``[step, name, index,
        value]``), ``diverged``, ``diverged_at``, ``stopped_early``, ``best_step``,
        ``interrupted``, ``steps_run``, ``seconds``.
        """
        return {
            "schema": RESULT_SCHEMA,
            "label": self.label,
            "loss": self.spec.loss_name,
            "seed": self.spec.seed,
            "config": self.config,
            "final": {k: finite_or_none(v) for k, v in self.final.items()},
            "curves": {k: [finite_or_none(v) for v in vs] for k, vs in self.curves.items()},
            "measurements": [[s, n, k, finite_or_none(v)] for s, n, k, v in self.measurements],
            "diverged": self.diverged,
            "diverged_at": self.diverged_at,
            "stopped_early": self.stopped_early,
            "best_step": self.best_step,
            "interrupted": self.interrupted,
            "steps_run": self.steps_run,
            "seconds": self.seconds,
        }


def finite_or_none(v: Any) -> Any:
    """``v``, or None where it is a float that is not finite (JSON has no NaN)."""
    return None if isinstance(v, float) and not math.isfinite(v) else v


def finite_mean(values: list[float]) -> float:
    """Mean of the finite values (NaN when there are none: an absent split)."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


_strict_json = partial(jsonable, finite=True)  # a stored result is strict JSON


def describe_model(model: nn.Module) -> dict[str, Any]:
    """The model as ``TrainResult.config["model"]`` records it."""
    return {
        "class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "repr": repr(model),
    }


def describe_data(data: Any, train_data: TrainData) -> dict[str, Any]:
    """The data as ``TrainResult.config["data"]`` records it: classes, shapes, split sizes."""
    out: dict[str, Any] = {
        "num_classes": train_data.num_classes,
        "sample_shape": list(train_data.x_train.shape[1:]),
    }
    for split in SPLITS:
        pair = train_data.split(split)
        out[f"n_{split}"] = 0 if pair is None else int(pair[0].shape[0])
    for key in ("name", "metadata"):
        value = data.get(key) if isinstance(data, dict) else getattr(data, key, None)
        if value is not None:
            out[key] = _strict_json(value)
    return out


def resolved_config(
    config: TrainConfig,
    spec: ModelSpec,
    loss: Loss,
    model: dict[str, Any],
    data: dict[str, Any],
    device: torch.device,
) -> dict[str, Any]:
    """The fully resolved configuration of one model (``TrainResult.config``)."""
    lr = config.lr if spec.lr is None else spec.lr
    wd = config.weight_decay if spec.weight_decay is None else spec.weight_decay
    train_fields = {**config.to_dict(), "lr": lr, "weight_decay": wd, "seed": spec.seed}
    train_fields["batch_size_used"] = min(config.batch_size, data["n_train"])
    train_fields["device"] = str(device)
    return {
        "train": _strict_json(train_fields),
        "loss": {
            "name": spec.loss_name,
            "kwargs": _strict_json(spec.loss_kwargs),
            "repr": repr(user_module(loss)),
        },
        "seed": spec.seed,
        "lr": lr,
        "weight_decay": wd,
        "model": model,
        "data": data,
        "versions": versions(),
    }
