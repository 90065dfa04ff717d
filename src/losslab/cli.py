"""The ``losslab`` command line: thin, it only calls into the packages.

A :class:`~losslab.errors.LosslabError` is printed as one line on stderr, without
a traceback, and the command exits with status 2.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand

from losslab import __version__
from losslab.errors import LosslabError
from losslab.reproduce import cli as reproduce_cli
from losslab.study import cli as study_cli

# Help texts are plain text: rich markup would swallow "[scales.NAME]" and every other
# bracketed word, so click formats them (it rewraps paragraphs; `\b` keeps a block as is).
app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    no_args_is_help=True,
)
study_cli.register(app)
reproduce_cli.register(app)

_CATALOGUES = ("losses", "activations", "models", "datasets", "studies")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"losslab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True,
        help="print the version and exit",
    ),
) -> None:
    """losslab: a laboratory for the loss and activation functions of classifiers.

    Examples:

      losslab run demo --scale quick

      losslab list losses

      losslab show loss gce --plot
    """


@app.command("list")
def list_(what: str = typer.Argument(..., help=f"one of: {', '.join(_CATALOGUES)}")) -> None:
    """List the registered names of a catalogue (plugins included), or the ready-made
    study files with their descriptions.

    Examples:

      losslab list losses

      losslab list studies
    """
    from losslab import catalogue

    if what == "studies":
        found = catalogue.list_studies()
        if not found:
            places = ", ".join(str(p) for p in catalogue.study_dirs()) or "none found"
            typer.echo(f"no study files (looked in $LOSSLAB_STUDIES, ./studies and the "
                       f"package: {places})")
        for path, name, description in found:
            typer.echo(f"{name:<22} {description}  [{path}]")
        return
    if what not in catalogue.CATALOGUES:
        raise LosslabError(f"unknown catalogue {what!r}; choose one of: {', '.join(_CATALOGUES)}")
    for name in sorted(catalogue.registry(catalogue.CATALOGUES[what])):
        typer.echo(name)


class _OptionalPlotFile(TyperCommand):
    """``--plot`` with its file name optional: a bare ``--plot`` (last, or followed by
    another option) reads as ``--plot ""``, i.e. NAME.png in the current directory."""

    # ctx: typer's own (vendored, private) click Context
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        args = list(args)
        for i, arg in enumerate(args):
            if arg == "--plot" and (i + 1 == len(args) or args[i + 1].startswith("-")):
                args.insert(i + 1, "")
                break
        return super().parse_args(ctx, args)


@app.command("show", cls=_OptionalPlotFile)
def show(
    kind: str = typer.Argument(..., help="loss, activation, model, dataset or study"),
    name: str = typer.Argument(..., help="a registered name or ready-made study "
                               "(losslab list ...)"),
    plot: str = typer.Option(
        None, "--plot", metavar="[FILE]", help="losses only: draw the loss and its derivative "
        "to FILE (.png, .svg or .pdf; without FILE: NAME.png in the current directory)"
    ),
) -> None:
    """Describe one loss, activation, model or dataset: formula or description, seed
    source, parameters with defaults. With --plot (losses), also draw the loss's value
    and derivative with respect to the correct-class output (Janocha & Czarnecki Fig. 1).

    "show study NAME" prints a ready-made study's TOML file as it is: redirect it to a
    file, change it, and run that file (losslab run my.toml).

    Examples:

      losslab show loss alpha --plot

      losslab show loss gce --plot gce.svg

      losslab show dataset checkerboard

      losslab show study demo > my-demo.toml
    """
    from losslab import catalogue

    if kind.strip().lower() in ("study", "studies"):
        if plot is not None:
            raise LosslabError("--plot draws losses only; drop it for a study")
        typer.echo(catalogue.study_file(name).read_text(encoding="utf-8"), nl=False)
        return
    typer.echo(catalogue.describe(kind, name))
    if plot is None:
        return
    if kind.strip().lower() not in ("loss", "losses"):
        raise LosslabError(f"--plot draws losses only; drop it for a {kind}")
    from losslab.registry import resolve
    from losslab.report.figures import loss_shape_data, loss_shapes
    from losslab.report.style import DPI

    if not plot:
        plot = f"{resolve(catalogue.registry('loss'), name, 'loss')[0]}.png"
    target = Path(plot)
    fig = loss_shapes(loss_shape_data([(name, name, {})]))
    formats = fig.canvas.get_supported_filetypes()
    if target.suffix.lower().lstrip(".") not in formats:
        raise LosslabError(
            f"--plot {plot}: unknown image type; end the name in .png, .svg or .pdf"
        )
    if not target.parent.is_dir():
        raise LosslabError(f"--plot {plot}: folder {target.parent} does not exist; create it")
    fig.savefig(target, dpi=DPI)
    typer.echo(f"wrote {target.resolve()}")


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


def _parse_loss_args(items: list[str] | None) -> dict[str, Any]:
    """``["q=0.5", "probability=sigmoid"]`` -> ``{"q": 0.5, "probability": "sigmoid"}``.

    Values are read as int, float, bool (true/false) or else kept as text; nothing is evaluated.
    """
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise LosslabError(f"--loss-arg takes NAME=VALUE, e.g. --loss-arg q=0.5; got {item!r}")
        text = text.strip()
        value: Any = text
        if text.lower() in ("true", "false"):
            value = text.lower() == "true"
        else:
            for kind in (int, float):
                try:
                    value = kind(text)
                    break
                except ValueError:
                    continue
        out[key] = value
    return out


def _build_model(model: str, data: Any, kwargs: dict[str, Any], hidden: str | None) -> Any:
    from losslab.models import for_data

    try:
        return for_data(model, data.input_shape, data.num_classes, **kwargs)
    except RuntimeError as err:
        asked = re.search(r"allocate (\d+) bytes", str(err))
        if asked is None:
            raise
        raise LosslabError(
            f"model {model!r} with --hidden {hidden or kwargs.get('hidden')} asked for "
            f"{int(asked.group(1)) / 2**30:.1f} GiB of memory, more than this machine can "
            "allocate; choose smaller widths"
        ) from None


def _check_out(out: str | None) -> Path | None:
    """The --out file: refused before training if it exists or its folder cannot be written."""
    if out is None:
        return None
    path = Path(out).expanduser()
    if path.exists():
        raise LosslabError(f"--out {out} already exists; delete it or choose another file name")
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise LosslabError(f"--out {out}: the folder {path.parent} is missing or not writable")
    return path


_LOSS_ARG = typer.Option(
    None, "--loss-arg", help="a loss option NAME=VALUE, e.g. q=0.5 (repeatable)"
)


@app.command("train")
def train_(
    dataset: str = typer.Option(..., "--dataset", help="a dataset name (losslab list datasets)"),
    model: str = typer.Option(None, "--model", help="a model name (default: per dataset)"),
    loss: str = typer.Option("log", "--loss", help="a loss name (losslab list losses)"),
    loss_arg: list[str] = _LOSS_ARG,
    activation: str = typer.Option(None, "--activation", help="hidden activation (default relu)"),
    optimizer: str = typer.Option("adam", "--optimizer", help="sgd, momentum, rmsprop or adam"),
    lr: float = typer.Option(None, "--lr", help="learning rate (default: per dataset)"),
    batch_size: int = typer.Option(None, "--batch-size", help="mini-batch size"),
    steps: int = typer.Option(None, "--steps", help="optimizer steps"),
    hidden: str = typer.Option(None, "--hidden", help="MLP hidden widths, e.g. 256,128"),
    eval_every: int = typer.Option(None, "--eval-every", help="evaluate every k steps"),
    seed: int = typer.Option(0, "--seed", help="seed of weights, batch order and data split"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda"),
    root: str | None = typer.Option(
        None, "--root", help="directory holding the data files (arrays: the .npz/.csv file)"
    ),
    as_json: bool = typer.Option(False, "--json", help="last stdout line: a JSON summary"),
    out: str = typer.Option(None, "--out", help="write the summary and curves to FILE.json"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress display"),
    yes: bool = typer.Option(False, "--yes", "-y", help="run even if it would take long"),
) -> None:
    """Train one model on one dataset and print its final metrics.

    A progress bar runs on stderr (plain lines when stderr is not a terminal, nothing
    with --quiet). Ctrl-C stops after the current step and prints the result so far
    (marked interrupted, exit status 130); a second Ctrl-C aborts.

    Examples:

      losslab train --dataset digits --loss cauchy_schwarz --steps 2000 --json

      losslab train --dataset checkerboard --loss gce --loss-arg q=0.5 --hidden 64,64
    """
    from losslab.console import interruptible
    from losslab.data import (
        DATASETS,
        FALLBACK_TRAIN_DEFAULTS,
        FILELESS,
        TRAIN_DEFAULTS,
        load_dataset,
    )
    from losslab.losses import LOSSES, get_loss
    from losslab.models import MODELS
    from losslab.registry import resolve
    from losslab.train import TrainConfig, train
    from losslab.train.console import ProgressDisplay

    key, _ = resolve(DATASETS, dataset, "dataset")
    loss, _ = resolve(LOSSES, loss, "loss")
    loss_kwargs = _parse_loss_args(loss_arg)
    get_loss(loss, **loss_kwargs)  # refuses unknown options and bad values before any work
    if root is not None and key in FILELESS:
        raise LosslabError(f"--root: dataset {key!r} reads no files; drop --root")
    out_path = _check_out(out)
    defaults = TRAIN_DEFAULTS.get(key, FALLBACK_TRAIN_DEFAULTS)
    model, _ = resolve(MODELS, model or defaults["model"], "model")
    config = TrainConfig(
        optimizer=optimizer,
        lr=defaults["lr"] if lr is None else lr,
        batch_size=defaults["batch_size"] if batch_size is None else batch_size,
        steps=defaults["steps"] if steps is None else steps,
        seed=seed,
        device=device,
        shuffle=defaults.get("shuffle", True),
        eval_every=defaults.get("eval_every", 500) if eval_every is None else eval_every,
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
        model_kwargs["hidden"] = widths if model == "mlp" else widths[0]
    if activation is not None:
        model_kwargs["activation"] = activation
    if "init" in defaults:
        model_kwargs["init"] = defaults["init"]
    net = _build_model(model, data, model_kwargs, hidden)
    _check_duration(net, data, config, yes, quiet)
    # The trainer caps the batch at the training-set size; say so rather than hide it.
    used_batch = min(config.batch_size, len(data.y_train))
    with interruptible() as stop, ProgressDisplay("quiet" if quiet else "auto") as progress:
        result = train(net, data, loss, config, progress=progress, stop=stop, **loss_kwargs)
    seconds = time.perf_counter() - started
    final = result.final
    summary = {
        "dataset": key,
        "model": model,
        "loss": loss,
        "loss_kwargs": loss_kwargs,
        "activation": activation or "relu",
        "optimizer": config.optimizer,
        "lr": config.lr,
        "batch_size": used_batch,
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
    options = "".join(f" {k}={v}" for k, v in loss_kwargs.items())
    capped = f" (capped from {config.batch_size})" if used_batch < config.batch_size else ""
    typer.echo(
        f"{key} | {model} | loss {loss}{options} | {config.optimizer} lr {config.lr:g} | "
        f"batch {used_batch}{capped} | {result.steps_run} steps | {seconds:.1f} s"
    )
    if result.diverged:
        typer.echo(f"diverged at step {result.diverged_at} (lower --lr)")
    if result.interrupted:
        typer.echo(f"interrupted after {result.steps_run} of {config.steps} steps (Ctrl-C)")
    typer.echo(f"train accuracy {final['train_accuracy']:.4f}  loss {final['train_loss']:.4f}")
    typer.echo(f"test  accuracy {final['test_accuracy']:.4f}  loss {final['test_loss']:.4f}")
    clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()}
    if out_path is not None:
        tmp = out_path.with_name(out_path.name + ".tmp")
        tmp.write_text(json.dumps({**clean, "result": result.to_dict()}, indent=1))
        os.replace(tmp, out_path)
        typer.echo(f"wrote {out_path}")
    if as_json:
        typer.echo(json.dumps(clean))
    if result.interrupted:
        raise typer.Exit(130)


# A run estimated to take longer than this asks for --yes first (seconds).
_LONG_RUN = 600.0


def _check_duration(net: Any, data: Any, config: Any, yes: bool, quiet: bool) -> None:
    """Print the estimated time of a long run; refuse one over ``_LONG_RUN`` without --yes."""
    from losslab.console import rough_duration
    from losslab.train.console import estimate_seconds

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
            f"would take about {rough_duration(seconds)} here; pass --yes to run it anyway, or "
            "lower --steps"
        )
    if seconds > 60 and not quiet:
        typer.echo(
            f"estimated time: about {rough_duration(seconds)} ({epochs:.0f} epochs)", err=True
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
