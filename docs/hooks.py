"""mkdocs hooks: the generated parts of the docs site.

- ``gallery/losses.md`` and ``gallery/activations.md``: one card per registered loss and
  activation (plugins included), with a picture of its value and derivative drawn by
  autograd at build time, so the galleries always show what the code computes.
- ``reproduction.md`` and ``changelog.md``: REPRODUCTION.md and CHANGELOG.md of the
  repository, whose links to repository files (not pages of the site) become plain text.
- Math (``$...$`` / ``$$...$$`` in the pages and the docstrings) becomes MathML at build
  time, which browsers render without any script: the site works offline.

A loss or activation from a plugin appears when its module is imported: list the modules
under ``extra: plugins:`` in mkdocs.yml or in ``$LOSSLAB_DOCS_PLUGINS`` (comma-separated);
entry-point plugins (``losslab.plugins``) are loaded as ``losslab list`` loads them.
"""

from __future__ import annotations

import html
import inspect
import io
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

# Hyper-parameter settings drawn for the built-in entries: values that show the family's
# range (alpha = 1 is log loss and alpha = inf is 1 - p_c; gce's q = 1 is 1 - p_c).
# Entries not listed get their first numeric parameter at 0.5x, 1x and 2x its default.
LOSS_SETTINGS: dict[str, tuple[str, Sequence[Any]]] = {
    "alpha": ("alpha", (1.0, 2.0, math.inf)),
    "gce": ("q", (0.3, 0.7, 1.0)),
    "truncated_log": ("k", (0.1, 0.3, 0.5)),
    "two_scale": ("eta", (0.5, 1.0, 2.0)),
    "two_scale_fixed": ("eta", (0.5, 1.0, 2.0)),
    "two_scale_separation": ("eta", (0.5, 1.0, 2.0)),
}
ACTIVATION_SETTINGS: dict[str, tuple[str, Sequence[Any]]] = {
    "sigmoid": ("a", (0.5, 1.0, 2.0)),
    "softplus": ("k", (0.5, 1.0, 3.0)),
    "leaky_relu": ("alpha", (0.01, 0.1, 0.3)),
    "prelu": ("init", (0.05, 0.25, 0.5)),
    "elu": ("alpha", (0.5, 1.0, 2.0)),
    "swish": ("beta", (0.5, 1.0, 3.0)),
    "gelu": ("approximate", ("none", "tanh")),
    "adaptive_relu": ("init_slope", (0.1, 0.25, 0.5)),
}
# Parameters that are not hyper-parameters of the function's shape.
_NOT_SHAPE = {"reduction", "weight", "validate", "probability", "num_parameters", "r1", "r2",
              "rs", "trainable", "baseline", "scale", "base", "init_weight", "self"}
LOGITS = (-6.0, 6.0)
NUM_CLASSES = 4
POINTS = 241
DPI = 80
_STYLES = ("-", "--", ":")
_COLOURS = ("#1f4e79", "#c0504d", "#4f8a3c")


