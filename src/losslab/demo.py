"""The interim demo: the loss catalogue, each loss's shape and its derivative.

``python -m losslab.demo --out DIR`` prints the catalogue (registry name, formula,
seed) and writes

* ``DIR/losses.png``: every loss of :data:`losslab.losses.LOSSES` except the two-scale
  ones (they need a model's parameter scale R) as a function of the correct-class
  logit margin ``m`` for C = 4 classes, logits ``(m, 0, 0, 0)`` and label 0, next to
  its derivative d loss / d m taken by autograd;
* ``DIR/index.html``: a minimal page with the figure and the catalogue table.

It runs in a few seconds on a CPU. Seeds: Janocha & Czarnecki 2017 (Table 1, Fig. 1
plots the same curves), Berlyand, Creese & Jabin 2021, Mendez-Vazquez slides.
"""

from __future__ import annotations

import argparse
import html
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure

from losslab.errors import LosslabError
from losslab.losses import LOSSES, get_loss
from losslab.losses.two_scale import TWO_SCALE_LOSSES

C = 4
MARGINS = np.linspace(-6.0, 6.0, 241)


def catalogue() -> list[tuple[str, str, str]]:
    """(registry name, formula, seed) of every registered loss, in registry order."""
    return [(name, cls.formula, cls.seed) for name, cls in LOSSES.items()]


def margin_curves(
    margins: np.ndarray = MARGINS, num_classes: int = C
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    r"""Each single-scale loss and its derivative along the correct-class margin.

    For margin m the logits are :math:`(m, 0, \dots, 0)` and the label is 0, so
    :math:`p_c = e^m / (e^m + C - 1)`. Computed in float64 with ``reduction="none"``.

    Args:
        margins: the K margins m, shape (K,); default 241 points in [-6, 6].
        num_classes: C >= 2, default 4.

    Returns:
        name -> (loss values (K,), d loss / d m (K,)) for every loss of the registry
        except the two-scale ones.
    """
    logits = torch.zeros(len(margins), num_classes, dtype=torch.float64)
    logits[:, 0] = torch.as_tensor(margins, dtype=torch.float64)
    labels = torch.zeros(len(margins), dtype=torch.int64)
    curves = {}
    for name in LOSSES:
        if name in TWO_SCALE_LOSSES:
            continue
        o = logits.clone().requires_grad_(True)
        values = get_loss(name, reduction="none")(o, labels)
        # The samples are independent, so the gradient of the sum holds each d loss_i / d m_i.
        (grad,) = torch.autograd.grad(values.sum(), o)
        curves[name] = (values.detach().numpy(), grad[:, 0].numpy())
    return curves


def plot_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], margins: np.ndarray, path: Path):
    """Write the two panels (loss, derivative) as a PNG; symlog axes fit L2 and cubed hinge."""
    fig = Figure(figsize=(13, 5.5), layout="constrained")
    ax_value, ax_grad = fig.subplots(1, 2)
    # 15 curves: tab20 colours plus alternating dashes keep every one distinguishable.
    colours = colormaps["tab20"].colors
    for i, (name, (values, grads)) in enumerate(curves.items()):
        style = {"color": colours[i % len(colours)], "linestyle": "-" if i % 2 == 0 else "--"}
        ax_value.plot(margins, values, label=name, **style)
        ax_grad.plot(margins, grads, label=name, **style)
    for ax, title in (
        (ax_value, "loss"),
        (ax_grad, "d loss / d m (autograd)"),
    ):
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel(f"correct-class logit margin m (logits (m, 0, ..., 0), C = {C})")
        ax.set_title(title)
        ax.axvline(0.0, color="grey", linewidth=0.5)
        ax.grid(alpha=0.3)
    ax_grad.legend(fontsize=8, ncol=2, loc="lower right")
    fig.savefig(path, dpi=110)


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
<p>Each loss (except the two-scale ones, which need a model) as a function of the
correct-class logit margin m, logits (m, 0, 0, 0), and its derivative.</p>
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
        args.out.mkdir(parents=True, exist_ok=True)
        rows = catalogue()
        width = max(len(name) for name, _, _ in rows)
        for name, formula, seed in rows:
            print(f"{name:<{width}}  {formula}  [{seed}]")
        plot_curves(margin_curves(), MARGINS, args.out / "losses.png")
        write_html(rows, "losses.png", args.out / "index.html")
    except LosslabError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out / 'losses.png'} and {args.out / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
