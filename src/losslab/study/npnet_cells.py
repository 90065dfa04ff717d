"""Study cells trained by the from-scratch NumPy engine (``engine = "npnet"``).

A cell whose model says ``engine = "npnet"`` (or whose study does) is trained by
:mod:`losslab.npnet`: its forward and backward passes, losses and optimizer updates are
the hand-derived NumPy ones of the Daza assignment (Daza §1-2). Everything else is the
torch cell's of the same seed, so an engine comparison is paired (common random numbers):

* the initial weights are those of the torch model the cell would train (copied from
  :func:`~losslab.study.build.build_model`, so every ``init`` of the MLP works);
* the batches are the torch trainer's (:class:`~losslab.train.data.BatchOrder` of the
  seed), the learning rate follows the same per-epoch schedule;
* the outcome has the torch cells' form: the curves of :data:`~losslab.train.CURVE_KEYS`
  at every evaluation (NaN for an absent split), the final row, divergence by the same
  rule (a batch loss that is not finite or exceeds
  :data:`~losslab.train.tracker.DIVERGENCE_FACTOR` x max(|first batch loss|, 1)).

Dropout masks come from the cell seed's ``"dropout"`` stream (NumPy), so with dropout
the two engines differ by more than round-off. What npnet cannot train is refused when
the study is validated (:data:`NPNET_SUPPORTS`, :func:`npnet_problem`).

The torch trainer's settings map onto npnet's as follows (each checked against
``torch.optim`` in tests/test_npnet_optim.py): ``momentum`` (PyTorch's ``v = mu v + g``)
is npnet's EMA momentum with the learning rate divided by 1 - mu; ``weight_decay`` lambda
(``g + lambda W`` on the weights) is npnet's L2 term with lambda x batch size; RMSprop's
``rmsprop_alpha`` is npnet's ``beta``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from losslab.study.build import build_model, one_line

_MODEL_OPTIONS = ("hidden", "dropout", "batchnorm", "init")
_OPTIMIZERS = ("sgd", "momentum", "rmsprop", "adam")
# TrainConfig fields npnet cells ignore because they only choose how torch runs.
_TORCH_ONLY = ("engine", "device", "scale_lr_multiplier")


def message_npnet() -> str:
    """What npnet cells support, for error messages."""
    from losslab.npnet import LOSSES

    return (f"npnet trains the model 'mlp' (options {', '.join(_MODEL_OPTIONS)}, bias = true) "
            f"with the losses {', '.join(sorted(LOSSES))} (reduction \"mean\", no class "
            f"weights) and the optimizers {', '.join(_OPTIMIZERS)}; without measurements, "
            "tuning or early stopping. Use engine = \"torch\" for anything else")


def npnet_problem(model: str, model_options: Mapping[str, Any],
                  losses: Sequence[tuple[str, Mapping[str, Any]]], train: Mapping[str, list[Any]],
                  measure: Mapping[str, Any], tune: bool) -> tuple[str, str] | None:
    """Why npnet cannot train a model entry of a study, as (field, message), or None.

    Args:
        model: the registry key of the model; ``model_options``: the options given to it.
        losses: (registry key, options) of every entry of the study's loss axis.
        train: every value of every ``[train]`` setting (see ``spec.train_axes``).
        measure: the ``[measure]`` table; ``tune``: whether the study has ``[tune]``.
    """
    from losslab.npnet import LOSSES

    if model != "mlp":
        return "model", f"engine 'npnet' trains only the model 'mlp', not {model!r}"
    for key, value in model_options.items():
        if key not in _MODEL_OPTIONS and not (key == "bias" and value is True):
            return f"model.{key}", f"engine 'npnet' has no mlp option {key} = {value!r}"
    for j, (loss, options) in enumerate(losses):
        if loss not in LOSSES:
            return f"losses[{j}]", f"engine 'npnet' has no loss {loss!r}"
        if options.get("weight") is not None:
            return f"losses[{j}].weight", "engine 'npnet' has no class weights"
        if options.get("reduction", "mean") != "mean":
            return f"losses[{j}].reduction", "engine 'npnet' trains with reduction \"mean\""
    for value in train.get("optimizer", []):
        if value not in _OPTIMIZERS:
            return "train.optimizer", f"engine 'npnet' has no optimizer {value!r}"
    if any(v != "weights" for v in train.get("decay", [])):
        return "train.decay", "engine 'npnet' decays the weights only (decay = \"weights\")"
    if any(v is not None for v in train.get("patience", [])):
        return "train.patience", "engine 'npnet' has no early stopping; remove patience"
    if any(v is not False for v in measure.values()):
        return "measure", "engine 'npnet' records no measurements; remove [measure]"
    if tune:
        return "tune", "engine 'npnet' cells cannot be tuned; remove [tune]"
    return None


def train_npnet_task(task: dict[str, Any], cache: Any,
                     progress: Callable[[dict], None] | None = None,
                     stop: threading.Event | None = None) -> list[dict[str, Any]]:
    """Train the cells of ``task`` one after another with npnet; outcomes as
    :func:`~losslab.study.executors.train_task` returns them.

    Args:
        task: from :func:`~losslab.study.executors.make_task` (``engine`` "npnet").
        cache: the :class:`~losslab.study.executors.DataCache` of the datasets.
        progress: called with ``{"step", "steps", "models", "last_eval", "elapsed"}``,
            ``step`` counting the steps of the stack's cells so far.
        stop: an event that interrupts training (the cell in flight is ``interrupted``,
            the ones after it too).
    """
    import torch
    from threadpoolctl import threadpool_limits

    cells = task["cells"]
    try:
        data = cache.get(task["dataset"])
    except Exception as err:  # noqa: BLE001 - a failed stack is recorded, the study goes on
        return [_failed(c, one_line(err)) for c in cells]
    out: list[dict[str, Any]] = []
    steps = int(task["train"]["steps"])
    start = time.perf_counter()
    # BLAS gets the threads torch was given (ProcessExecutor / Ray set them per worker).
    with threadpool_limits(torch.get_num_threads(), user_api="blas"):
        for k, cell in enumerate(cells):
            if stop is not None and stop.is_set():
                out.append({"cell_id": cell["cell_id"], "status": "interrupted"})
                continue

            def report(info: dict, done: int = k * steps) -> None:
                if progress is not None:
                    progress({**info, "step": done + info["step"],
                              "steps": steps * len(cells), "models": 1,
                              "elapsed": time.perf_counter() - start})
            try:
                out.append(_train_cell(task, cell, data, report, stop))
            except Exception as err:  # noqa: BLE001 - one failed cell, the others go on
                out.append(_failed(cell, one_line(err)))
    return out


def _failed(cell: Mapping[str, Any], error: str) -> dict[str, Any]:
    return {"cell_id": cell["cell_id"], "status": "failed", "error": error, "device": "cpu"}


def _npnet_model(task: Mapping[str, Any], seed: int, data: Any, dtype: type) -> Any:
    """The npnet MLP with the initial weights of the torch cell of ``seed``."""
    import torch

    from losslab import npnet
    from losslab.seeding import numpy_rng

    options = {k: v for k, v in task["model"].items() if k != "name"}
    twin = build_model(task["model"]["name"], data.input_shape, data.num_classes, seed=seed,
                       **options)
    linears = [m for m in twin.modules() if isinstance(m, torch.nn.Linear)]
    sizes = [linears[0].in_features, *(m.out_features for m in linears)]
    activation_kwargs = dict(options.get("activation_kwargs") or {})
    net = npnet.MLP(sizes, activation=options.get("activation", "relu"),
                    dropout=float(options.get("dropout", 0.0)),
                    batchnorm=bool(options.get("batchnorm", False)),
                    rng=numpy_rng(seed, "dropout"), dtype=dtype,
                    activation_kwargs=activation_kwargs)
    ours = [layer for layer in net.layers if isinstance(layer, npnet.Linear)]
    for mine, theirs in zip(ours, linears, strict=True):
        mine.params["W"][...] = theirs.weight.detach().double().numpy().T
        mine.params["b"][...] = theirs.bias.detach().double().numpy()
    return net


def _optimizer(config: Any, lr: float) -> tuple[Any, float]:
    """The npnet optimizer of ``config`` and the factor from torch's lr to npnet's."""
    from losslab import npnet

    if config.optimizer == "momentum":
        factor = 1.0 / (1.0 - config.momentum)
        return npnet.Momentum(lr * factor, beta=config.momentum), factor
    if config.optimizer == "rmsprop":
        return npnet.RMSprop(lr, beta=config.rmsprop_alpha, eps=config.eps), 1.0
    if config.optimizer == "adam":
        beta1, beta2 = config.betas
        return npnet.Adam(lr, beta1=beta1, beta2=beta2, eps=config.eps), 1.0
    return npnet.SGD(lr), 1.0


def _train_cell(task: Mapping[str, Any], cell: Mapping[str, Any], data: Any,
                report: Callable[[dict], None], stop: threading.Event | None) -> dict[str, Any]:
    import torch

    from losslab import npnet
    from losslab.npnet.optim import add_l2_gradient
    from losslab.schedules import learning_rate
    from losslab.train import CURVE_KEYS, TrainConfig
    from losslab.train.data import BatchOrder
    from losslab.train.tracker import DIVERGENCE_FACTOR

    settings = {k: v for k, v in task["train"].items() if k not in _TORCH_ONLY}
    config = TrainConfig(**settings, lr=cell["lr"], weight_decay=cell["weight_decay"],
                         device="cpu")
    dtype = np.float64 if config.dtype == "float64" else np.float32
    seed = int(cell["seed"])
    net = _npnet_model(task, seed, data, dtype)
    loss_options = {k: v for k, v in cell["loss"].items()
                    if k not in ("name", "weight", "validate")}
    criterion = npnet.get_loss(cell["loss"]["name"], **loss_options)
    splits = {}
    for split in ("train", "dev", "test"):
        x, y = getattr(data, f"x_{split}", None), getattr(data, f"y_{split}", None)
        if x is not None and len(x):
            splits[split] = (np.asarray(x).reshape(len(x), -1).astype(dtype, copy=False),
                             np.asarray(y).astype(np.int64, copy=False))
    x_train, y_train = splits["train"]
    order = BatchOrder([seed], len(x_train), config.batch_size, config.shuffle,
                       torch.device("cpu"))
    opt, factor = _optimizer(config, cell["lr"])
    batch = order.batch_size
    records: list[dict[str, float]] = []
    bound = math.inf
    diverged_at = None
    interrupted = False
    start = time.perf_counter()
    net.train()
    step = 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        while step < config.steps:
            epoch = step // order.steps_per_epoch
            rate = learning_rate(config.lr_decay, cell["lr"], epoch, config.decay_rate)
            opt.lr = rate * factor
            index = order.indices(step)[0].numpy()
            xb, yb = x_train[index], y_train[index]
            logits = net.forward(xb)
            value = float(criterion.forward(logits, yb))
            if step == 0:
                bound = DIVERGENCE_FACTOR * max(abs(value), 1.0)
            if not (math.isfinite(value) and abs(value) <= bound):
                diverged_at = step + 1
                break
            net.backward(criterion.backward(), input_grad=False)
            grads = net.grads
            add_l2_gradient(net.params, grads, config.weight_decay * batch, batch)
            opt.step(net.params, grads)
            step += 1
            stopping = stop is not None and stop.is_set()
            if step % config.eval_every == 0 or step == config.steps or stopping:
                row = {"step": float(step), "lr": float(rate),
                       "train_batch_accuracy": float(np.mean(logits.argmax(1) == yb)),
                       "train_batch_loss": value}
                for split in ("train", "dev", "test"):
                    loss = accuracy = math.nan
                    if split in splits and (split != "train" or config.eval_train):
                        loss, accuracy = npnet.evaluate(net, criterion, *splits[split],
                                                        batch_size=config.eval_batch_size)
                    row[f"{split}_accuracy"], row[f"{split}_loss"] = accuracy, loss
                records.append(row)
                report({"step": step, "last_eval": row})
            if stopping:
                interrupted = step < config.steps
                break
    if interrupted:
        return {"cell_id": cell["cell_id"], "status": "interrupted"}
    curves = {k: [r[k] for r in records] for k in CURVE_KEYS}
    final = dict(records[-1]) if records else {k: math.nan for k in CURVE_KEYS}
    return {
        "cell_id": cell["cell_id"],
        "status": "diverged" if diverged_at is not None else "done",
        "error": None,
        "diverged_at": diverged_at,
        "final": final,
        "curves": curves,
        "measurements": [],
        "seconds": time.perf_counter() - start,
        "steps_run": diverged_at if diverged_at is not None else step,
        "best_step": None,
        "stopped_early": False,
        "device": "cpu",
    }