# --------------------------------------------------------------------------- mkdocs events
def on_config(config: Any) -> Any:
    """Document the checkout being built: its ``src`` first on the import path (an
    environment may hold another losslab, e.g. an editable install of another tree)."""
    src = str(Path(config.config_file_path).parent / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    return config


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages and pictures to the site's files."""
    from mkdocs.structure.files import File

    root = Path(config.config_file_path).parent
    import_plugins(plugin_modules(config.extra.get("plugins")))
    from losslab import catalogue

    losses_md, loss_images = loss_gallery(catalogue.registry("loss"))
    activations_md, activation_images = activation_gallery(catalogue.registry("activation"))
    pages = {
        "gallery/losses.md": losses_md,
        "gallery/activations.md": activations_md,
        "reproduction.md": repository_page(root / "REPRODUCTION.md", Path(config.docs_dir)),
        "changelog.md": repository_page(root / "CHANGELOG.md", Path(config.docs_dir)),
    }
    for uri, text in pages.items():
        files.append(File.generated(config, uri, content=text))
    for uri, data in {**loss_images, **activation_images}.items():
        files.append(File.generated(config, f"gallery/{uri}", content=data))
    return files


LOSS_TABLE = "<!-- the loss table: generated from the registry at build time (docs/hooks.py) -->"


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Put the registry's table of losses where a page asks for it."""
    if LOSS_TABLE in markdown:
        from losslab import catalogue

        markdown = markdown.replace(LOSS_TABLE, catalogue.loss_table(catalogue.registry("loss")))
    return markdown


def on_page_content(html_text: str, **kwargs: Any) -> str:
    """Render the math of the page (arithmatex's spans and divs) as MathML."""
    return mathml(html_text)


# --------------------------------------------------------------------------- plugins
def plugin_modules(configured: Sequence[str] | str | None) -> list[str]:
    """Module names from mkdocs.yml's ``extra.plugins`` and ``$LOSSLAB_DOCS_PLUGINS``."""
    if isinstance(configured, str):
        configured = [configured]
    names = list(configured or [])
    names += [m.strip() for m in os.environ.get("LOSSLAB_DOCS_PLUGINS", "").split(",")]
    return [m for m in dict.fromkeys(names) if m]


def import_plugins(modules: Sequence[str]) -> None:
    """Import each plugin module (and the entry-point plugins), so that their entries
    are in the registries the galleries enumerate."""
    from losslab.plugins import import_modules, load_plugins

    load_plugins()
    import_modules(list(modules))


# --------------------------------------------------------------------------- math
_ARITHMATEX = re.compile(
    r'<(span|div) class="arithmatex">\s*\\[(\[](.*?)\\[)\]]\s*</\1>', re.DOTALL
)


def mathml(html_text: str) -> str:
    """Replace arithmatex's ``\\(...\\)`` / ``\\[...\\]`` by MathML (inline / block).

    TeX that latex2mathml cannot read stays visible as code rather than breaking the build.
    """
    from latex2mathml.converter import convert

    def one(match: re.Match[str]) -> str:
        tag, tex = match.group(1), html.unescape(match.group(2)).strip()
        try:
            rendered = convert(tex, display="block" if tag == "div" else "inline")
        except Exception:  # noqa: BLE001 - any TeX it cannot parse is shown as written
            return f"<code>{html.escape(tex)}</code>"
        return f'<div class="math">{rendered}</div>' if tag == "div" else rendered

    return _ARITHMATEX.sub(one, html_text)


# --------------------------------------------------------------------------- repository pages
_LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def repository_page(path: Path, docs_dir: Path) -> str:
    """A Markdown file of the repository as a page of the site.

    Links to pages of the site, to anchors and to the web stay; links to other repository
    files (studies, tests, sources), which the site does not hold, become their text; and
    text that only looks like a link (``mlp[512x2](dropout=0.5)``) is shown as written.
    """
    if not path.is_file():
        return f"# {path.stem}\n\n`{path.name}` is not in this checkout.\n"
    text = path.read_text(encoding="utf-8")

    def link(match: re.Match[str]) -> str:
        bang, label, target = match.groups()
        if target.startswith(("#", "http://", "https://", "mailto:")):
            return match.group(0)
        if (docs_dir / target.split("#")[0]).is_file():
            return match.group(0)
        if (path.parent / target.split("#")[0]).exists():
            return f"`{target}`" if bang or not label else label
        return f"{bang}\\[{label}\\]({target})"

    return _LINK.sub(link, text)


# --------------------------------------------------------------------------- galleries
def _first_math(doc: str) -> str | None:
    """The TeX of the docstring's first ``.. math::`` block (one line or indented lines)."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith(".. math::"):
            first = line.strip()[len(".. math::"):].strip()
            if first:
                return first
            body = []
            for nxt in lines[i + 1:]:
                if body and not nxt.strip():
                    break
                if nxt.strip():
                    body.append(nxt.strip())
            return " ".join(body) or None
    return None


def _seed_line(entry: Any, doc: str) -> str:
    seed = getattr(entry, "seed", None)
    if isinstance(seed, str) and seed:
        return seed
    found = re.search(r"^Seed:\s*(.+?)(?:\n\s*\n|$)", doc, re.MULTILINE | re.DOTALL)
    return " ".join(found.group(1).split()) if found else "not stated"


def _plain(text: str) -> str:
    """Docstring text for a Markdown table cell: RST roles and literals as code spans."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    return " ".join(text.split()).replace("|", "\\|")


def settings(name: str, entry: Callable[..., Any],
             table: Mapping[str, tuple[str, Sequence[Any]]]) -> tuple[str | None, list[Any]]:
    """The hyper-parameter drawn and its values: from ``table``, else the first numeric
    keyword of ``entry`` at 0.5x, 1x and 2x its default, else none."""
    if name in table:
        param, values = table[name]
        return param, list(values)
    try:
        params = list(inspect.signature(entry).parameters.values())
    except (TypeError, ValueError):
        return None, []
    declared = getattr(entry, "hyper_parameters", None)
    if declared:  # a loss made by define_loss names its own options first
        params = [p for p in params if p.name in declared]
    for p in params:
        default = p.default
        if (p.name not in _NOT_SHAPE and isinstance(default, int | float)
                and not isinstance(default, bool) and default not in (0, math.inf)):
            return p.name, [default / 2, default, default * 2]
    return None, []


def _label(param: str | None, value: Any) -> str:
    if param is None:
        return "default"
    shown = "∞" if value == math.inf else (f"{value:g}" if isinstance(value, float) else value)
    return f"{param} = {shown}"


def loss_curves(entry: Callable[..., Any], kwargs: dict[str, Any], moved: int,
                logits: Any) -> tuple[Any, Any]:
    """A loss and its derivative on sample (label 0) whose logit ``moved`` runs over
    ``logits`` while the others stay 0: ``moved = 0`` is the correct class, 1 a wrong one.

    Returns:
        ``(values, derivatives)`` as NumPy arrays of shape (K,); float64, by autograd.
        Two-scale losses are attached to a constant parameter scale R = 1 (R1 = 1,
        R2 = 10), which shows their jump at the threshold eta.
    """
    import torch

    loss = entry(reduction="none", **kwargs).double()
    if getattr(loss, "requires_scale", False):
        loss.attach(1.0)
    z = torch.zeros(len(logits), NUM_CLASSES, dtype=torch.float64)
    z[:, moved] = torch.as_tensor(logits, dtype=torch.float64)
    z.requires_grad_(True)
    labels = torch.zeros(len(logits), dtype=torch.int64)
    values = loss(z, labels)
    # rows are independent samples: the gradient of the sum holds each row's own derivative
    (grad,) = torch.autograd.grad(values.sum(), z)
    return values.detach().numpy(), grad[:, moved].numpy()


def loss_family(entry: Callable[..., Any], kwargs: dict[str, Any]) -> tuple[str, str]:
    """("on probabilities" or "on raw outputs", "bounded" or "unbounded") of one loss.

    A loss is on probabilities when it is a ProbabilityLoss or does not change when every
    logit moves by the same constant (softmax is shift invariant); bounded when its value
    no longer grows between logits 30 and 60 away from the correct answer, in either sweep.
    """
    import torch

    from losslab.losses import ProbabilityLoss

    far = (-60.0, -30.0)
    correct, _ = loss_curves(entry, kwargs, 0, far)
    wrong, _ = loss_curves(entry, kwargs, 1, (60.0, 30.0))
    growth = max(abs(correct[0] - correct[1]), abs(wrong[0] - wrong[1]))
    bounded = "bounded" if growth < 1e-6 * max(1.0, abs(correct[1])) else "unbounded"
    loss = entry(reduction="none", **kwargs).double()
    if getattr(loss, "requires_scale", False):
        loss.attach(1.0)
    z = torch.linspace(-2, 2, 3 * NUM_CLASSES, dtype=torch.float64).reshape(3, NUM_CLASSES)
    labels = torch.tensor([0, 1, 2])
    with torch.no_grad():
        invariant = torch.allclose(loss(z + 1.75, labels), loss(z, labels), rtol=1e-9,
                                   atol=1e-12)
    kind = ("on probabilities" if isinstance(loss, ProbabilityLoss) or invariant
            else "on raw outputs")
    return kind, bounded


def _figure(rows: int, cols: int, width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # fixed margins: constrained layout would measure every tick label of every panel
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), sharex="col", squeeze=False)
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.5 / height, top=1 - 0.3 / height,
                        wspace=0.22, hspace=0.12)
    return fig, axes


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # a fixed creation date keeps the bytes equal from one build to the next
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def cached(data: Any, draw: Callable[..., bytes], *args: Any) -> bytes:
    """``draw(*args)``, or the PNG an earlier build drew from the same data with the same code.

    The key hashes the plotted numbers, their labels and this file, so a changed loss, a
    new setting or a new drawing code draws again; ``$LOSSLAB_DOCS_CACHE`` (default
    ``.cache/docs`` in the repository) holds the files, and removing it is always safe.
    """
    import hashlib

    import numpy as np

    digest = hashlib.sha256(Path(__file__).read_bytes())

    def feed(item: Any) -> None:
        if isinstance(item, np.ndarray):
            digest.update(np.ascontiguousarray(item, dtype=np.float64).tobytes())
        elif isinstance(item, list | tuple):
            for part in item:
                feed(part)
        else:
            digest.update(repr(item).encode())

    feed(data)
    folder = Path(os.environ.get("LOSSLAB_DOCS_CACHE", Path(__file__).parents[1] / ".cache/docs"))
    path = folder / f"{digest.hexdigest()[:24]}.png"
    if path.is_file():
        return path.read_bytes()
    png = draw(*args)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(png)
    os.replace(tmp, path)
    return png


