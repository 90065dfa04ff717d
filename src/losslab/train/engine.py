"""The training loop: one model (:func:`train`) or M models at once (:func:`train_many`).

One optimizer step of M models:

.. math::
    L = \\sum_{m \\text{ active}} \\frac{1}{N} \\sum_{i=1}^{N} \\ell_m(o_{m,i}, y_{m,i})

Each model's loss depends only on its own parameters and logits, so the gradient of the
sum with respect to model m's parameters is the gradient of its own mean loss: the M
models train exactly as M separate runs would (tested to float tolerance), but as one
batched computation, each with its own learning rate and weight decay. A model whose loss
turns NaN/inf, or grows beyond :data:`~losslab.train.tracker.DIVERGENCE_FACTOR` times
its first value, drops out of the sum at that very step (no host synchronisation on CUDA)
and its gradients are zeroed from then on; it is reported as diverged at the next
evaluation and never disturbs its siblings. An early-stopped model is masked the same
way. Masked models still ride along in the batched forward pass; with zero gradients SGD
leaves them unchanged while Adam/momentum let their last velocity decay, so results never
use those weights: a diverged model keeps the metrics of its last finite evaluation,
early stopping restores each model's best weights.

A run is made of small parts, each owning its state (``state_dict`` /
``load_state_dict``, as ``torch.optim`` does): the backend (:mod:`~losslab.train.backends`,
the stack or the loop), the optimizer (:mod:`~losslab.train.optim`), the batch order
(:mod:`~losslab.train.data`), the per-model tracker (:mod:`~losslab.train.tracker`),
the evaluator (:mod:`~losslab.train.evaluate`) and the checkpoint, their combination.

Hot path: batches are slices of a per-seed permutation of device-resident data, models
with the same kind of loss are stacked next to each other and their losses computed in
one call, Adam/SGD are fused, and the host waits for the device only at evaluations
(every ``eval_every`` steps).

Seed: lecture notes 2018 §5-7 (mini-batches, optimizers, L2, lr decay, early stopping,
train/dev/test); Janocha & Czarnecki 2017 §3 (grids of losses x seeds, learning curves).
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn

from losslab.errors import LosslabError
from losslab.losses import LOSSES, Loss, get_loss, skip_finite_check, skip_label_check
from losslab.provenance import jsonable, versions
from losslab.registry import resolve
from losslab.train.backends import LoopBackend, StackBackend
from losslab.train.checks import check_start
from losslab.train.config import ModelSpec, TrainConfig, resolve_device
from losslab.train.data import BatchOrder, TrainData, as_train_data
from losslab.train.evaluate import SPLITS, Evaluator
from losslab.train.losses import LossPlan, as_loss, loss_scales, plan_order, user_module
from losslab.train.measure import MeasureContext, Measurement, check_measurements, collect
from losslab.train.optim import Param, StackOptimizer
from losslab.train.tracker import Tracker

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
_CHECKPOINT_VERSION = 2
# Between evaluations, progress is reported at most this often (seconds).
_PROGRESS_INTERVAL = 0.5

Progress = Callable[[dict[str, Any]], None]


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
            "final": {k: _clean(v) for k, v in self.final.items()},
            "curves": {k: [_clean(v) for v in vs] for k, vs in self.curves.items()},
            "measurements": [[s, n, k, _clean(v)] for s, n, k, v in self.measurements],
            "diverged": self.diverged,
            "diverged_at": self.diverged_at,
            "stopped_early": self.stopped_early,
            "best_step": self.best_step,
            "interrupted": self.interrupted,
            "steps_run": self.steps_run,
            "seconds": self.seconds,
        }


def _clean(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


def _mean(values: list[float]) -> float:
    """Mean of the finite values (NaN when there are none: an absent split)."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


_jsonable = partial(jsonable, finite=True)  # a stored result is strict JSON


