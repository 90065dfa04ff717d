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
the evaluator (:mod:`~losslab.train.evaluate`) and the checkpoint
(:mod:`~losslab.train.checkpoint`), their combination.

Hot path: batches are slices of a per-seed permutation of device-resident data, models
with the same kind of loss are stacked next to each other and their losses computed in
one call, Adam/SGD are fused, and the host waits for the device only at evaluations
(every ``eval_every`` steps).

Seed: lecture notes 2018 §5-7 (mini-batches, optimizers, L2, lr decay, early stopping,
train/dev/test); Janocha & Czarnecki 2017 §3 (grids of losses x seeds, learning curves).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import torch
from torch import nn

from losslab.errors import LosslabError
from losslab.losses import LOSSES, Loss, get_loss, skip_finite_check, skip_label_check
from losslab.registry import resolve
from losslab.train.backends import LoopBackend, StackBackend
from losslab.train.checkpoint import Checkpoint
from losslab.train.config import ModelSpec, TrainConfig
from losslab.train.data import BatchOrder, TrainData
from losslab.train.evaluate import SPLITS, Evaluator
from losslab.train.losses import LossPlan, as_loss, loss_scales, plan_order, user_module
from losslab.train.measure import MeasureContext, Measurement, collect
from losslab.train.optim import Param, StackOptimizer
from losslab.train.result import CURVE_KEYS, TrainResult, finite_mean
from losslab.train.tracker import Tracker

# Between evaluations, progress is reported at most this often (seconds).
_PROGRESS_INTERVAL = 0.5

Progress = Callable[[dict[str, Any]], None]


def build_loss(spec: ModelSpec) -> Loss:
    """The loss module of ``spec``: its module, or the registered loss it names."""
    if isinstance(spec.loss, nn.Module):
        return as_loss(spec.loss)
    return get_loss(spec.loss, **spec.loss_kwargs)


def _loss_key(spec: ModelSpec, loss: nn.Module) -> object:
    if isinstance(spec.loss, nn.Module):
        return id(loss)
    return (resolve(LOSSES, spec.loss, "loss")[0], repr(sorted(spec.loss_kwargs.items())))


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


class Run:
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
        self.labels = [cast(str, s.label) for s in self.specs]  # ModelSpec fills in a label
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
        moved = [loss.to(device=device, dtype=dtype) for loss in losses]
        self.losses = nn.ModuleList(moved)  # registered: .to(), state_dict
        self.loss_list: list[Loss] = moved  # the same modules, typed
        self.plan = LossPlan(moved, keys)
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
        for i, loss in enumerate(self.loss_list):
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
            models=self.labels,
            data=self.data,
            logits=logits,
            predict=self._predict,
            grad_norms=self.grad_norms,
            loss_scales=[loss_scales(loss) for loss in self.loss_list],
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
            self.tracker.snapshot(improved, self.backend.tensors(), self.loss_list)
        if measure:
            for i, model_rows in enumerate(self._measure(measure, logits)):
                if live[i]:
                    self.clock.measurements[i].extend(model_rows)
        self.backend.train(True)
        kept = [row for row, ok in zip(rows, live, strict=True) if ok]
        self.last_eval = (
            {k: finite_mean([r[k] for r in kept]) for k in CURVE_KEYS[2:]} if kept else None
        )

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
            loss = self.loss_list[i].attach(models[i])
            records = tracker.records[i]
            curves = {k: [r[k] for r in records] for k in CURVE_KEYS}
            final = dict(records[-1]) if records else {k: math.nan for k in CURVE_KEYS}
            if tracker.best_step[i] is not None:
                final = next(r for r in records if r["step"] == tracker.best_step[i])
            diverged_at = tracker.diverged_at[i]
            diverged = diverged_at is not None
            stop = tracker.stopped_at[i]
            steps_run = diverged_at if diverged_at is not None else (stop or self.clock.step)
            out.append(
                TrainResult(
                    label=self.labels[i],
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


def execute(
    run: Run,
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


_Run = Run  # the name tests/test_study_faults.py patches
