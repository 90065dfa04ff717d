"""``fit``: the NumPy training loop, defaulting to the Daza assignment's MLP protocol.

Defaults (seed: Daza §1.2): one hidden layer of 100 ReLU units, weights from
N(0, 1e-4^2), cross-entropy, SGD with learning rate 1e-3, batch 200, 1500 steps,
evaluation every 100 steps. Daza reports 46.6% CIFAR-10 test accuracy with it.
Optional: L2 weight decay, dropout, batch-norm, the other optimizers, learning-rate
decay per epoch and early stopping on the development set (lecture notes §6-7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from losslab.errors import LosslabError
from losslab.npnet.layers import MLP, Layer, Sequential
from losslab.npnet.losses import Loss, get_loss
from losslab.npnet.optim import EarlyStopping, add_l2_gradient, get_optimizer
from losslab.schedules import learning_rate
from losslab.seeding import as_rng

Array = np.ndarray


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained network (best development-set parameters with early stopping).
        history: lists indexed by evaluation: "step", "train_loss" (mean over the
            steps since the previous evaluation), "lr", and "dev_loss"/"dev_accuracy"
            when there is a development set.
        steps: optimisation steps actually run.
        best_step: step of the restored parameters (early stopping), else None.
        test_loss, test_accuracy: on the test set at the end, if there is one.
    """

    model: Layer
    history: dict[str, list[float]] = field(default_factory=dict)
    steps: int = 0
    best_step: int | None = None
    test_loss: float | None = None
    test_accuracy: float | None = None


