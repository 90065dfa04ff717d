"""What ``losslab list`` and ``losslab show`` print: the registries and the study files.

``show`` reads everything from the code itself: the docstring (formula, description and
its seed source), the class's ``formula`` / ``seed`` attributes where a loss declares them,
and the parameters with their defaults from the signature, so a user's plugin is described
as well as a built-in entry.
"""

from __future__ import annotations

import inspect
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from losslab.errors import LosslabError

#: The claims file (losslab.reproduce) lives beside the study files but is no study.
CLAIMS_FILE = "claims.toml"

KINDS = ("loss", "activation", "model", "dataset")
CATALOGUES = {"losses": "loss", "activations": "activation", "models": "model",
              "datasets": "dataset"}
# Arguments the caller supplies (data, generator, sizes): not options a user picks.
_HIDDEN = {
    "loss": ("self", "validate"),
    "activation": ("self",),
    "model": ("seed", "generator", "in_features", "in_channels", "image_size", "length",
              "classes", "input_shape", "num_classes"),
    "dataset": ("root", "rng"),
}


def registry(kind: str) -> Mapping[str, Any]:
    """The registry of ``kind`` (loss, activation, model, dataset), plugins included."""
    from losslab.plugins import load_plugins

    load_plugins()
    if kind == "loss":
        from losslab.losses import LOSSES

        return LOSSES
    if kind == "activation":
        from losslab.activations import ACTIVATIONS

        return ACTIVATIONS
    if kind == "model":
        from losslab.models import MODELS

        return MODELS
    if kind == "dataset":
        from losslab.data import DATASETS

        return DATASETS
    raise LosslabError(f"unknown kind {kind!r}; choose one of: {', '.join(KINDS)}")


def _parameters(func: Callable[..., Any], hidden: tuple[str, ...]) -> list[str]:
    out = []
    for name, p in inspect.signature(func).parameters.items():
        if name in hidden or p.kind == p.VAR_POSITIONAL:
            continue
        if p.kind == p.VAR_KEYWORD:
            out.append(f"**{name}")
        elif p.default is p.empty:
            out.append(f"{name} (required)")
        else:
            out.append(f"{name} = {p.default!r}")
    return out


def _without_examples(doc: str) -> str:
    """The docstring up to its ``Example`` section (examples are for the API docs)."""
    return re.split(r"\n\s*Examples?:*\s*\n", doc, maxsplit=1)[0].rstrip()


def describe(kind: str, name: str) -> str:
    """A plain-text description of registry entry ``name`` of ``kind``.

    Returns:
        The entry's title line, formula and seed source (where declared), its docstring
        without examples, and its parameters with their defaults.
    """
    from losslab.registry import lookup

    entries = registry(kind)
    entry = lookup(entries, name, kind)
    key = next(k for k, v in entries.items() if v is entry)
    where = f"{entry.__module__}.{entry.__qualname__}"
    lines = [f"{kind} {key}  ({where})"]
    formula, seed = getattr(entry, "formula", ""), getattr(entry, "seed", "")
    if isinstance(formula, str) and formula:
        lines.append(f"formula: {formula}")
    if isinstance(seed, str) and seed:
        lines.append(f"seed: {seed}")
    doc = inspect.getdoc(entry) or "(no description)"
    lines += ["", _without_examples(doc), "", "parameters (defaults):"]
    params = _parameters(entry, _HIDDEN[kind])
    lines += [f"  {p}" for p in params] or ["  none"]
    if kind == "dataset":
        from losslab.data import load_dataset

        common = _parameters(load_dataset, ("name", "root"))
        lines += ["options every dataset takes (load_dataset):"] + [f"  {p}" for p in common]
    if kind == "model":
        lines.append("the data sets the sizes; seed comes from the study's seeds")
    return "\n".join(lines)


def loss_table(losses: Mapping[str, Any] | None = None) -> str:
    """The README's table of losses (markdown): a row per family, in registry order.

    Each name shows the options of its definition with their defaults, e.g.
    ``gce(q=0.7)``; ``tests/test_losses.py`` checks that the README holds this text.

    Args:
        losses: name -> loss class; default :data:`losslab.losses.LOSSES`.
    """
    if losses is None:
        from losslab.losses import LOSSES

        losses = LOSSES
    rows: dict[str, list[str]] = {}
    for name, cls in losses.items():
        definition = getattr(cls, "definition", None)
        hyper = getattr(definition, "hyper", {})
        options = ", ".join(f"{k}={h.default!r}" for k, h in hyper.items())
        rows.setdefault(getattr(cls, "family", "plugin"), []).append(
            f"`{name}({options})`" if options else f"`{name}`"
        )
    lines = ["| family | names |", "|---|---|"]
    lines += [f"| {family} | {' '.join(names)} |" for family, names in rows.items()]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- study files
#: The ready-made studies and the claims file, shipped inside the package (package data of
#: the wheel), so that ``losslab run NAME`` finds them from any directory.
PRESETS = Path(__file__).resolve().parent / "studies"


def study_dirs() -> list[Path]:
    """Where ready-made study files are looked for, in order: ``$LOSSLAB_STUDIES``
    (os.pathsep-separated), ``./studies``, then the presets shipped in the package
    (:data:`PRESETS`). An earlier folder wins, so a user's copy of a preset overrides it."""
    found: list[Path] = []
    env = os.environ.get("LOSSLAB_STUDIES", "")
    candidates = [Path(p) for p in env.split(os.pathsep) if p]
    candidates.append(Path.cwd() / "studies")
    candidates.append(PRESETS)
    for path in candidates:
        if path.is_dir() and path.resolve() not in {p.resolve() for p in found}:
            found.append(path)
    return found


def list_studies() -> list[tuple[Path, str, str]]:
    """(file, study name, description) of every ``*.toml`` in :func:`study_dirs`.

    Files are only parsed, not validated: a broken one is listed with its problem.
    """
    out = []
    for directory in study_dirs():
        for path in sorted(directory.glob("*.toml")):
            if path.name == CLAIMS_FILE:
                continue
            try:
                doc = tomllib.loads(path.read_text(encoding="utf-8"))
                name = str(doc.get("name", path.stem))
                description = " ".join(str(doc.get("description", "")).split())
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
                name, description = path.stem, f"(unreadable: {err})"
            out.append((path, name, description))
    return out


def resolve_study(text: str) -> Path:
    """``text`` as a path if it exists, else a ready-made study by file stem or name."""
    path = Path(text)
    if path.exists() or path.suffix:
        return path
    for file, name, _ in list_studies():
        if text in (file.stem, name):
            return file
    return path


def study_file(name: str) -> Path:
    """The file of ready-made study ``name`` (file stem or ``name =``), or of the path
    ``name``; raises :class:`LosslabError` naming the presets when there is none."""
    path = resolve_study(name)
    if not path.is_file():
        names = ", ".join(sorted(n for _, n, _ in list_studies()))
        raise LosslabError(f"no study file or ready-made study {name!r}; give a .toml path "
                           f"or one of: {names} (`losslab list studies`)")
    return path
