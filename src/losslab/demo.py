"""The interim demo: the loss catalogue, each loss's shape and its derivative.

``python -m losslab.demo --out DIR`` prints the catalogue (registry name, formula,
seed) and writes

* ``DIR/losses.png``: every loss of :data:`losslab.losses.LOSSES` and its derivative
  with respect to the correct-class output o (logits ``(o, 0, 0, 0)``, label 0; the
  two-scale ones at scale R = 1), by autograd: the report's first figure
  (:func:`losslab.report.figures.loss_shapes`);
* ``DIR/index.html``: a minimal page with the figure and the catalogue table.

It runs in a few seconds on a CPU. Seeds: Janocha & Czarnecki 2017 (Table 1, Fig. 1
plots the same curves), Berlyand, Creese & Jabin 2021, Mendez-Vazquez slides.
"""

from __future__ import annotations

import argparse
import html
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from losslab.errors import LosslabError
from losslab.losses import LOSSES
from losslab.report.figures import loss_shape_data, loss_shapes
from losslab.report.style import DPI


def catalogue() -> list[tuple[str, str, str]]:
    """(registry name, formula, seed) of every registered loss, in registry order."""
    return [(name, cls.formula, cls.seed) for name, cls in LOSSES.items()]


def plot_losses(path: Path) -> None:
    """Write the report's loss-shape figure of every registered loss as a PNG.

    Janocha & Czarnecki 2017, Fig. 1: each loss and its derivative with respect to the
    correct-class output, drawn by :func:`losslab.report.figures.loss_shapes`.
    """
    fig = loss_shapes(loss_shape_data([(name, name, {}) for name in LOSSES]))
    fig.savefig(path, dpi=DPI)


def write_html(rows: Sequence[tuple[str, str, str]], image: str, path: Path) -> None:
    """A self-contained page: the figure and the catalogue table, every text escaped."""
    body = "\n".join(
        f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(formula)}</td>"
        f"<td>{html.escape(seed)}</td></tr>"
        for name, formula, seed in rows
    )
    path.write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>losslab: loss catalogue</title>
<style>body{{font-family:sans-serif;max-width:1200px;margin:auto}}
td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}}
table{{border-collapse:collapse}} img{{max-width:100%}}</style></head>
<body><h1>losslab: loss catalogue</h1>
<p>Each loss as a function of the correct-class output o, logits (o, 0, 0, 0), and its
derivative (two-scale losses at model scale R = 1).</p>
<img src="{html.escape(image)}" alt="loss curves and derivatives">
<table><tr><th>registry name</th><th>per-sample value</th><th>seed</th></tr>
{body}
</table></body></html>
""",
        encoding="utf-8",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m losslab.demo --out DIR``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m losslab.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=Path("demo-output"), help="output folder")
    args = parser.parse_args(argv)
    try:
        if args.out.exists() and not args.out.is_dir():
            raise LosslabError(f"--out {args.out} exists and is not a folder; choose another path")
        try:
            args.out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise LosslabError(
                f"--out {args.out}: cannot create the folder ({err.strerror}); "
                "choose a writable path"
            ) from None
        if not os.access(args.out, os.W_OK):
            raise LosslabError(f"--out {args.out}: the folder is not writable; choose another")
        rows = catalogue()
        width = max(len(name) for name, _, _ in rows)
        for name, formula, seed in rows:
            print(f"{name:<{width}}  {formula}  [{seed}]")
        plot_losses(args.out / "losses.png")
        write_html(rows, "losses.png", args.out / "index.html")
    except LosslabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / 'losses.png'} and {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
