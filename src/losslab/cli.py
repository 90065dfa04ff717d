"""The ``losslab`` command line: thin, it only calls into the packages.

A :class:`~losslab.errors.LosslabError` is printed as one line on stderr, without
a traceback, and the command exits with status 2.
"""

from __future__ import annotations

import sys

import typer

from losslab.errors import LosslabError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="losslab: a laboratory for loss and activation functions of classifiers.",
)

_CATALOGUES = ("losses", "activations", "models", "datasets")


@app.callback()
def _root() -> None:
    """losslab: a laboratory for loss and activation functions of classifiers."""


@app.command("list")
def list_(what: str = typer.Argument(..., help=f"one of: {', '.join(_CATALOGUES)}")) -> None:
    """List the registered names of a catalogue."""
    if what == "losses":
        from losslab.losses import LOSSES as registry
    elif what == "activations":
        from losslab.activations import ACTIVATIONS as registry
    elif what == "models":
        from losslab.models import MODELS as registry
    elif what == "datasets":
        from losslab.data import DATASETS as registry
    else:
        raise LosslabError(f"unknown catalogue {what!r}; choose one of: {', '.join(_CATALOGUES)}")
    for name in sorted(registry):
        typer.echo(name)


def main() -> None:
    """Entry point of the console script: user errors become one line, exit status 2."""
    try:
        app()
    except LosslabError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
