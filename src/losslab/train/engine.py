"""The training loop: one model (:func:`train`) or M models at once (:func:`train_many`).

One optimizer step of M models:

.. math::
    L = \\sum_{m \\text{ active}} \\frac{1}{N} \\sum_{i=1}^{N} \\ell_m(o_{m,i}, y_{m,i})

Each model's loss depends only on its own parameters and logits, so the gradient of the
sum with respect to model m's parameters is the gradient of its own mean loss: the M
models train exactly as M separate runs would (tested to float tolerance), but as one
batched computation. A model whose loss turns NaN/inf drops out of the sum at that very
step (no host synchronisation on CUDA) and its gradients are zeroed from then on; it is
reported as diverged at the next evaluation and never disturbs its siblings. An
early-stopped model is masked the same way. Masked models still ride along in the batched
forward pass; with zero gradients SGD leaves them unchanged while Adam/momentum let their
last velocity decay, so results never use those weights: a diverged model keeps the
metrics of its last finite evaluation, early stopping restores each model's best weights.

Hot path: batches are slices of a per-seed permutation of device-resident data, models
with the same kind of loss are stacked next to each other and their losses computed in
one call, Adam/SGD are fused, and the host waits for the device only at evaluations
(every ``eval_every`` steps).

Seed: lecture notes 2018 §5-7 (mini-batches, optimizers, L2, lr decay, early stopping,
train/dev/test); Janocha & Czarnecki 2017 §3 (grids of losses x seeds, learning curves).
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from losslab.errors import LosslabError
from losslab.losses import get_loss
from losslab.train.backends import LoopBackend, StackBackend
from losslab.train.config import ModelSpec, TrainConfig, resolve_device
from losslab.train.data import BatchOrder, TrainData, as_train_data
from losslab.train.losses import LossPlan, plan_order

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
_CHECKPOINT_VERSION = 1


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
        diverged: its loss became NaN/inf; ``diverged_at`` is that step.
        stopped_early: early stopping ended it before ``steps``; ``best_step`` is the
            step whose weights it holds when early stopping is on.
        steps_run: optimizer steps it took.
        seconds: wall time of the whole run it was part of (training and evaluations,
            summed over resumed sessions; data loading and set-up excluded).
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
    steps_run: int = 0
    seconds: float = 0.0
    model: nn.Module | None = field(default=None, repr=False)
    loss: nn.Module | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary (NaN -> None), without the model and loss modules."""

        def clean(v: float) -> float | None:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "label": self.label,
            "loss": self.spec.loss_name,
            "seed": self.spec.seed,
            "final": {k: clean(v) for k, v in self.final.items()},
            "curves": {k: [clean(v) for v in vs] for k, vs in self.curves.items()},
            "diverged": self.diverged,
            "diverged_at": self.diverged_at,
            "stopped_early": self.stopped_early,
            "best_step": self.best_step,
            "steps_run": self.steps_run,
            "seconds": self.seconds,
        }


def _build_loss(spec: ModelSpec) -> nn.Module:
    if isinstance(spec.loss, nn.Module):
        return spec.loss
    return get_loss(spec.loss, **spec.loss_kwargs)


def _loss_key(spec: ModelSpec, loss: nn.Module) -> object:
    if isinstance(spec.loss, nn.Module):
        return id(loss)
    return (spec.loss.strip().lower().replace("-", "_"), repr(sorted(spec.loss_kwargs.items())))


def _make_optimizer(
    config: TrainConfig,
    model_params: list[torch.Tensor],
    loss_params: list[torch.Tensor],
    lr: float,
    weight_decay: float,
    device: torch.device,
) -> torch.optim.Optimizer:
    groups = [{"params": model_params, "weight_decay": weight_decay}]
    if loss_params:
        groups.append({"params": loss_params, "weight_decay": 0.0})
    # Fused kernels: one pass over all parameters instead of several foreach passes
    # (Adam over a 1.46M-parameter MLP on CPU: ~0.63 ms fused vs ~4.9 ms foreach).
    fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, **fused)
    if config.optimizer == "momentum":
        return torch.optim.SGD(groups, lr=lr, momentum=config.momentum, **fused)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            groups, lr=lr, alpha=config.rmsprop_alpha, eps=config.eps, foreach=True
        )
    return torch.optim.Adam(groups, lr=lr, betas=config.betas, eps=config.eps, **fused)


