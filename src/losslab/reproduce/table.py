"""The "Ready-made studies" table of README.md and the docs, written from the repository.

One row per study file, one column per scale (quick, medium, full): the cells and seeds
the planner gives (from ``results/estimates.json``, which ``losslab reproduce --check``
recomputes from the study files, :mod:`~losslab.reproduce.estimates`) and the wall time:
measured where the scale's results are committed (``results/<study>/<scale>/run.json``,
with the load average at the start), else the estimate for 2 CPU cores, marked as one.

A markdown file shows it between ``<!-- studies-table -->`` and ``<!-- /studies-table -->``;
``losslab reproduce`` rewrites those blocks and ``--check`` names each one that differs.
The docs' copy adds each study's description.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from losslab.console import duration, rough_duration
from losslab.errors import LosslabError

SCALES = ("quick", "medium", "full")
BLOCK = re.compile(r"(<!-- studies-table -->\n)(?P<body>.*?)(<!-- /studies-table -->)",
                   re.DOTALL)


def documents(root: Path) -> list[Path]:
    """README.md and docs/**/*.md of checkout ``root`` (those present)."""
    found = [root / "README.md"] if (root / "README.md").is_file() else []
    return found + (sorted((root / "docs").rglob("*.md")) if (root / "docs").is_dir() else [])


def measured(directory: Path) -> tuple[float, float | None, str] | None:
    """(wall seconds of every run, the first run's load average at its start, its device)
    of a committed scale, or None when it has none or one did not finish."""
    from losslab.study.compact import read_run

    if not (directory / "run.json").is_file():
        return None
    runs = read_run(directory)["runs"]
    if not runs or any(not run.get("finished") for run in runs):
        return None
    wall = sum(run["finished"] - run["started"] for run in runs)
    env = runs[0].get("environment") or {}
    return wall, env.get("load_at_start"), str(env.get("device") or "cpu")


def _description(path: Path) -> str:
    import tomllib

    try:
        return str(tomllib.loads(path.read_text(encoding="utf-8")).get("description", ""))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise LosslabError(f"{path}: cannot read the study file ({err}); fix it") from None


def _cell_text(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _scale_cell(study: str, scale: str, estimate: Mapping[str, Any] | None,
                results: Path) -> str:
    if estimate is None:
        return "—"
    text = f"{estimate['cells']:,} ({estimate['seeds']})"
    run = measured(results / study / scale)
    if run is not None:
        wall, load, device = run
        where = "" if device == "cpu" else f", {device}"
        load_text = "" if load is None else f", load {load:.2f}"
        return f"{text}, **{duration(wall)}**{load_text}{where}"
    if estimate.get("seconds") is None:
        return f"{text}, no estimate"
    return f"{text}, ~{rough_duration(estimate['seconds'])} est."


def render(studies: Path, results: Path, describe: bool = False) -> str:
    """The table (with its caption) for the study files of ``studies`` and the committed
    results and estimates under ``results``; ``describe`` adds the descriptions."""
    from losslab.reproduce.estimates import read, study_files

    document = read(results)
    estimates = document["studies"] if document else {}
    head = ["study", *(["what it runs"] if describe else []), *SCALES]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for path in study_files(studies):
        mine = estimates.get(path.stem, {})
        if document is None:
            cells = ["?"] * len(SCALES)
        else:
            cells = [_scale_cell(path.stem, scale, mine.get(scale), results) for scale in SCALES]
        extra = [_description(path)] if describe else []
        lines.append("| " + " | ".join(_cell_text(c) for c in
                                       [f"`{path.stem}`", *extra, *cells]) + " |")
    lines += ["", caption(document)]
    return "\n".join(lines) + "\n"


def caption(document: Mapping[str, Any] | None) -> str:
    """What the table's numbers are, and where the estimates come from."""
    text = ("Cells (seeds) per scale, then the wall time: **bold** where measured (the "
            "committed run under `results/<study>/<scale>/`, with the load average at its "
            "start; machines in [REPRODUCTION.md](REPRODUCTION.md#runs)), `~ est.` where "
            "estimated for 2 CPU cores (two worker processes of one thread); — : no such "
            "scale.")
    if document is None:
        return text + (" No estimates are written yet (`losslab reproduce --estimate` "
                       "writes `results/estimates.json`).")
    gflops = float(document["rates"]["flops"]) / 1e9
    return text + (f" Estimates: the scale's FLOPs at the rates of {document['machine']} "
                   f"({gflops:.1f} GFLOP/s of batched matmul on one thread), measured "
                   f"{document['measured_at'][:10]} by `losslab reproduce --estimate` "
                   "(`results/estimates.json`).")


def update(root: Path, studies: Path, check: bool = False,
           notes: list[str] | None = None) -> list[str]:
    """Rewrite every studies-table block of ``root``'s markdown files (with ``check``,
    only list those that differ); returns the differences as messages. A block drawn
    without ``results/estimates.json`` adds a note to ``notes``."""
    from losslab.reproduce.estimates import ESTIMATES, read

    results = root / "results"
    if notes is not None and read(results) is None and any(
            BLOCK.search(path.read_text(encoding="utf-8")) for path in documents(root)):
        notes.append(f"no results/{ESTIMATES}: the studies table shows no cells or "
                     "estimates; write it with `losslab reproduce --estimate`")
    tables: dict[bool, str] = {}
    differences = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        describe = path.name != "README.md"

        def replace(match: re.Match[str], path: Path = path, describe: bool = describe) -> str:
            if describe not in tables:
                tables[describe] = render(studies, results, describe)
            body = tables[describe]
            if describe:
                body = body.replace("](REPRODUCTION.md", "](reproduction.md")
            if body != match.group("body"):
                differences.append(f"{path.relative_to(root)}: the studies table is not what "
                                   "the study files and results give; run `losslab reproduce`")
            return match.group(1) + body + match.group(3)

        new = BLOCK.sub(replace, text)
        if not check and new != text:
            path.write_text(new, encoding="utf-8")
    return differences