def _describe_model(model: nn.Module) -> dict[str, Any]:
    return {
        "class": type(model).__name__,
        "parameters": sum(p.numel() for p in model.parameters()),
        "repr": repr(model),
    }


def _describe_data(data: Any, train_data: TrainData) -> dict[str, Any]:
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
            out[key] = _jsonable(value)
    return out


def _build_loss(spec: ModelSpec) -> Loss:
    if isinstance(spec.loss, nn.Module):
        return as_loss(spec.loss)
    return get_loss(spec.loss, **spec.loss_kwargs)


def _loss_key(spec: ModelSpec, loss: nn.Module) -> object:
    if isinstance(spec.loss, nn.Module):
        return id(loss)
    return (resolve(LOSSES, spec.loss, "loss")[0], repr(sorted(spec.loss_kwargs.items())))


class Checkpoint:
    """A run's complete state: the state dicts of its parts, written atomically.

    Args:
        path: the file.
        parts: name -> an object with ``state_dict()`` / ``load_state_dict()``.
        settings: what a resumed run must share with the run that wrote the file (a
            mismatch is refused, never silently mixed).
    """

    def __init__(self, path: str, parts: dict[str, Any], settings: dict[str, str]):
        self.path, self.parts, self.settings = path, parts, settings

    def save(self) -> None:
        """Write every part's state to ``path`` (a crash never leaves half a file)."""
        state = {
            "version": _CHECKPOINT_VERSION,
            "settings": self.settings,
            "parts": {name: part.state_dict() for name, part in self.parts.items()},
        }
        # Serialised in memory first: a full disk then raises OSError (ENOSPC) from the
        # plain write below, where torch.save would give an opaque RuntimeError.
        buffer = io.BytesIO()
        torch.save(state, buffer)
        tmp = f"{self.path}.tmp"
        try:
            with open(tmp, "wb") as file:
                file.write(buffer.getbuffer())
        except OSError:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
        os.replace(tmp, self.path)

    def load(self) -> None:
        """Restore every part from ``path``; refuse a file written by another run."""
        path = self.path
        try:
            # On the CPU: generator states must stay CPU tensors; the parts copy the rest.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # any unreadable or foreign file is a user error here
            # torch's message advises weights_only=False, i.e. running the file's code:
            # never repeat that; say what was refused instead.
            if isinstance(err, pickle.UnpicklingError) or "weights_only" in str(err):
                reason = "it holds objects other than tensors and plain data; nothing was run"
            else:
                reason = " ".join(str(err).split())[:200] or type(err).__name__
            raise LosslabError(
                f"cannot read checkpoint {path!r} ({reason}); delete it or use another "
                "checkpoint_path"
            ) from None
        if not isinstance(state, dict) or state.get("version") != _CHECKPOINT_VERSION:
            raise LosslabError(
                f"{path!r} is not a training checkpoint of this losslab version; delete it or "
                "use another checkpoint_path"
            )
        theirs = state["settings"]
        changed = sorted(
            k for k in self.settings.keys() | theirs.keys() if self.settings.get(k) != theirs.get(k)
        )
        if changed:
            detail = "; ".join(f"{k}: {theirs.get(k)} -> {self.settings.get(k)}" for k in changed)
            raise LosslabError(
                f"checkpoint {path!r} was written for other models or settings ({detail}); resume "
                "with the same settings, or delete it / use another checkpoint_path for a new run"
            )
        try:
            for name, part in self.parts.items():
                part.load_state_dict(state["parts"][name])
        except (KeyError, RuntimeError, ValueError) as err:
            # Same settings, other architecture or loss: the tensors do not fit.
            reason = " ".join(str(err).split())[:240]
            raise LosslabError(
                f"checkpoint {path!r} was written for other models or settings (another "
                f"architecture, engine or loss: {reason}); delete it or use another "
                "checkpoint_path"
            ) from None