class _Run:
    """One training run of M models sharing architecture, optimizer, lr and weight decay."""

    def __init__(
        self,
        models: list[nn.Module],
        losses: list[nn.Module],
        specs: list[ModelSpec],
        data: TrainData,
        config: TrainConfig,
        device: torch.device,
        engine: str,
        lr: float,
        weight_decay: float,
        checkpoint_path: str | None,
    ):
        keys = [_loss_key(s, loss) for s, loss in zip(specs, losses, strict=True)]
        # Models are stacked in the plan's order (same-kind losses adjacent) and the
        # results are put back in the caller's order.
        self.model_order = plan_order(losses, keys)
        models = [models[i] for i in self.model_order]
        losses = [losses[i] for i in self.model_order]
        specs = [specs[i] for i in self.model_order]
        keys = [keys[i] for i in self.model_order]
        self.config, self.specs, self.data, self.device = config, specs, data, device
        self.lr0 = lr
        self.checkpoint_path = checkpoint_path
        self.m = len(models)
        dtype = config.torch_dtype
        if engine == "stack":
            self.backend: StackBackend | LoopBackend = StackBackend(
                models, device, dtype, [s.seed for s in specs]
            )
        else:
            self.backend = LoopBackend(models, device, dtype, [s.seed for s in specs])
        self.losses = [loss.to(device=device, dtype=dtype) for loss in losses]
        self._validate = [getattr(loss, "validate", None) for loss in self.losses]
        for loss in self.losses:
            if hasattr(loss, "validate"):
                # The NaN check of the loss would sync and raise; divergence is handled here.
                loss.validate = False
        self.plan = LossPlan(self.losses, keys)
        self._attach_scales()
        loss_params = []
        seen: set[int] = set()
        for loss in self.losses:
            for p in loss.parameters():
                if p.requires_grad and id(p) not in seen:
                    seen.add(id(p))
                    loss_params.append(p)
        self.optimizer = _make_optimizer(
            config, self.backend.parameters(), loss_params, lr, weight_decay, device
        )
        seeds = sorted({s.seed for s in specs})
        self.seed_rows = torch.tensor([seeds.index(s.seed) for s in specs], device=device)
        self.shared = len(seeds) == 1
        self.order = BatchOrder(
            seeds, data.x_train.shape[0], config.batch_size, config.shuffle, device
        )
        self.alive = torch.ones(self.m, dtype=torch.bool, device=device)
        self.running = torch.ones(self.m, dtype=torch.bool, device=device)
        self.death = torch.full((self.m,), -1, dtype=torch.long, device=device)
        self.records: list[list[dict[str, float]]] = [[] for _ in range(self.m)]
        self.diverged_at: list[int | None] = [None] * self.m
        self.stopped_at: list[int | None] = [None] * self.m
        self.best_value = [math.nan] * self.m
        self.best_step: list[int | None] = [None] * self.m
        self.waits = [0] * self.m
        self.best_tensors: list[torch.Tensor] | None = None
        # Trainable loss scales (R1, R2, R_s) belong to the best state as much as weights.
        self.best_losses: list[dict[str, torch.Tensor] | None] = [None] * self.m
        self.step = 0
        self.seconds = 0.0
        self.always_mask = device.type != "cpu"
        if config.patience is not None and data.x_dev is None:
            raise LosslabError(
                "early stopping (patience) needs a dev set: load the data with dev_fraction > 0 "
                "or pass x_dev/y_dev"
            )

    def _attach_scales(self) -> None:
        """Initialise two-scale losses (R1 = R(alpha^0), R2 = 10 R1) from each model."""
        if not any(hasattr(loss, "attach") for loss in self.losses):
            return
        with torch.no_grad():
            r0 = self.backend.scales().tolist()
        for loss, r in zip(self.losses, r0, strict=True):
            if hasattr(loss, "attach"):
                loss.attach(r)

    # ----------------------------------------------------------------- training loop
    def run(self) -> None:
        cfg = self.config
        per_epoch = self.order.steps_per_epoch
        epoch = -1
        start_time = time.perf_counter() - self.seconds
        x, y = self.data.x_train, self.data.y_train
        checkpoint_every = cfg.checkpoint_every or cfg.eval_every
        while self.step < cfg.steps:
            if self.step // per_epoch != epoch:
                epoch = self.step // per_epoch
                lr = cfg.learning_rate(epoch, self.lr0)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
            rows = self.order.indices(self.step)
            if self.shared:
                index = rows[0]
            else:
                index = rows.index_select(0, self.seed_rows)
            xb, yb = x[index], y[index]
            logits = self.backend.forward(xb, shared=self.shared)
            scales = self.backend.scales() if self.plan.needs_scale else None
            values = self.plan(logits, yb, scales)
            finite = torch.isfinite(values)
            self.death.masked_fill_(self.alive & ~finite, self.step + 1)
            self.alive &= finite
            active = self.alive & self.running
            total = torch.where(active, values, 0.0).sum()
            self.optimizer.zero_grad(set_to_none=True)
            total.backward()
            # On CPU reading the flags costs nothing and skips a pass over every gradient;
            # on CUDA it would be a sync per step, so the mask is applied unconditionally.
            if self.always_mask or not bool(active.all()):
                self.backend.mask_grads(~active)
            self.optimizer.step()
            self.step += 1
            if self.step % cfg.eval_every == 0 or self.step == cfg.steps:
                batch_acc = (logits.detach().argmax(-1) == yb).to(values.dtype).mean(-1)
                self._evaluate(lr, batch_acc, values.detach())
                if not bool((self.alive & self.running).any()):
                    break
            if self.checkpoint_path and (
                self.step % checkpoint_every == 0 or self.step == cfg.steps
            ):
                self.seconds = time.perf_counter() - start_time
                self.save(self.checkpoint_path)
        self.seconds = time.perf_counter() - start_time

    @torch.no_grad()
    def _metrics(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        pair = self.data.split(split)
        nan = torch.full((self.m,), math.nan, device=self.device, dtype=self.config.torch_dtype)
        if pair is None or (split == "train" and not self.config.eval_train):
            return nan, nan
        x, y = pair
        scales = self.backend.scales() if self.plan.needs_scale else None
        correct = torch.zeros(self.m, device=self.device, dtype=nan.dtype)
        total = torch.zeros_like(correct)
        chunk = self.config.eval_batch_size
        for start in range(0, x.shape[0], chunk):
            xc, yc = x[start : start + chunk], y[start : start + chunk]
            logits = self.backend.forward(xc, shared=True)
            correct += (logits.argmax(-1) == yc).sum(-1).to(nan.dtype)
            total += self.plan(logits, yc, scales) * xc.shape[0]
        return correct / x.shape[0], total / x.shape[0]

    def _evaluate(self, lr: float, batch_acc: torch.Tensor, batch_loss: torch.Tensor) -> None:
        self.backend.train(False)
        columns = [batch_acc, batch_loss]
        for split in ("train", "dev", "test"):
            columns.extend(self._metrics(split))
        self.backend.train(True)
        table = torch.stack([c.to(batch_loss.dtype) for c in columns]).tolist()
        alive = self.alive.tolist()
        death = self.death.tolist()
        present = [f"{s}_loss" for s in ("dev", "test") if self.data.split(s) is not None]
        if self.config.eval_train:
            present.append("train_loss")
        improved = []
        for i in range(self.m):
            if self.diverged_at[i] is not None or self.stopped_at[i] is not None:
                improved.append(False)
                continue
            row = dict(
                zip(CURVE_KEYS, [float(self.step), float(lr), *(c[i] for c in table)], strict=True)
            )
            if not alive[i] or not all(math.isfinite(row[k]) for k in present):
                self.diverged_at[i] = death[i] if death[i] > 0 else self.step
                improved.append(False)
                continue
            self.records[i].append(row)
            improved.append(self._early_stopping(i, row))
        dead = [d is not None for d in self.diverged_at]
        if any(dead) or self.config.patience is not None:
            stopped = [s is not None for s in self.stopped_at]
            self.alive &= ~torch.tensor(dead, device=self.device)
            self.running &= ~torch.tensor(stopped, device=self.device)
        if self.config.patience is not None and any(improved):
            self._snapshot(improved)

    def _early_stopping(self, i: int, row: dict[str, float]) -> bool:
        """Track the best dev value of model i; stop it after ``patience`` evaluations."""
        if self.config.patience is None:
            return False
        value = row[self.config.monitor]
        sign = 1.0 if self.config.monitor == "dev_accuracy" else -1.0
        if math.isnan(self.best_value[i]) or sign * (value - self.best_value[i]) > 0:
            self.best_value[i], self.best_step[i], self.waits[i] = value, self.step, 0
            return True
        self.waits[i] += 1
        if self.waits[i] >= self.config.patience:
            self.stopped_at[i] = self.step
        return False

    def _snapshot(self, improved: list[bool]) -> None:
        for i, better in enumerate(improved):
            if better:
                state = self.losses[i].state_dict()
                self.best_losses[i] = {k: v.detach().clone() for k, v in state.items()}
        live = self.backend.tensors()
        mask = torch.tensor(improved, device=self.device)
        if self.best_tensors is None:
            self.best_tensors = [t.detach().clone() for t in live]
            return
        for best, t in zip(self.best_tensors, live, strict=True):
            keep = mask.view(-1, *([1] * (t.dim() - 1)))
            best.copy_(torch.where(keep, t.detach(), best))

    # ----------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        return {
            "version": _CHECKPOINT_VERSION,
            "labels": [s.label for s in self.specs],
            "batch_size": self.config.batch_size,
            "optimizer_name": self.config.optimizer,
            "settings": self.settings(),
            "step": self.step,
            "seconds": self.seconds,
            "backend": self.backend.state_dict(),
            "losses": [loss.state_dict() for loss in self.losses],
            "optimizer": self.optimizer.state_dict(),
            "order": self.order.state(),
            "alive": self.alive.cpu(),
            "running": self.running.cpu(),
            "death": self.death.cpu(),
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

    def settings(self) -> dict[str, str]:
        """What a resumed run must share with the run that wrote the checkpoint.

        ``steps`` (a resume usually extends the run), evaluation cadence, patience, device and
        the checkpoint path itself may change; anything else would silently mix two runs.
        """
        free = {"steps", "eval_every", "patience", "device", "checkpoint_path"}
        out = {k: repr(v) for k, v in self.config.to_dict().items() if k not in free}
        for i, spec in enumerate(self.specs):
            out[f"model {i}"] = repr(
                (spec.loss, spec.seed, spec.loss_kwargs, spec.lr, spec.weight_decay)
            )
        return out

    def save(self, path: str) -> None:
        """Write the run's complete state atomically (a crash never leaves half a file)."""
        tmp = f"{path}.tmp"
        torch.save(self.state(), tmp)
        os.replace(tmp, path)

    def load(self, path: str) -> None:
        """Continue from a checkpoint written by :meth:`save` for the same models."""
        try:
            # On the CPU: generator states must stay CPU tensors; the rest is copied over.
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # any unreadable or foreign file is a user error here
            raise LosslabError(f"cannot read checkpoint {path!r}: {err}") from None
        if not isinstance(state, dict) or state.get("version") != _CHECKPOINT_VERSION:
            raise LosslabError(f"{path!r} is not a losslab training checkpoint")
        mine = ([s.label for s in self.specs], self.config.batch_size, self.config.optimizer)
        theirs = (state["labels"], state["batch_size"], state["optimizer_name"])
        if mine != theirs:
            raise LosslabError(
                f"checkpoint {path!r} was written for other models or settings "
                f"(labels, batch size, optimizer = {theirs}); delete it or use another "
                "checkpoint_path"
            )
        theirs_settings = state.get("settings", {})
        changed = sorted(
            k
            for k, v in self.settings().items()
            if k in theirs_settings and theirs_settings[k] != v
        )
        if changed:
            detail = "; ".join(
                f"{k}: {theirs_settings[k]} -> {self.settings()[k]}" for k in changed
            )
            raise LosslabError(
                f"checkpoint {path!r} was written for other models or settings ({detail}); resume "
                "with the same settings, or delete it / use another checkpoint_path for a new run"
            )
        try:
            self.backend.load_state_dict(state["backend"])
            for loss, s in zip(self.losses, state["losses"], strict=True):
                loss.load_state_dict(s)
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, RuntimeError, ValueError) as err:
            # Same labels, other architecture, engine or loss: the tensors do not fit.
            reason = " ".join(str(err).split())[:240]
            raise LosslabError(
                f"checkpoint {path!r} was written for other models or settings (another "
                f"architecture, engine or loss: {reason}); delete it or use another "
                "checkpoint_path"
            ) from None
        self.order.load_state(state["order"])
        self.alive = state["alive"].to(self.device)
        self.running = state["running"].to(self.device)
        self.death = state["death"].to(self.device)
        self.step, self.seconds = state["step"], state["seconds"]
        self.records = state["records"]
        self.diverged_at, self.stopped_at = state["diverged_at"], state["stopped_at"]
        self.best_value, self.best_step = state["best_value"], state["best_step"]
        self.waits = state["waits"]
        best = state["best_tensors"]
        self.best_tensors = None if best is None else [t.to(self.device) for t in best]
        self.best_losses = state.get("best_losses", [None] * self.m)

    # ----------------------------------------------------------------- results
    def results(self) -> list[TrainResult]:
        if self.best_tensors is not None:
            self.backend.set_tensors(self.best_tensors)
        models = self.backend.models()
        out: list[TrainResult] = []
        for i, spec in enumerate(self.specs):
            loss = self.losses[i]
            if self.best_losses[i] is not None:
                loss.load_state_dict(self.best_losses[i])
            if self._validate[i] is not None:
                loss.validate = self._validate[i]
            if hasattr(loss, "attach"):
                loss.attach(models[i])
            records = self.records[i]
            curves = {k: [r[k] for r in records] for k in CURVE_KEYS}
            final = dict(records[-1]) if records else {k: math.nan for k in CURVE_KEYS}
            if self.best_step[i] is not None:
                final = next(r for r in records if r["step"] == self.best_step[i])
            diverged = self.diverged_at[i] is not None
            stop = self.stopped_at[i]
            steps_run = self.diverged_at[i] if diverged else (stop or self.step)
            out.append(
                TrainResult(
                    label=spec.label,
                    spec=spec,
                    curves=curves,
                    final=final,
                    diverged=diverged,
                    diverged_at=self.diverged_at[i],
                    stopped_early=stop is not None and stop < self.config.steps,
                    best_step=self.best_step[i],
                    steps_run=steps_run,
                    seconds=self.seconds,
                    model=models[i],
                    loss=loss,
                )
            )
        placed: list[TrainResult] = [None] * self.m  # type: ignore[list-item]
        for position, result in zip(self.model_order, out, strict=True):
            placed[position] = result
        return placed