def evaluate(
    model: Layer, loss: Loss, x: Array, y: Array, batch_size: int = 1000
) -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on (x, y) in evaluation mode, by chunks.

    Args:
        model: the network; it is put back in training mode afterwards.
        loss: an npnet loss with ``reduction="mean"``.
        x: inputs (N, ...); y: integer labels (N,).
        batch_size: chunk size (memory only; the result does not depend on it).
    """
    model.eval()
    total_loss, correct = 0.0, 0
    try:
        for start in range(0, len(x), batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            logits = model.forward(xb)
            total_loss += float(loss.forward(logits, yb)) * len(xb)
            correct += int(np.sum(logits.argmax(axis=1) == yb))
    finally:
        model.train()
    return total_loss / len(x), correct / len(x)


def _split(data: Any, name: str) -> Array | None:
    value = data.get(name) if isinstance(data, Mapping) else getattr(data, name, None)
    return None if value is None else np.asarray(value)


def fit(
    x_train: Any,
    y_train: Array | None = None,
    x_dev: Array | None = None,
    y_dev: Array | None = None,
    x_test: Array | None = None,
    y_test: Array | None = None,
    *,
    model: Layer | None = None,
    hidden: Sequence[int] = (100,),
    activation: str = "relu",
    init: str = "daza",
    dropout: float = 0.0,
    batchnorm: bool = False,
    loss: str = "log",
    loss_kwargs: dict | None = None,
    optimizer: str = "sgd",
    lr: float = 1e-3,
    optimizer_kwargs: dict | None = None,
    batch_size: int = 200,
    steps: int = 1500,
    weight_decay: float = 0.0,
    lr_decay: str = "constant",
    decay_rate: float | None = None,
    eval_every: int = 100,
    patience: int | None = None,
    rng: np.random.Generator | int = 0,
    dtype: npt.DTypeLike = np.float32,
) -> FitResult:
    """Train an npnet model with mini-batch gradient descent; Daza §1.2's protocol by default.

    Args:
        x_train: training inputs (N, ...) — or, with ``y_train`` left out, a dataset
            object or mapping with arrays ``x_train``, ``y_train`` and optionally
            ``x_dev``, ``y_dev``, ``x_test``, ``y_test`` and ``num_classes`` (duck
            typing: any ``losslab.data`` dataset works).
        y_train: integer labels (N,) in [0, C).
        x_dev, y_dev: development set for evaluation and early stopping (optional).
        x_test, y_test: test set, evaluated once at the end (optional).
        model: a network mapping x to logits; default an :class:`MLP` of sizes
            (D, *hidden, C) on the flattened inputs.
        hidden, activation, init, dropout, batchnorm: of the default MLP
            ((100,), "relu", "daza" = N(0, 1e-4^2), 0, False).
        loss, loss_kwargs: an npnet loss name ("log") and its keyword arguments.
        optimizer, lr, optimizer_kwargs: "sgd" with lr 1e-3 by default.
        batch_size: examples per step (200).
        steps: optimisation steps (1500).
        weight_decay: lambda of the L2 term lambda/(2m) sum ||W||^2, m = batch size (0).
        lr_decay, decay_rate: a schedule of :mod:`losslab.schedules` ("constant",
            "inverse_time", "exponential", "inverse_sqrt") and its d (default: the
            schedule's), applied per epoch exactly as the torch trainer applies it.
        eval_every: steps between evaluations (100).
        patience: early stopping after this many evaluations without a better
            development loss (None: no early stopping; needs a development set). The
            best weights are restored; batch-norm running statistics are not.
        rng: generator or seed for the initial weights, batch order and dropout (0).
        dtype: compute dtype (float32).

    Returns:
        A :class:`FitResult`.

    Example:
        >>> result = fit(x, y, x_dev, y_dev, steps=300)
        >>> result.history["dev_accuracy"][-1]
    """
    if y_train is None:
        data = x_train
        x_train, y_train = _split(data, "x_train"), _split(data, "y_train")
        x_dev, y_dev = _split(data, "x_dev"), _split(data, "y_dev")
        x_test, y_test = _split(data, "x_test"), _split(data, "y_test")
        given_classes = _split(data, "num_classes")
    else:
        given_classes = None
    if x_train is None or y_train is None:
        raise LosslabError(
            "fit needs x_train and y_train: pass two arrays, or one dataset with both attributes"
        )
    x_train, y_train = np.asarray(x_train), np.asarray(y_train)
    if len(x_train) != len(y_train) or len(x_train) == 0:
        raise LosslabError(
            f"x_train has {len(x_train)} rows but y_train has {len(y_train)}; they must match"
        )
    splits = {"train": (x_train, y_train)}
    for part, x, y in (("dev", x_dev, y_dev), ("test", x_test, y_test)):
        if (x is None) != (y is None):
            raise LosslabError(f"give both x_{part} and y_{part}, or neither")
        if x is not None and len(x):
            x, y = np.asarray(x), np.asarray(y)
            if len(x) != len(y):
                raise LosslabError(f"x_{part} has {len(x)} rows but y_{part} has {len(y)}")
            splits[part] = (x, y)
    for part, (_, y) in splits.items():
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (y.size and y.min() < 0):
            raise LosslabError(
                f"y_{part} must be non-negative integer labels of shape (N,), "
                f"got shape {y.shape} and dtype {y.dtype}"
            )
    if given_classes is None:
        num_classes = max(int(y.max()) for _, y in splits.values()) + 1
    else:
        num_classes = int(given_classes)
    if patience is not None and "dev" not in splits:
        raise LosslabError("early stopping (patience) needs a development set (x_dev, y_dev)")
    if batch_size < 1 or steps < 1 or eval_every < 1:
        raise LosslabError("batch_size, steps and eval_every must be >= 1")

    rng = as_rng(rng)
    if model is None:
        model = MLP(
            [int(np.prod(x_train.shape[1:])), *hidden, num_classes],
            activation=activation,
            dropout=dropout,
            batchnorm=batchnorm,
            init=init,
            rng=rng,
            dtype=dtype,
        )
        reshape = lambda x: x.reshape(len(x), -1)  # noqa: E731
    else:
        reshape = lambda x: x  # noqa: E731
    splits = {k: (reshape(x).astype(dtype, copy=False), y) for k, (x, y) in splits.items()}
    x_train, y_train = splits.pop("train")

    criterion = get_loss(loss, **(loss_kwargs or {}))
    opt = get_optimizer(optimizer, lr=lr, **(optimizer_kwargs or {}))
    stopper = EarlyStopping(patience) if patience is not None else None
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "lr": []}
    result = FitResult(model=model, history=history)

    n = len(x_train)
    batch_size = min(batch_size, n)
    batches_per_epoch = n // batch_size
    window: list[float] = []
    model.train()
    for step in range(1, steps + 1):
        epoch, b = divmod(step - 1, batches_per_epoch)
        if b == 0:
            order = rng.permutation(n)
            opt.lr = learning_rate(lr_decay, lr, epoch, decay_rate)
        idx = order[b * batch_size : (b + 1) * batch_size]
        logits = model.forward(x_train[idx])
        window.append(float(criterion.forward(logits, y_train[idx])))
        if isinstance(model, Sequential):
            model.backward(criterion.backward(), input_grad=False)
        else:
            model.backward(criterion.backward())
        params, grads = model.params, model.grads
        add_l2_gradient(params, grads, weight_decay, len(idx))
        opt.step(params, grads)
        result.steps = step

        if step % eval_every and step != steps:
            continue
        history["step"].append(step)
        history["train_loss"].append(float(np.mean(window)))
        history["lr"].append(opt.lr)
        window = []
        if "dev" in splits:
            dev_loss, dev_acc = evaluate(model, criterion, *splits["dev"])
            history.setdefault("dev_loss", []).append(dev_loss)
            history.setdefault("dev_accuracy", []).append(dev_acc)
            if stopper is not None:
                improved_before = stopper.best
                stop = stopper.update(dev_loss, model.params)
                if stopper.best != improved_before:
                    result.best_step = step
                if stop:
                    break
        if not np.isfinite(history["train_loss"][-1]):
            raise LosslabError(
                f"training diverged at step {step} (loss {history['train_loss'][-1]}); "
                "lower the learning rate"
            )
    if stopper is not None and stopper.best_params is not None:
        stopper.restore(model.params)
    if "test" in splits:
        result.test_loss, result.test_accuracy = evaluate(model, criterion, *splits["test"])
    return result