def _symlog_if_steep(ax: Any, values: Any) -> None:
    from matplotlib.ticker import ScalarFormatter

    if max(abs(float(v)) for v in values) > 10:
        ax.set_yscale("symlog", linthresh=1.0)
        ax.yaxis.set_major_formatter(ScalarFormatter())


def loss_data(entry: Callable[..., Any], param: str | None,
              values: Sequence[Any]) -> list[tuple[int, str, Any, Any, Any]]:
    """``(moved, label, logits, values, derivatives)`` per sweep and setting: the
    correct-class logit (``moved = 0``) and a wrong-class logit (``moved = 1``)."""
    import numpy as np

    grid = np.linspace(*LOGITS, POINTS)
    out = []
    for moved in (0, 1):
        for value in values or [None]:
            kwargs = {} if param is None else {param: value}
            out.append((moved, _label(param, value), grid,
                        *loss_curves(entry, kwargs, moved, grid)))
    return out


def loss_picture(name: str, data: Sequence[tuple[int, str, Any, Any, Any]]) -> bytes:
    """PNG: value (top) and derivative (bottom) against the correct-class logit (left)
    and against a wrong-class logit (right), a line per hyper-parameter setting."""
    fig, axes = _figure(2, 2, 7.6, 4.4)
    for col, xlabel in enumerate(("correct-class logit o_c (others 0)",
                                  "a wrong-class logit o_j (others 0)")):
        lines = [d for d in data if d[0] == col]
        for k, (_, label, grid, value, derivative) in enumerate(lines):
            style = {"linestyle": _STYLES[k % 3], "color": _COLOURS[k % 3], "label": label}
            axes[0, col].plot(grid, value, **style)
            axes[1, col].plot(grid, derivative, **style)
        for row in (0, 1):
            _symlog_if_steep(axes[row, col], [x for d in lines for x in d[3 + row]])
            axes[row, col].axvline(0.0, color="grey", linewidth=0.5)
            axes[row, col].grid(alpha=0.3)
        axes[1, col].set_xlabel(xlabel)
    axes[0, 0].set_ylabel("loss")
    axes[1, 0].set_ylabel("d loss / d logit")
    axes[0, 0].set_title(f"{name}: the correct class moves", fontsize=10)
    axes[0, 1].set_title(f"{name}: a wrong class moves", fontsize=10)
    if len(data) > 2:
        axes[0, 0].legend(fontsize=8)
    return _png(fig)