def _execute(run: _Run) -> list[TrainResult]:
    if run.checkpoint_path and run.config.resume and os.path.exists(run.checkpoint_path):
        run.load(run.checkpoint_path)
    run.run()
    return run.results()


def train(
    model: nn.Module,
    data: Any,
    loss: str | nn.Module = "log",
    config: TrainConfig | None = None,
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
    device = resolve_device(config.device)
    train_data = as_train_data(data, device, config.torch_dtype)
    run = _Run(
        [model],
        [_build_loss(spec)],
        [spec],
        train_data,
        config,
        device,
        "loop",
        config.lr,
        config.weight_decay,
        config.checkpoint_path,
    )
    return _execute(run)[0]


def train_many(
    model: Callable[[int], nn.Module],
    specs: Sequence[ModelSpec | tuple | str],
    data: Any,
    config: TrainConfig | None = None,
) -> list[TrainResult]:
    """Train M models of one architecture at once, as one batched computation.

    Models with the same seed start from identical weights and see identical batches
    whatever their loss (common random numbers); their losses differ. Models that share
    learning rate and weight decay form one stack (one computation); different values
    give one stack per distinct (lr, weight decay), run one after another.

    Args:
        model: ``seed -> nn.Module``, e.g. ``lambda s: mlp(2, [200] * 5, 4, seed=s)``; every
            model it returns must have the same architecture.
        specs: M :class:`ModelSpec` s, or ``(loss, seed)`` / ``(loss, seed, hparams)``
            tuples (hparams: a dict of ModelSpec fields) or loss names (seed 0).
        data: as in :func:`train`.
        config: the shared :class:`TrainConfig` (default ``TrainConfig()``); ``engine``
            picks ``"stack"`` (default) or ``"loop"`` (the per-model reference).

    Returns:
        M :class:`TrainResult` s in the order of ``specs``.

    Example:
        >>> specs = [ModelSpec(loss, seed) for loss in ("log", "hinge") for seed in range(5)]
        >>> results = train_many(lambda s: mlp(2, [200] * 5, 4, seed=s), specs, data,
        ...                      TrainConfig(lr=3e-5, batch_size=50, steps=60_000))
    """
    config = config or TrainConfig()
    specs = [_as_spec(s) for s in specs]
    if not specs:
        raise LosslabError("train_many needs at least one ModelSpec")
    if not callable(model):
        raise LosslabError("model must be a callable seed -> nn.Module (e.g. a lambda)")
    labels = [s.label for s in specs]
    if len(set(labels)) != len(labels):
        for i, s in enumerate(specs):
            s.label = f"{s.label}#{i}"
    device = resolve_device(config.device)
    train_data = as_train_data(data, device, config.torch_dtype)
    cohorts: dict[tuple[float, float], list[int]] = {}
    for i, s in enumerate(specs):
        lr = config.lr if s.lr is None else s.lr
        wd = config.weight_decay if s.weight_decay is None else s.weight_decay
        cohorts.setdefault((lr, wd), []).append(i)
    results: list[TrainResult | None] = [None] * len(specs)
    losses = _distinct_losses(specs)
    for k, ((lr, wd), idx) in enumerate(cohorts.items()):
        path = config.checkpoint_path
        if path and len(cohorts) > 1:
            path = f"{path}.{k}"
        built = []
        for i in idx:
            net = model(specs[i].seed)
            if not isinstance(net, nn.Module):
                raise LosslabError(
                    f"model({specs[i].seed}) returned a {type(net).__name__}, not an nn.Module"
                )
            built.append(net)
        run = _Run(
            built,
            [losses[i] for i in idx],
            [specs[i] for i in idx],
            train_data,
            config,
            device,
            config.engine,
            lr,
            wd,
            path,
        )
        for i, result in zip(idx, _execute(run), strict=True):
            results[i] = result
    return results  # type: ignore[return-value]


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


def _distinct_losses(specs: list[ModelSpec]) -> list[nn.Module]:
    """One loss module per model; a module object given twice is copied (own state)."""
    seen: set[int] = set()
    out = []
    for spec in specs:
        loss = _build_loss(spec)
        if id(loss) in seen:
            loss = copy.deepcopy(loss)
        seen.add(id(loss))
        out.append(loss)
    return out


__all__ = ["CURVE_KEYS", "TrainResult", "train", "train_many"]
