"""Training configuration, per-model specs and learning-rate schedules.

:class:`TrainConfig` holds everything the models of one training call share (optimizer,
batch size, steps, evaluation, early stopping, device); :class:`ModelSpec` what may differ
between the models trained together (loss, seed, learning rate, weight decay). Both check
their values on construction and raise :class:`~losslab.errors.LosslabError` with a message
that says how to fix a bad one.

Seed: lecture notes 2018, section 7 (GD, momentum, RMSprop, Adam, mini-batches,
learning-rate decay) and section 5 (L2 weight decay, early stopping).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
from torch import nn

from losslab.checks import check_choice, check_int, check_real
from losslab.errors import LosslabError
from losslab.schedules import SCHEDULES, learning_rate

OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
LR_DECAY_NAMES = tuple(SCHEDULES)
MONITORS = ("dev_accuracy", "dev_loss")
ENGINES = ("stack", "loop")
DECAYS = ("weights", "all")
DTYPES = {"float32": torch.float32, "float64": torch.float64}

def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; an unavailable CUDA is a LosslabError."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise LosslabError(f"device must be 'auto', 'cpu' or 'cuda[:i]', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise LosslabError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise LosslabError("device 'cuda' was asked for but CUDA is not available; use 'auto'")
    if resolved.type == "cuda" and (resolved.index or 0) >= torch.cuda.device_count():
        raise LosslabError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            "numbered from 0; use 'cuda' or 'auto'"
        )
    if resolved.type not in ("cpu", "cuda"):
        raise LosslabError(f"device {device!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    return resolved


@dataclass
class TrainConfig:
    """What every model of one training call shares.

    Args:
        optimizer: ``"sgd"``, ``"momentum"`` (SGD with PyTorch's heavy-ball momentum
            ``v = mu v + g``, i.e. the notes' EMA with the learning rate scaled by
            1/(1-beta)), ``"rmsprop"`` or ``"adam"`` (default, with bias correction).
        lr: initial learning rate alpha_0 > 0 (default 1e-3).
        batch_size: mini-batch size N (default 100); capped at the training-set size.
        steps: optimizer steps (default 1000).
        eval_every: evaluate every k steps (default 100); the last step is always
            evaluated.
        weight_decay: L2 coefficient lambda added to the gradient of the decayed
            parameters (coupled weight decay, ``g + lambda w``; the notes' lambda/(2m)
            sum ||W||^2 penalty, section 5, is ``weight_decay = lambda / m`` with
            ``decay="weights"``). Loss-owned scales are never decayed.
        decay: which parameters weight decay applies to: ``"weights"`` (default, as the
            notes' penalty: Linear / Conv weights, i.e. every parameter with two or more
            dimensions, not biases nor batch-norm parameters) or ``"all"`` (every model
            parameter, as ``torch.optim``'s ``weight_decay``).
        scale_lr_multiplier: learning rate of loss-owned scales (R1, R2, R_s of the
            two-scale losses) as a multiple of the model's (default 1.0, the paper's:
            Berlyand et al. 2021 eq. 14 trains them with the same step).
        lr_decay: ``"constant"`` (default), ``"inverse_time"`` alpha_0 / (1 + d e),
            ``"exponential"`` alpha_0 d^e (d = 0.95 by default, the notes' formula) or
            ``"inverse_sqrt"`` alpha_0 d / sqrt(max(e, 1)), with e the epoch count 0, 1, ...
        decay_rate: d of the decay (default 1.0, or 0.95 for exponential).
        momentum: mu of ``"momentum"`` (default 0.9).
        betas: Adam's (beta1, beta2) (default (0.9, 0.999)).
        rmsprop_alpha: RMSprop's squared-gradient EMA factor (default 0.99).
        eps: Adam / RMSprop epsilon (default 1e-8).
        seed: seed of the batch order of :func:`~losslab.train.train` and of the dropout
            masks (default 0); :func:`~losslab.train.train_many` takes each model's seed
            from its :class:`ModelSpec`.
        shuffle: draw a fresh permutation of the training set every epoch (default
            True); False takes batches in order (``bix = step * N mod n``, the MNIST-1D
            paper's protocol).
        patience: early stopping: stop a model after this many evaluations without a dev
            improvement and restore its best weights (default None: no early stopping;
            needs a dev set).
        monitor: what early stopping watches, ``"dev_accuracy"`` (default) or
            ``"dev_loss"``.
        eval_train: evaluate on the full training set as well (default True).
        eval_batch_size: chunk size of the evaluation passes (default 2000).
        device: ``"auto"`` (default: CUDA if available, else CPU), ``"cpu"``, ``"cuda"``.
        dtype: ``"float32"`` (default) or ``"float64"``.
        engine: ``"stack"`` (default: the M models as one :class:`~losslab.models.ModelStack`)
            or ``"loop"`` (plain modules, one after another; the reference).
        checkpoint_path: file to save checkpoints to (default None: no checkpoints).
        checkpoint_every: save every k steps (default: at every evaluation).
        checkpoint_seconds: also save once this many seconds of training have passed since
            the last save (default None: by steps only); a long stack then loses at most
            that much work to a kill.
        resume: continue from ``checkpoint_path`` if it exists (default True).
    """

    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 100
    steps: int = 1000
    eval_every: int = 100
    weight_decay: float = 0.0
    decay: str = "weights"
    scale_lr_multiplier: float = 1.0
    lr_decay: str = "constant"
    decay_rate: float | None = None
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    rmsprop_alpha: float = 0.99
    eps: float = 1e-8
    seed: int = 0
    shuffle: bool = True
    patience: int | None = None
    monitor: str = "dev_accuracy"
    eval_train: bool = True
    eval_batch_size: int = 2000
    device: str = "auto"
    dtype: str = "float32"
    engine: str = "stack"
    checkpoint_path: str | None = None
    checkpoint_every: int | None = None
    checkpoint_seconds: float | None = None
    resume: bool = True

    def __post_init__(self) -> None:
        self.optimizer = check_choice("optimizer", self.optimizer, OPTIMIZERS, normalise=True)
        self.lr = check_real("lr", self.lr, 0.0, low_open=True)
        self.batch_size = check_int("batch_size", self.batch_size, 1)
        self.steps = check_int("steps", self.steps, 1)
        self.eval_every = check_int("eval_every", self.eval_every, 1)
        self.weight_decay = check_real("weight_decay", self.weight_decay, 0.0)
        self.decay = check_choice("decay", self.decay, DECAYS, normalise=True)
        self.scale_lr_multiplier = check_real("scale_lr_multiplier", self.scale_lr_multiplier, 0.0)
        self.lr_decay = check_choice("lr_decay", self.lr_decay, LR_DECAY_NAMES, normalise=True)
        if self.decay_rate is not None:
            self.decay_rate = check_real("decay_rate", self.decay_rate, 0.0, low_open=True)
        self.momentum = check_real("momentum", self.momentum, 0.0, 1.0)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise LosslabError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        beta1, beta2 = (check_real("betas", b, 0.0, 0.999999) for b in self.betas)
        self.betas = (beta1, beta2)
        self.rmsprop_alpha = check_real("rmsprop_alpha", self.rmsprop_alpha, 0.0, 1.0)
        self.eps = check_real("eps", self.eps, 0.0, low_open=True)
        self.seed = check_int("seed", self.seed, 0)
        self.patience = check_int("patience", self.patience, 1, allow_none=True)
        self.monitor = check_choice("monitor", self.monitor, MONITORS, normalise=True)
        self.eval_batch_size = check_int("eval_batch_size", self.eval_batch_size, 1)
        resolve_device(self.device)
        self.dtype = check_choice("dtype", self.dtype, tuple(DTYPES), normalise=True)
        self.engine = check_choice("engine", self.engine, ENGINES, normalise=True)
        self.checkpoint_every = check_int(
            "checkpoint_every", self.checkpoint_every, 1, allow_none=True
        )
        if self.checkpoint_seconds is not None:
            self.checkpoint_seconds = check_real("checkpoint_seconds", self.checkpoint_seconds,
                                                 0.0)
        if self.checkpoint_path is not None and not isinstance(self.checkpoint_path, str):
            self.checkpoint_path = str(self.checkpoint_path)

    @property
    def torch_dtype(self) -> torch.dtype:
        """The ``torch.dtype`` of ``dtype``."""
        return DTYPES[self.dtype]

    def learning_rate(self, epoch: int, lr0: float | None = None) -> float:
        """The decayed learning rate at epoch ``epoch`` (0, 1, ...), lecture notes §7.3
        (:func:`losslab.schedules.learning_rate`).

        Args:
            epoch: completed epochs e.
            lr0: initial rate (default ``self.lr``; per-model rates pass their own).
        """
        lr0 = self.lr if lr0 is None else lr0
        return learning_rate(self.lr_decay, lr0, epoch, self.decay_rate)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain (JSON-able) dict."""
        out = asdict(self)
        out["betas"] = list(self.betas)
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a dict; unknown keys raise a LosslabError listing the valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise LosslabError(
                f"unknown TrainConfig field(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(names))}"
            )
        values = dict(values)
        if "betas" in values and isinstance(values["betas"], list):
            values["betas"] = tuple(values["betas"])
        return cls(**values)


@dataclass
class ModelSpec:
    """One model of :func:`~losslab.train.train_many`: what may differ between models.

    Args:
        loss: a registry name of ``losslab.losses`` (default ``"log"``) or a loss module.
        seed: initial weights and batch order (default 0): models with the same seed start
            from the same weights and see the same batches, whatever their loss (common
            random numbers).
        loss_kwargs: keyword arguments of the loss (with a name only).
        lr: this model's initial learning rate (default None: the config's).
        weight_decay: this model's weight decay (default None: the config's).
        label: a name for reports (default: the loss name and seed).
    """

    loss: str | nn.Module = "log"
    seed: int = 0
    loss_kwargs: dict[str, Any] = field(default_factory=dict)
    lr: float | None = None
    weight_decay: float | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.loss, (str, nn.Module)):
            raise LosslabError(
                "ModelSpec.loss must be a loss name or an nn.Module, got "
                f"{type(self.loss).__name__}"
            )
        if isinstance(self.loss, nn.Module) and self.loss_kwargs:
            raise LosslabError("loss_kwargs only apply to a loss given by name")
        self.seed = check_int("seed", self.seed, 0)
        if not isinstance(self.loss_kwargs, dict):
            raise LosslabError(f"loss_kwargs must be a dict, got {self.loss_kwargs!r}")
        if self.lr is not None:
            self.lr = check_real("lr", self.lr, 0.0, low_open=True)
        if self.weight_decay is not None:
            self.weight_decay = check_real("weight_decay", self.weight_decay, 0.0)
        if self.label is None:
            name = self.loss if isinstance(self.loss, str) else type(self.loss).__name__
            self.label = f"{name}/seed={self.seed}"

    @property
    def loss_name(self) -> str:
        """The loss's registry name, or its class name for a module."""
        return self.loss if isinstance(self.loss, str) else type(self.loss).__name__