def _hyper_rows(entry: Any) -> list[tuple[str, str]]:
    """One row per hyper-parameter: its default and what the definition says of it."""
    hyper = getattr(getattr(entry, "definition", None), "hyper", None) or {}
    return [(f"`{name}`", f"default `{h.default!r}`: {_plain(h.doc)}")
            for name, h in hyper.items()]


def _card_table(rows: Sequence[tuple[str, str]]) -> list[str]:
    return ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows), ""]


def _formula_lines(entry: Any, doc: str) -> list[str]:
    definition = getattr(entry, "definition", None)
    tex = getattr(definition, "math", None) or _first_math(doc)
    if tex:
        return ["$$", tex, "$$", ""]
    formula = getattr(entry, "formula", None)
    return [f"`{formula}`", ""] if isinstance(formula, str) and formula else []


def loss_gallery(registry: Mapping[str, Callable[..., Any]]) -> tuple[str, dict[str, bytes]]:
    """The loss gallery page and its pictures (``losses/NAME.png``), from ``registry``."""
    overview = ["| loss | family | kind | formula | seed |", "|---|---|---|---|---|"]
    cards: list[str] = []
    images: dict[str, bytes] = {}
    for name, entry in registry.items():
        doc = inspect.getdoc(entry) or ""
        param, values = settings(name, entry, LOSS_SETTINGS)
        try:
            kind, bounded = loss_family(entry, {})
            data = loss_data(entry, param, values)
            images[f"losses/{name}.png"] = cached((name, data), loss_picture, name, data)
            picture = [f"![{name}: loss and derivative](losses/{name}.png)", ""]
        except Exception as err:  # noqa: BLE001 - a plugin that cannot be drawn is listed
            kind, bounded = "?", "?"
            picture = [f"Not drawn: `{type(err).__name__}: {_plain(str(err))}`", ""]
        formula = getattr(entry, "formula", "")
        seed = _seed_line(entry, doc)
        family = _plain(str(getattr(entry, "family", "")))
        overview.append(f"| [`{name}`](#{name}) | {family} | {kind}, {bounded} | "
                        f"{_plain(formula) if isinstance(formula, str) else ''} | "
                        f"{_plain(seed)} |")
        where = f"{entry.__module__}.{entry.__qualname__}"
        drawn = ", ".join(_label(param, v) for v in values) if param else "its defaults"
        rows = [("seed", _plain(seed)), ("kind", f"{kind}, {bounded}"),
                ("family", _plain(str(getattr(entry, "family", "")) or "?")),
                *_hyper_rows(entry), ("drawn for", drawn), ("class", f"`{where}`")]
        cards += [f"## {name} {{ #{name} }}", "", _plain(doc.split("\n\n")[0]), "",
                  *_formula_lines(entry, doc), *_card_table(rows), *picture]
    head = [
        "# Loss gallery", "",
        "Every loss of the registry (plugins included), drawn at build time by autograd in "
        "float64 on one sample of label 0 with C = 4 classes: the left column moves the "
        "correct-class logit (the others stay 0), the right column one wrong-class logit. "
        "Losses on probabilities flatten out where softmax saturates; bounded losses stop "
        "growing far from the correct answer, which is what makes them resist label noise "
        "(and learn slowly from badly misclassified points: Janocha & Czarnecki 2017, "
        "Proposition 2). Two-scale losses are attached to R = 1 (R1 = 1, R2 = 10): their "
        "jump sits at the threshold eta. Steep curves use a symmetric log scale.", "",
        "`losslab show loss NAME --plot` draws one loss from the command line; "
        "[the losses guide](../losses.md) shows how to use them.", "",
    ]
    return "\n".join([*head, *overview, "", *cards]), images