class _Clock:
    """Steps taken, training seconds and measurement rows: the run's own small state."""

    def __init__(self, num_models: int):
        self.step = 0
        self.seconds = 0.0
        self.measurements: list[list[tuple]] = [[] for _ in range(num_models)]

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "seconds": self.seconds, "measurements": self.measurements}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.seconds = state["step"], state["seconds"]
        self.measurements = [[tuple(r) for r in rows] for rows in state["measurements"]]


class _Run:
    """M models of one architecture trained together (each its own loss, seed, lr, wd)."""

    def __init__(
        self,
        models: list[nn.Module],
        losses: list[Loss],
        specs: list[ModelSpec],
        data: TrainData,
        config: TrainConfig,
        device: torch.device,
        engine: str,
        measure: list[Measurement],
    ):
        if config.patience is not None and data.x_dev is None:
            raise LosslabError(
                "early stopping (patience) needs a dev set: load the data with dev_fraction > 0 "
                "or pass x_dev/y_dev"
            )
        keys = [_loss_key(s, loss) for s, loss in zip(specs, losses, strict=True)]
        # Models are stacked in the plan's order (same-kind losses adjacent) and the
        # results are put back in the caller's order.
        self.model_order = plan_order(losses, keys)
        models = [models[i] for i in self.model_order]
        losses = [losses[i] for i in self.model_order]
        self.specs = [specs[i] for i in self.model_order]
        keys = [keys[i] for i in self.model_order]
        self.config, self.data, self.device = config, data, device
        self.m = len(models)
        dtype = config.torch_dtype
        model_seeds = [s.seed for s in self.specs]
        if engine == "stack":
            self.backend: StackBackend | LoopBackend = StackBackend(
                models, device, dtype, model_seeds
            )
        else:
            self.backend = LoopBackend(models, device, dtype, model_seeds)
        self.losses = nn.ModuleList([loss.to(device=device, dtype=dtype) for loss in losses])
        self.plan = LossPlan(list(self.losses), keys)
        self._attach_scales()
        params = self.backend.param_entries(decay_all=config.decay == "all")
        seen: set[int] = set()
        for i, loss in enumerate(self.losses):
            for p in loss.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    params.append(Param(p, i, decayed=False, scale=True))
        self.lrs = [config.lr if s.lr is None else s.lr for s in self.specs]
        self.weight_decays = [
            config.weight_decay if s.weight_decay is None else s.weight_decay for s in self.specs
        ]
        self.optimizer = StackOptimizer(config, params, self.lrs, self.weight_decays, device, dtype)
        seeds = sorted({s.seed for s in self.specs})
        self.seed_rows = torch.tensor([seeds.index(s.seed) for s in self.specs], device=device)
        self.shared = len(seeds) == 1
        self.order = BatchOrder(
            seeds, data.x_train.shape[0], config.batch_size, config.shuffle, device
        )
        self.tracker = Tracker(self.m, config, device, dtype)
        self.evaluator = Evaluator(data, config.eval_train, config.eval_batch_size)
        self.clock = _Clock(self.m)
        self.measure = measure
        self.grad_norms: dict[str, torch.Tensor] | None = None
        self.interrupted = False
        self.last_eval: dict[str, float] | None = None
        self.always_mask = device.type != "cpu"
        self.checkpoint = (
            Checkpoint(
                config.checkpoint_path,
                {
                    "clock": self.clock,
                    "backend": self.backend,
                    "losses": self.losses,
                    "optimizer": self.optimizer,
                    "order": self.order,
                    "tracker": self.tracker,
                },
                self.settings(),
            )
            if config.checkpoint_path
            else None
        )

    def _attach_scales(self) -> None:
        """Initialise the losses that use the model's scale (two-scale: R1 = R(alpha^0),
        R2 = 10 R1) from each model's R; the trainer then passes R to every call."""
        if not self.plan.needs_scale:
            return
        with torch.no_grad():
            r0 = self.backend.scales().tolist()
        for i, loss in enumerate(self.losses):
            if self.plan.scaled[i]:
                loss.attach(r0[i])

    def settings(self) -> dict[str, str]:
        """What a resumed run must share with the run that wrote the checkpoint.

        ``steps`` (a resume usually extends the run), evaluation cadence, patience, device and
        the checkpoint path itself may change; anything else would silently mix two runs.
        """
        free = {"steps", "eval_every", "patience", "device", "checkpoint_path", "checkpoint_every",
                "checkpoint_seconds"}
        out = {k: repr(v) for k, v in self.config.to_dict().items() if k not in free}
        out["labels"] = repr([s.label for s in self.specs])
        out["engine"] = type(self.backend).__name__
        for i, spec in enumerate(self.specs):
            out[f"model {i}"] = repr(
                (spec.loss_name, spec.seed, spec.loss_kwargs, spec.lr, spec.weight_decay)
            )
        return out

    # ----------------------------------------------------------------- training loop
    def run(self, progress: Progress | None, stop: threading.Event | None) -> None:
        cfg, clock, tracker = self.config, self.clock, self.tracker
        per_epoch = self.order.steps_per_epoch
        start_time = time.perf_counter() - clock.seconds
        next_report = time.perf_counter() + _PROGRESS_INTERVAL
        x, y = self.data.x_train, self.data.y_train
        checkpoint_every = cfg.checkpoint_every or cfg.eval_every
        next_save = (math.inf if cfg.checkpoint_seconds is None
                     else time.perf_counter() + cfg.checkpoint_seconds)
        keep_grads = any(m.needs_grads for m in self.measure)
        while clock.step < cfg.steps:
            epoch = clock.step // per_epoch
            if epoch != self.optimizer.epoch:
                self.optimizer.set_epoch(epoch)
            rows = self.order.indices(clock.step)
            index = rows[0] if self.shared else rows.index_select(0, self.seed_rows)
            xb, yb = x[index], y[index]
            logits = self.backend.forward(xb, shared=self.shared)
            scales = self.backend.scales() if self.plan.needs_scale else None
            values = self.plan(logits, yb, scales)
            active = tracker.observe(clock.step, values)
            total = torch.where(active, values, 0.0).sum()
            self.optimizer.zero_grad()
            total.backward()
            # On CPU reading the flags costs nothing and skips a pass over every gradient;
            # on CUDA it would be a sync per step, so the mask is applied unconditionally.
            if self.always_mask or not bool(active.all()):
                self.backend.mask_grads(~active)
            clock.step += 1
            stopping = stop is not None and stop.is_set()
            due = clock.step % cfg.eval_every == 0 or clock.step == cfg.steps or stopping
            if due and keep_grads:
                self.grad_norms = self.backend.grad_norms()
            self.optimizer.step()
            if due:
                batch_acc = (logits.detach().argmax(-1) == yb).to(values.dtype).mean(-1)
                self._evaluate(batch_acc, values.detach())
                self.interrupted = stopping and clock.step < cfg.steps
            clock.seconds = time.perf_counter() - start_time
            if self.checkpoint and (
                clock.step % checkpoint_every == 0 or clock.step == cfg.steps or stopping
                or time.perf_counter() >= next_save
            ):
                self.checkpoint.save()
                if cfg.checkpoint_seconds is not None:
                    next_save = time.perf_counter() + cfg.checkpoint_seconds
            if progress is not None and (due or time.perf_counter() >= next_report):
                next_report = time.perf_counter() + _PROGRESS_INTERVAL
                progress(self._progress_info(clock.seconds))
            if stopping or (due and not tracker.any_active()):
                break

    def _progress_info(self, elapsed: float) -> dict[str, Any]:
        return {
            "step": self.clock.step,
            "steps": self.config.steps,
            "models": self.m,
            "last_eval": self.last_eval,
            "elapsed": elapsed,
        }

    def _forward_eval(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend.forward(x, shared=True)

    @torch.no_grad()
    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        """Prediction logits (M, N, C) of every model on ``x`` (N, ...), evaluation mode."""
        was_training = self.backend.training
        self.backend.train(False)
        try:
            x = torch.as_tensor(x).to(device=self.device, dtype=self.config.torch_dtype)
            scales = self.backend.scales() if self.plan.needs_scale else None
            return self.plan.predict(self.backend.forward(x, shared=True), scales)
        finally:
            self.backend.train(was_training)

    def _measure(self, measure: list[Measurement], logits: dict[str, torch.Tensor]) -> list:
        ctx = MeasureContext(
            step=self.clock.step,
            models=[s.label for s in self.specs],
            data=self.data,
            logits=logits,
            predict=self._predict,
            grad_norms=self.grad_norms,
            loss_scales=[loss_scales(loss) for loss in self.losses],
        )
        return collect(measure, ctx)

    def _evaluate(self, batch_acc: torch.Tensor, batch_loss: torch.Tensor) -> None:
        step = self.clock.step
        measure = [m for m in self.measure if m.when == "eval"]
        self.backend.train(False)
        with torch.no_grad():
            scales = self.backend.scales() if self.plan.needs_scale else None
        metrics, logits = self.evaluator(
            self._forward_eval, self.plan, scales, self.m, keep_logits=bool(measure)
        )
        columns = [batch_acc, batch_loss]
        for split in SPLITS:
            columns.extend(metrics[split])
        table = torch.stack([c.to(batch_loss.dtype) for c in columns]).tolist()
        rows = [
            dict(
                zip(
                    CURVE_KEYS,
                    [float(step), float(self.optimizer.lrs[i]), *(c[i] for c in table)],
                    strict=True,
                )
            )
            for i in range(self.m)
        ]
        present = [f"{s}_loss" for s in self.evaluator.splits()]
        improved = self.tracker.update(step, rows, present)
        live = [bool(r) and r[-1] is row for r, row in zip(self.tracker.records, rows, strict=True)]
        if self.config.patience is not None:
            self.tracker.snapshot(improved, self.backend.tensors(), self.losses)
        if measure:
            for i, model_rows in enumerate(self._measure(measure, logits)):
                if live[i]:
                    self.clock.measurements[i].extend(model_rows)
        self.backend.train(True)
        kept = [row for row, ok in zip(rows, live, strict=True) if ok]
        self.last_eval = {k: _mean([r[k] for r in kept]) for k in CURVE_KEYS[2:]} if kept else None

    # ----------------------------------------------------------------- results
    def results(self, resolved: list[dict[str, Any]]) -> list[TrainResult]:
        """One result per model in the caller's order; ``resolved``: their configurations."""
        tracker = self.tracker
        if tracker.best_tensors is not None:
            self.backend.set_tensors(tracker.best_tensors)
        for i, best in enumerate(tracker.best_losses):
            if best is not None:
                self.losses[i].load_state_dict(best)
        final_measure = [m for m in self.measure if m.when == "final"]
        if final_measure:
            self.backend.train(False)
            with torch.no_grad():
                scales = self.backend.scales() if self.plan.needs_scale else None
            _, logits = self.evaluator(
                self._forward_eval, self.plan, scales, self.m, keep_logits=True
            )
            for i, rows in enumerate(self._measure(final_measure, logits)):
                if tracker.diverged_at[i] is None:
                    self.clock.measurements[i].extend(rows)
        models = self.backend.models()
        out: list[TrainResult] = []
        for i, spec in enumerate(self.specs):
            loss = self.losses[i].attach(models[i])
            records = tracker.records[i]
            curves = {k: [r[k] for r in records] for k in CURVE_KEYS}
            final = dict(records[-1]) if records else {k: math.nan for k in CURVE_KEYS}
            if tracker.best_step[i] is not None:
                final = next(r for r in records if r["step"] == tracker.best_step[i])
            diverged = tracker.diverged_at[i] is not None
            stop = tracker.stopped_at[i]
            steps_run = tracker.diverged_at[i] if diverged else (stop or self.clock.step)
            out.append(
                TrainResult(
                    label=spec.label,
                    spec=spec,
                    curves=curves,
                    final=final,
                    diverged=diverged,
                    diverged_at=tracker.diverged_at[i],
                    stopped_early=stop is not None and stop < self.config.steps,
                    best_step=tracker.best_step[i],
                    interrupted=self.interrupted and not diverged and stop is None,
                    steps_run=steps_run,
                    seconds=self.clock.seconds,
                    measurements=list(self.clock.measurements[i]),
                    config=resolved[self.model_order[i]],
                    model=models[i],
                    loss=user_module(loss),
                )
            )
        placed: list[TrainResult] = [None] * self.m  # type: ignore[list-item]
        for position, result in zip(self.model_order, out, strict=True):
            placed[position] = result
        return placed


def _execute(
    run: _Run,
    resolved: list[dict[str, Any]],
    progress: Progress | None,
    stop: threading.Event | None,
) -> list[TrainResult]:
    if stop is not None and not isinstance(stop, threading.Event):
        raise LosslabError(f"stop must be a threading.Event, got {type(stop).__name__}")
    if progress is not None and not callable(progress):
        raise LosslabError(f"progress must be a callable taking a dict, got {progress!r}")
    path = run.config.checkpoint_path
    if run.checkpoint and run.config.resume and path and os.path.exists(path):
        run.checkpoint.load()
    # Divergence is the trainer's to detect (it masks the model), and every label was
    # checked against the models' class count before the run (train.data, train.checks):
    # the losses keep their shape checks but skip those two per call.
    with skip_finite_check(), skip_label_check():
        run.run(progress, stop)
        return run.results(resolved)


def _resolve(
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
        "train": _jsonable(train_fields),
        "loss": {
            "name": spec.loss_name,
            "kwargs": _jsonable(spec.loss_kwargs),
            "repr": repr(user_module(loss)),
        },
        "seed": spec.seed,
        "lr": lr,
        "weight_decay": wd,
        "model": model,
        "data": data,
        "versions": versions(),
    }


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
    built = _build_loss(spec)
    resolved = _resolve(
        config, spec, built, _describe_model(model), _describe_data(data, train_data), device
    )
    run = _Run([model], [built], [spec], train_data, config, device, "loop", measure)
    return _execute(run, [resolved], progress, stop)[0]


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
    specs = [_as_spec(s) for s in specs]
    if not specs:
        raise LosslabError("train_many needs at least one ModelSpec")
    if not callable(model):
        raise LosslabError("model must be a callable seed -> nn.Module (e.g. a lambda)")
    measure = check_measurements(measure)
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        for i, s in enumerate(specs):
            s.label = f"{s.label}#{i}"
    device = resolve_device(config.device)
    train_data = as_train_data(data, device, config.torch_dtype)
    built = []
    for spec in specs:
        net = model(spec.seed)
        if not isinstance(net, nn.Module):
            raise LosslabError(
                f"model({spec.seed}) returned a {type(net).__name__}, not an nn.Module"
            )
        built.append(net)
    check_start(built, train_data, config.checkpoint_path)
    losses = _distinct_losses(specs)
    described = _describe_model(built[0])
    data_description = _describe_data(data, train_data)
    resolved = [
        _resolve(config, s, loss, described, data_description, device)
        for s, loss in zip(specs, losses, strict=True)
    ]
    run = _Run(built, losses, specs, train_data, config, device, config.engine, measure)
    return _execute(run, resolved, progress, stop)


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
        loss = _build_loss(spec)
        if id(user_module(loss)) in seen:
            loss = as_loss(copy.deepcopy(user_module(loss)))
        seen.add(id(user_module(loss)))
        out.append(loss)
    return out


__all__ = ["CURVE_KEYS", "RESULT_SCHEMA", "TrainResult", "train", "train_many", "versions"]
