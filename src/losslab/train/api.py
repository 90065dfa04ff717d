"""The public front ends of the trainer: :func:`train` (one model, in place) and
:func:`train_many` (M models of one architecture as one batched computation).

Seed: lecture notes 2018 §5-7; Janocha & Czarnecki 2017 §3 (grids of losses x seeds).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Sequence
from typing import Any

from torch import nn

from losslab.errors import LosslabError
from losslab.losses import Loss
from losslab.train.checks import check_start
from losslab.train.config import ModelSpec, TrainConfig, resolve_device
from losslab.train.data import as_train_data
from losslab.train.engine import Progress, Run, build_loss, execute
from losslab.train.losses import as_loss, user_module
from losslab.train.measure import Measurement, check_measurements
from losslab.train.result import TrainResult, describe_data, describe_model, resolved_config


def train(
    model: nn.Module,
    data: Any,
    loss: str | nn.Module = "log",
    config: TrainConfig | None = None,
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    measure: Sequence[Measurement] = (),
    **loss_kwargs: Any,
) -> TrainResult:
    """Train one model in place with the plain per-model loop.

    Args:
        model: any ``nn.Module`` mapping (N, ...) inputs to (N, C) logits; trained in place.
        data: a :class:`losslab.data.Dataset` or an object/dict with ``x_train``,
            ``y_train`` and optionally dev/test arrays (see
            :func:`~losslab.train.data.as_train_data`).
        loss: a loss name of ``losslab.losses`` (default ``"log"``) or a loss module.
            Two-scale losses are attached to ``model`` (R1 = R(alpha^0), R2 = 10 R1) and
            their scales join the optimizer.
        config: the :class:`TrainConfig` (default ``TrainConfig()``); ``config.seed`` sets
            the batch order and dropout masks.
        progress: called with ``{"step", "steps", "models", "last_eval", "elapsed"}`` at
            every evaluation and at most every 0.5 s between them (``last_eval``: the
            metrics of the last evaluation, or None).
        stop: a ``threading.Event``; once set, training stops at the next step boundary,
            evaluates once and the result has ``interrupted=True``.
        measure: measurement hooks (:mod:`losslab.train.measure`), recorded in
            ``result.measurements``.
        **loss_kwargs: keyword arguments of a loss given by name.

    Returns:
        A :class:`TrainResult` (``result.model`` is ``model``).

    Example:
        >>> from losslab.models import mlp
        >>> net = mlp(64, [100], 10, seed=0)
        >>> result = train(net, dataset, "log", TrainConfig(steps=2000, eval_every=500))
        >>> result.final["test_accuracy"]
    """
    config = config or TrainConfig()
    spec = ModelSpec(loss=loss, seed=config.seed, loss_kwargs=loss_kwargs)
    measure = check_measurements(measure)
    device = resolve_device(config.device)
    train_data = as_train_data(data, device, config.torch_dtype)
    check_start([model], train_data, config.checkpoint_path)
    built = build_loss(spec)
    resolved = resolved_config(
        config, spec, built, describe_model(model), describe_data(data, train_data), device
    )
    run = Run([model], [built], [spec], train_data, config, device, "loop", measure)
    return execute(run, [resolved], progress, stop)[0]


def train_many(
    model: Callable[[int], nn.Module],
    specs: Sequence[ModelSpec | tuple | str],
    data: Any,
    config: TrainConfig | None = None,
    *,
    progress: Progress | None = None,
    stop: threading.Event | None = None,
    measure: Sequence[Measurement] = (),
) -> list[TrainResult]:
    """Train M models of one architecture at once, as one batched computation.

    Models with the same seed start from identical weights and see identical batches
    whatever their loss, learning rate or weight decay (common random numbers). All M
    models form ONE stack: per-model learning rates and weight decays are (M, 1, ...)
    tensors of the optimizer step (:mod:`losslab.train.optim`), not separate runs.

    Args:
        model: ``seed -> nn.Module``, e.g. ``lambda s: mlp(2, [200] * 5, 4, seed=s)``; every
            model it returns must have the same architecture.
        specs: M :class:`ModelSpec` s, or ``(loss, seed)`` / ``(loss, seed, hparams)``
            tuples (hparams: a dict of ModelSpec fields) or loss names (seed 0).
        data: as in :func:`train`.
        config: the shared :class:`TrainConfig` (default ``TrainConfig()``); ``engine``
            picks ``"stack"`` (default) or ``"loop"`` (the per-model reference).
        progress, stop, measure: as in :func:`train` (``last_eval`` holds the mean over
            the models still training).

    Returns:
        M :class:`TrainResult` s in the order of ``specs``.

    Example:
        >>> specs = [ModelSpec(loss, seed, lr=lr) for loss in ("log", "hinge")
        ...          for seed in range(5) for lr in (1e-4, 3e-5)]
        >>> results = train_many(lambda s: mlp(2, [200] * 5, 4, seed=s), specs, data,
        ...                      TrainConfig(batch_size=50, steps=60_000))
    """
    config = config or TrainConfig()
    model_specs = [_as_spec(s) for s in specs]
    if not model_specs:
        raise LosslabError("train_many needs at least one ModelSpec")
    if not callable(model):
        raise LosslabError("model must be a callable seed -> nn.Module (e.g. a lambda)")
    measure = check_measurements(measure)
    labels = [s.label for s in model_specs]
    if len(set(labels)) != len(labels):
        for i, s in enumerate(model_specs):
            s.label = f"{s.label}#{i}"
    device = resolve_device(config.device)
    train_data = as_train_data(data, device, config.torch_dtype)
    built = []
    for spec in model_specs:
        net = model(spec.seed)
        if not isinstance(net, nn.Module):
            raise LosslabError(
                f"model({spec.seed}) returned a {type(net).__name__}, not an nn.Module"
            )
        built.append(net)
    check_start(built, train_data, config.checkpoint_path)
    losses = _distinct_losses(model_specs)
    described = describe_model(built[0])
    data_description = describe_data(data, train_data)
    resolved = [
        resolved_config(config, s, loss, described, data_description, device)
        for s, loss in zip(model_specs, losses, strict=True)
    ]
    run = Run(built, losses, model_specs, train_data, config, device, config.engine, measure)
    return execute(run, resolved, progress, stop)


def _as_spec(spec: ModelSpec | tuple | str) -> ModelSpec:
    if isinstance(spec, ModelSpec):
        return copy.copy(spec)
    if isinstance(spec, (str, nn.Module)):
        return ModelSpec(loss=spec)
    if isinstance(spec, tuple) and len(spec) in (2, 3):
        hparams = spec[2] if len(spec) == 3 else {}
        if not isinstance(hparams, dict):
            raise LosslabError(f"the third item of a spec tuple must be a dict, got {hparams!r}")
        try:
            return ModelSpec(loss=spec[0], seed=spec[1], **hparams)
        except TypeError as err:
            raise LosslabError(f"bad hyper-parameters {hparams!r}: {err}") from None
    raise LosslabError(
        f"a model spec must be a ModelSpec, a loss name or a (loss, seed[, hparams]) tuple; "
        f"got {spec!r}"
    )


def _distinct_losses(specs: list[ModelSpec]) -> list[Loss]:
    """One loss module per model; a module object given twice is copied (own state)."""
    seen: set[int] = set()
    out = []
    for spec in specs:
        loss = build_loss(spec)
        if id(user_module(loss)) in seen:
            loss = as_loss(copy.deepcopy(user_module(loss)))
        seen.add(id(user_module(loss)))
        out.append(loss)
    return out