def activation_curves(entry: Callable[..., Any], kwargs: dict[str, Any],
                      x: Any) -> tuple[Any, Any]:
    """An activation and its derivative on the points ``x`` (K,), float64, by autograd."""
    import torch

    module = entry(**kwargs).double()
    points = torch.as_tensor(x, dtype=torch.float64).requires_grad_(True)
    out = module(points)
    (grad,) = torch.autograd.grad(out.sum(), points)
    return out.detach().numpy(), grad.numpy()


def activation_data(entry: Callable[..., Any], param: str | None,
                    values: Sequence[Any]) -> list[tuple[str, Any, Any, Any]]:
    """``(label, x, values, derivatives)`` per setting over x in [-4, 4]."""
    import numpy as np

    x = np.linspace(-4.0, 4.0, POINTS)
    return [(_label(param, v), x, *activation_curves(entry, {} if param is None else
                                                      {param: v}, x))
            for v in values or [None]]


def activation_picture(name: str, data: Sequence[tuple[str, Any, Any, Any]]) -> bytes:
    """PNG: value (left) and derivative (right), a line per setting."""
    fig, axes = _figure(1, 2, 7.6, 2.5)
    for k, (label, x, y, dy) in enumerate(data):
        style = {"linestyle": _STYLES[k % 3], "color": _COLOURS[k % 3], "label": label}
        axes[0, 0].plot(x, y, **style)
        axes[0, 1].plot(x, dy, **style)
    for ax, title in zip(axes[0], (f"{name}(x)", f"d {name} / dx"), strict=True):
        ax.set_title(title, fontsize=10)
        ax.axvline(0.0, color="grey", linewidth=0.5)
        ax.axhline(0.0, color="grey", linewidth=0.5)
        ax.grid(alpha=0.3)
        ax.set_xlabel("x")
    if len(data) > 1:
        axes[0, 0].legend(fontsize=8)
    return _png(fig)


