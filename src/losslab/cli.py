"""The ``losslab`` command line: thin, it only calls into the packages.

A :class:`~losslab.errors.LosslabError` is printed as one line on stderr, without
a traceback, and the command exits with status 2.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import typer

from losslab.errors import LosslabError
from losslab.study import cli as study_cli

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="losslab: a laboratory for loss and activation functions of classifiers.",
)
study_cli.register(app)

_CATALOGUES = ("losses", "activations", "models", "datasets", "studies")


@app.callback()
def _root() -> None:
    """losslab: a laboratory for loss and activation functions of classifiers."""


@app.command("list")
def list_(what: str = typer.Argument(..., help=f"one of: {', '.join(_CATALOGUES)}")) -> None:
    """List the registered names of a catalogue (plugins included), or the ready-made
    study files with their descriptions.

    Examples: losslab list losses; losslab list studies
    """
    from losslab import catalogue

    if what == "studies":
        found = catalogue.list_studies()
        if not found:
            places = ", ".join(str(p) for p in catalogue.study_dirs()) or "none found"
            typer.echo(f"no study files (looked in ./studies, $LOSSLAB_STUDIES: {places})")
        for path, name, description in found:
            typer.echo(f"{name:<22} {description}  [{path}]")
        return
    if what not in catalogue.CATALOGUES:
        raise LosslabError(f"unknown catalogue {what!r}; choose one of: {', '.join(_CATALOGUES)}")
    for name in sorted(catalogue.registry(catalogue.CATALOGUES[what])):
        typer.echo(name)


@app.command("show")
def show(
    kind: str = typer.Argument(..., help="loss, activation, model or dataset"),
    name: str = typer.Argument(..., help="a registered name (losslab list ...)"),
) -> None:
    """Describe one loss, activation, model or dataset: formula or description, seed
    source, parameters with defaults.

    Examples: losslab show loss alpha; losslab show dataset checkerboard
    """
    from losslab import catalogue

    typer.echo(catalogue.describe(kind, name))


# Per-dataset defaults of ``losslab train`` (MNIST-1D: Greydanus & Kobak, ICML 2024).
# steps ~ 5 epochs for the 60k-image sets; mnist1d follows the paper: Adam 1e-2, batch 100,
# 6000 steps, batches in order, PyTorch's default init.
_IMAGE_MLP: dict[str, Any] = {
    "model": "mlp",
    "hidden": [256],
    "lr": 1e-3,
    "batch_size": 100,
    "steps": 3000,
    "standardize": True,
}
_TRAIN_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"model": "mlp", "hidden": [100], "lr": 1e-3, "batch_size": 100, "steps": 2000},
    "mnist1d": {
        "model": "mnist1d_cnn",
        "lr": 1e-2,
        "batch_size": 100,
        "steps": 6000,
        "shuffle": False,
        "init": "torch",
        "eval_every": 250,
    },
    "fashion_mnist": _IMAGE_MLP,
    "mnist": _IMAGE_MLP,
    "cifar10": {
        "model": "janocha_convnet",
        "lr": 1e-3,
        "batch_size": 100,
        "steps": 2000,
        "standardize": True,
    },
    "cifar100": {
        "model": "janocha_convnet",
        "lr": 1e-3,
        "batch_size": 100,
        "steps": 2000,
        "standardize": True,
    },
    "checkerboard": {
        "model": "mlp",
        "hidden": [200] * 3,
        "lr": 1e-3,
        "batch_size": 50,
        "steps": 3000,
    },
    "spirals": {"model": "mlp", "hidden": [200] * 3, "lr": 1e-3, "batch_size": 50, "steps": 3000},
    "random_labels": {
        "model": "mlp",
        "hidden": [200] * 3,
        "lr": 1e-3,
        "batch_size": 50,
        "steps": 3000,
    },
}
_FALLBACK = {"model": "mlp", "hidden": [100], "lr": 1e-3, "batch_size": 100, "steps": 2000}


def _parse_hidden(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        widths = [int(w) for w in text.replace(" ", "").split(",") if w]
    except ValueError:
        raise LosslabError(
            f"--hidden takes comma-separated widths like 256,128; got {text!r}"
        ) from None
    if any(w < 1 for w in widths):
        raise LosslabError(f"--hidden widths must be >= 1, got {text!r}")
    return widths


@app.command("train")
def train_(
    dataset: str = typer.Option(..., "--dataset", help="a dataset name (losslab list datasets)"),
    model: str = typer.Option(None, "--model", help="a model name (default: per dataset)"),
    loss: str = typer.Option("log", "--loss", help="a loss name (losslab list losses)"),
    activation: str = typer.Option(None, "--activation", help="hidden activation (default relu)"),
    optimizer: str = typer.Option("adam", "--optimizer", help="sgd, momentum, rmsprop or adam"),
    lr: float = typer.Option(None, "--lr", help="learning rate (default: per dataset)"),
    batch_size: int = typer.Option(None, "--batch-size", help="mini-batch size"),
    steps: int = typer.Option(None, "--steps", help="optimizer steps"),
    hidden: str = typer.Option(None, "--hidden", help="MLP hidden widths, e.g. 256,128"),
    eval_every: int = typer.Option(None, "--eval-every", help="evaluate every k steps"),
    seed: int = typer.Option(0, "--seed", help="seed of weights, batch order and data split"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    root: str = typer.Option(
        None, "--root", help="directory holding the data files (arrays: the .npz/.csv file)"
    ),
    as_json: bool = typer.Option(False, "--json", help="last stdout line: a JSON summary"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress display"),
    yes: bool = typer.Option(False, "--yes", "-y", help="run even if it would take long"),
) -> None:
    """Train one model on one dataset and print its final metrics.

    A progress bar runs on stderr (plain lines when stderr is not a terminal, nothing
    with --quiet). Ctrl-C stops after the current step and prints the result so far
    (marked interrupted, exit status 130); a second Ctrl-C aborts.
    """
    from losslab.data import DATASETS, load_dataset
    from losslab.models import for_data
    from losslab.registry import lookup
    from losslab.train import TrainConfig, train
    from losslab.train.console import ProgressDisplay, interruptible

    lookup(DATASETS, dataset, "dataset")
    key = dataset.strip().lower().replace("-", "_")
    defaults = _TRAIN_DEFAULTS.get(key, _FALLBACK)
    model = (model or defaults["model"]).strip().lower().replace("-", "_")
    config = TrainConfig(
        optimizer=optimizer,
        lr=defaults["lr"] if lr is None else lr,
        batch_size=defaults["batch_size"] if batch_size is None else batch_size,
        steps=defaults["steps"] if steps is None else steps,
        seed=seed,
        device=device,
        shuffle=defaults.get("shuffle", True),
        eval_every=eval_every or defaults.get("eval_every", 500),
    )
    config.eval_every = min(config.eval_every, config.steps)
    started = time.perf_counter()
    source: dict[str, Any] = {}
    if key == "arrays":
        if root is None:
            raise LosslabError(
                "--dataset arrays trains on your own data: pass --root FILE, an .npz file "
                "with x, y (optionally x_test, y_test) or a .csv file (label in the last "
                "column or a column named 'label')"
            )
        source["path"], root = root, None
    data = load_dataset(
        key, root, seed=seed, standardize=defaults.get("standardize", False), **source
    )
    model_kwargs: dict[str, Any] = {"seed": seed}
    widths = _parse_hidden(hidden)
    if widths is not None or (model == defaults["model"] and "hidden" in defaults):
        widths = widths if widths is not None else defaults["hidden"]
        if model != "mlp":
            # Only mlp takes a list of widths; the other models take one width or none.
            if len(widths) != 1:
                raise LosslabError(
                    f"--hidden: model {model!r} takes a single width (e.g. --hidden 128), "
                    f"got {hidden!r}; several widths need --model mlp"
                )
            widths = widths[0]
        model_kwargs["hidden"] = widths
    if activation is not None:
        model_kwargs["activation"] = activation
    if "init" in defaults:
        model_kwargs["init"] = defaults["init"]
    net = for_data(model, data.input_shape, data.num_classes, **model_kwargs)
    _check_duration(net, data, config, yes, quiet)
    with interruptible() as stop, ProgressDisplay("quiet" if quiet else "auto") as progress:
        result = train(net, data, loss, config, progress=progress, stop=stop)
    seconds = time.perf_counter() - started
    final = result.final
    summary = {
        "dataset": key,
        "model": model,
        "loss": loss,
        "activation": activation or "relu",
        "optimizer": config.optimizer,
        "lr": config.lr,
        "batch_size": config.batch_size,
        "steps": result.steps_run,
        "seed": seed,
        "train_accuracy": final["train_accuracy"],
        "test_accuracy": final["test_accuracy"],
        "train_loss": final["train_loss"],
        "test_loss": final["test_loss"],
        "diverged": result.diverged,
        "interrupted": result.interrupted,
        "seconds": round(seconds, 3),
    }
    typer.echo(
        f"{key} | {model} | loss {loss} | {config.optimizer} lr {config.lr:g} | "
        f"batch {config.batch_size} | {result.steps_run} steps | {seconds:.1f} s"
    )
    if result.diverged:
        typer.echo(f"diverged at step {result.diverged_at} (lower --lr)")
    if result.interrupted:
        typer.echo(f"interrupted after {result.steps_run} of {config.steps} steps (Ctrl-C)")
    typer.echo(f"train accuracy {final['train_accuracy']:.4f}  loss {final['train_loss']:.4f}")
    typer.echo(f"test  accuracy {final['test_accuracy']:.4f}  loss {final['test_loss']:.4f}")
    if as_json:
        clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()}
        typer.echo(json.dumps(clean))
    if result.interrupted:
        raise typer.Exit(130)


# A run estimated to take longer than this asks for --yes first (seconds).
_LONG_RUN = 600.0


def _check_duration(net: Any, data: Any, config: Any, yes: bool, quiet: bool) -> None:
    """Print the estimated time of a long run; refuse one over ``_LONG_RUN`` without --yes."""
    from losslab.train.console import estimate_seconds, format_seconds

    n = len(data.y_train)
    evaluated = n + sum(len(y) for y in (data.y_dev, data.y_test) if y is not None)
    parameters = sum(p.numel() for p in net.parameters())
    seconds = estimate_seconds(
        parameters,
        min(config.batch_size, n),
        config.steps,
        evaluated,
        config.steps // config.eval_every + 1,
    )
    epochs = config.steps * min(config.batch_size, n) / n
    if seconds > _LONG_RUN and not yes:
        raise LosslabError(
            f"--steps {config.steps} is {epochs:.0f} epochs of the {n} training samples and "
            f"would take about {format_seconds(seconds)} here; pass --yes to run it anyway, or "
            "lower --steps"
        )
    if seconds > 60 and not quiet:
        typer.echo(
            f"estimated time: about {format_seconds(seconds)} ({epochs:.0f} epochs)", err=True
        )


def main() -> None:
    """Entry point of the console script: user errors become one line, exit status 2."""
    try:
        app()
    except LosslabError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
