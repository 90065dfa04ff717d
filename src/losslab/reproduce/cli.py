"""The reproduction verbs of the ``losslab`` command line: ``reproduce`` and ``publish``.

Registered on ``losslab.cli:app`` by :func:`register`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from losslab.errors import LosslabError


def _root() -> Path:
    """The checkout: the current directory if it holds REPRODUCTION.md or
    studies/claims.toml (a checkout-like folder of one's own), else the one that holds
    this package's sources."""
    from losslab.reproduce.document import DOCUMENT

    here = Path.cwd()
    if (here / DOCUMENT).is_file() or (here / "studies" / "claims.toml").is_file():
        return here
    source = Path(__file__).resolve().parents[3]
    if (source / DOCUMENT).is_file():
        return source
    raise LosslabError(f"no {DOCUMENT} here or in the losslab checkout; run "
                       "`losslab reproduce` from the repository's root")


def reproduce(
    check: bool = typer.Option(False, "--check", help="write nothing; exit 1, naming each "
                               "difference, when REPRODUCTION.md or a studies table is not "
                               "what the results give, results/estimates.json not what the "
                               "study files give, or a committed result is no longer planned "
                               "by its study file"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object per claim "
                                 "instead of writing REPRODUCTION.md"),
    estimate: bool = typer.Option(False, "--estimate", help="first measure this machine's "
                                  "rates and write results/estimates.json (every study's "
                                  "cells, FLOPs and time on 2 CPU cores)"),
) -> None:
    """Judge every claim of the claims file (src/losslab/studies/claims.toml) on the
    committed results (results/) and write REPRODUCTION.md and the studies tables of
    README.md and docs/.

    Examples: losslab reproduce; losslab reproduce --check; losslab reproduce --json;
    losslab reproduce --estimate (on an idle machine)
    """
    from losslab.reproduce import document, table
    from losslab.reproduce.claims import load_claims

    root = _root()
    if estimate:
        from losslab.reproduce.estimates import write

        typer.echo(f"wrote {write(document.studies_dir(root), root / 'results')}")
    if check:
        notes: list[str] = []
        problems = document.check(root, notes)
        for note in notes:
            typer.echo(f"note: {note}")
        for problem in problems:
            typer.echo(problem, err=True)
        if problems:
            sys.exit(1)
        typer.echo(f"{document.DOCUMENT} is what the claims and the committed results give")
        return
    claims = load_claims(document.studies_dir(root) / "claims.toml")
    results = document.reproduce(root, claims)
    if as_json:
        typer.echo(json.dumps(document.as_json(results), indent=1, ensure_ascii=False))
        return
    target = root / document.DOCUMENT
    target.write_text(document.render(results, claims, root / "results"), encoding="utf-8")
    typer.echo(f"wrote {target}")
    table.update(root, document.studies_dir(root))


def publish(
    directory: str = typer.Argument(..., help="a study directory written by losslab run"),
    to: str = typer.Option(None, "--to", help="folder to write (default "
                           "results/<study>/<scale>)"),
    scale: str = typer.Option(None, "--scale", help="the scale expected of the last run"),
) -> None:
    """Write the compact, committed form of a study's results (cells.csv, curves and
    measurements as gzip CSV, run.json with the runs' machine, load, commit and times).

    Example: losslab publish results/twoscale-mnist
    """
    from losslab.study import compact

    out = compact.publish(directory, to, scale)
    size = compact.total_megabytes(out)
    typer.echo(f"wrote {out} ({size:.2f} MB)")
    total = compact.total_megabytes(out.parent.parent)
    if total > compact.MAX_TOTAL_MB:
        typer.echo(f"warning: the compact results under {out.parent.parent} take "
                   f"{total:.1f} MB, more than the {compact.MAX_TOTAL_MB:.0f} MB budget", err=True)


def register(app: typer.Typer) -> None:
    """Add the reproduction verbs to the ``losslab`` app."""
    app.command("reproduce")(reproduce)
    app.command("publish")(publish)