def activation_gallery(
    registry: Mapping[str, Callable[..., Any]],
) -> tuple[str, dict[str, bytes]]:
    """The activation gallery page and its pictures (``activations/NAME.png``)."""
    cards: list[str] = []
    images: dict[str, bytes] = {}
    for name, entry in registry.items():
        doc = inspect.getdoc(entry) or ""
        param, values = settings(name, entry, ACTIVATION_SETTINGS)
        try:
            data = activation_data(entry, param, values)
            images[f"activations/{name}.png"] = cached(
                (name, data), activation_picture, name, data)
            picture = [f"![{name} and its derivative](activations/{name}.png)", ""]
        except Exception as err:  # noqa: BLE001 - a plugin that cannot be drawn is listed
            picture = [f"Not drawn: `{type(err).__name__}: {_plain(str(err))}`", ""]
        drawn = ", ".join(_label(param, v) for v in values) if param else "its defaults"
        cards += [f"## {name} {{ #{name} }}", "", _plain(doc.split("\n\n")[0]), "",
                  *_formula_lines(entry, doc),
                  *_card_table([("seed", _plain(_seed_line(entry, doc))),
                                ("drawn for", drawn),
                                ("class", f"`{entry.__module__}.{entry.__qualname__}`")]),
                  *picture]
    head = [
        "# Activation gallery", "",
        "Every activation of the registry (plugins included) and its derivative, drawn at "
        "build time by autograd in float64. A derivative that vanishes for large |x| "
        "(sigmoid, tanh) is what makes deep stacks of them hard to train; "
        "[the activations guide](../activations.md) shows how to use them.", "",
        " · ".join(f"[`{n}`](#{n})" for n in registry), "",
    ]
    return "\n".join([*head, *cards]), images
