"""REPRODUCTION.md, written from the claims file and the committed results, and its check.

:func:`reproduce` judges every claim; :func:`render` writes the document (a table per seed
document, the parts of each conjunction, then the runs behind the numbers); :func:`check`
lists every way the repository disagrees with itself: the document is not what the results
give, a committed result is no longer planned by its study file, a named test is gone.
``losslab reproduce`` (:mod:`losslab.reproduce.cli`) calls them.
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from losslab.console import duration
from losslab.errors import LosslabError
from losslab.metrics.stats import INTERVAL_METHOD
from losslab.reproduce.claims import ClaimsFile, load_claims
from losslab.reproduce.measure import ClaimResult, PartResult, Results, judge
from losslab.reproduce.verdict import MIN_SEEDS, RULE

DOCUMENT = "REPRODUCTION.md"
#: Where the claims file and the study files lie, as the document names them.
PRESETS_SHOWN = "src/losslab/studies"


def studies_dir(root: str | os.PathLike) -> Path:
    """The claims file's and the study files' folder for checkout ``root``: its own
    ``studies/`` when that holds a claims file (a checkout-like folder of one's own),
    else the presets shipped in the package (:data:`losslab.catalogue.PRESETS`)."""
    from losslab.catalogue import CLAIMS_FILE, PRESETS

    own = Path(root) / "studies"
    return own if (own / CLAIMS_FILE).is_file() else PRESETS


def reproduce(root: str | os.PathLike, claims: ClaimsFile | None = None,
              results_dir: str | os.PathLike | None = None) -> list[ClaimResult]:
    """Every claim of the claims file (:func:`studies_dir`) judged on ``root/results``."""
    root = Path(root)
    claims = claims or load_claims(studies_dir(root) / "claims.toml")
    results = Results(results_dir if results_dir is not None else root / "results")
    return [judge(claim, results, root) for claim in claims.claims]


def _number(value: float, unit: str, signed: bool) -> str:
    if not math.isfinite(value):
        return "—"
    text = f"{value:.2f}" if unit else f"{value:.3g}"
    return f"+{text}" if signed and value >= 0 else text


def _interval(part: PartResult | None) -> str:
    """``+1.20 [-0.30, +2.70] points`` for a difference, ``97.70 [97.38, 98.02] %`` for an
    accuracy compared with the paper's number."""
    if part is None or part.n == 0:
        return "—"
    signed = part.difference
    unit = (" points" if signed else " %") if part.unit else ""
    effect = _number(part.effect, part.unit, signed)
    if not math.isfinite(part.low):
        return effect + unit
    return (f"{effect} [{_number(part.low, part.unit, signed)}, "
            f"{_number(part.high, part.unit, signed)}]{unit}")


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _where(result: ClaimResult) -> str:
    claim = result.claim
    if claim.kind == "test":
        return "<br>".join(f"`{t}`" for t in claim.tests)
    if claim.kind == "unmeasured":
        return "—"
    places = list(dict.fromkeys((p.study, p.scale) for p in result.parts))
    text = "; ".join(f"`{study}` {scale}" for study, scale in places)
    ran = sorted({d for p in result.parts for d in p.datasets})
    if ran:
        text += " · " + ", ".join(ran)
    if result.stand_in:
        text += f" (stand-in for {claim.dataset})"
    return text


def _row(result: ClaimResult) -> str:
    claim = result.claim
    part = result.deciding
    n = "—" if claim.kind != "study" else str(min(p.n for p in result.parts))
    effect = _interval(part) if claim.kind == "study" else "—"
    if claim.kind == "study" and len(result.parts) > 1 and part is not None and part.n:
        effect += f" ({_cell(part.label)})"
    verdict = result.verdict
    if claim.kind == "unmeasured":
        verdict += f" ({claim.unmeasured})"
    elif claim.kind == "study" and result.verdict == "not run":
        reasons = sorted({p.reason for p in result.parts if p.verdict == "not run"})
        verdict += f" ({'; '.join(reasons)})"
    if result.stand_in:
        verdict += f", on {result.stand_in} for {claim.dataset}"
    statement = f"{claim.statement} ({claim.section})"
    if claim.note:
        statement += f". Measured as: {claim.note}"
    cells = [claim.id, statement, claim.paper, _where(result), n, effect, verdict,
             claim.figure or "—"]
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _parts(results: Sequence[ClaimResult]) -> list[str]:
    lines = []
    for result in results:
        if len(result.parts) < 2:
            continue
        lines.append(f"- **{result.claim.id}**, {len(result.parts)} comparisons:")
        for p in result.parts:
            measured = f"n = {p.n}, {_interval(p)}, " if p.n else ""
            lines.append(f"  - {_cell(p.label)} · `{p.study}` {p.scale}: {measured}{p.verdict}")
    return lines


def _runs(results_dir: Path) -> list[str]:
    from losslab.study.compact import read_run

    rows = []
    for study, scale in Results(results_dir).available():
        directory = results_dir / study / scale
        document = read_run(directory)
        cells = sum(1 for _ in (directory / "cells.csv").open(encoding="utf-8")) - 1
        for run in document["runs"]:
            env = run.get("environment") or {}
            load = env.get("load_at_start")
            wall = (run["finished"] - run["started"]) if run.get("finished") else None
            started = datetime.datetime.fromtimestamp(run["started"], datetime.UTC)
            rows.append("| " + " | ".join(_cell(c) for c in (
                f"`{study}` {scale}", str(cells), started.strftime("%Y-%m-%d %H:%M UTC"),
                f"{env.get('machine', '?')}, {env.get('device', '?')}, "
                f"threads: {env.get('threads', '?')}",
                "?" if load is None else f"{load:.2f}",
                f"`{env.get('commit', '?')}`",
                "?" if wall is None else duration(wall),
                str(run.get("outcome") or "?"),
            )) + " |")
    if not rows:
        return ["No study results are committed yet: every study claim is **not run**. "
                "To add some: `losslab run NAME --scale SCALE`, then "
                "`losslab publish results/NAME` and `losslab reproduce`."]
    return ["| study · scale | cells | started | machine | load at start | commit | "
            "wall time | outcome |", "|---|---|---|---|---|---|---|---|", *rows]


def _missing(results: Sequence[ClaimResult], results_dir: Path, studies: Path) -> list[str]:
    """What to run for the claims without committed results: per study and scale, the
    claims waiting for it, its estimated time on 2 CPU cores (the committed estimates,
    :mod:`~losslab.reproduce.estimates`), the datasets it reads (fallbacks in brackets)
    and where their files go, and the commands. Written from the study files and committed
    files only, so the text is the same on every machine."""
    import tomllib

    from losslab.console import rough_duration
    from losslab.reproduce.estimates import read

    estimates = read(results_dir)
    datasets: dict[str, None] = {}

    waiting: dict[tuple[str, str], list[str]] = {}
    for r in results:
        for p in r.parts:
            if p.n == 0:
                ids = waiting.setdefault((p.study, p.scale), [])
                if r.claim.id not in ids:
                    ids.append(r.claim.id)
    rows = []
    for (study, scale), ids in sorted(waiting.items()):
        path = studies / f"{study}.toml"
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError):
            doc = {}
        defined = scale in doc.get("scales", {})
        entries = doc.get("scales", {}).get(scale, {}).get("datasets") or doc.get("datasets", [])
        names = []
        for entry in entries:
            if isinstance(entry, str):
                names.append(entry)
            else:
                fallback = entry.get("fallback")
                names.append(entry.get("name", "?") + (f" (or {fallback})" if fallback else ""))
        command = (f"`losslab run {study} --scale {scale}`, then `losslab "
                   f"publish results/{study}`" if defined
                   else f"first a `[scales.{scale}]` table in `{PRESETS_SHOWN}/{study}.toml`")
        seconds = ((estimates or {}).get("studies", {}).get(study, {}).get(scale) or {}
                   ).get("seconds")
        time = "—" if seconds is None else f"~{rough_duration(seconds)} (est.)"
        rows.append("| " + " | ".join(_cell(c) for c in (
            f"`{study}` {scale}", ", ".join(ids), time, ", ".join(names) or "?",
            command)) + " |")
        datasets.update(dict.fromkeys(e if isinstance(e, str) else e.get("name", "")
                                      for e in entries))
    if not rows:
        return []
    machine = "" if estimates is None else (
        f" (`results/estimates.json`: the scale's FLOPs at the rates of "
        f"{estimates['machine']}, two worker processes of one thread; no GPU estimate is "
        "committed)")
    return ["", "Claims still waiting for results, and what gives them. The time is an "
            f"estimate for 2 CPU cores{machine}; `losslab run ... --dry-run` estimates it "
            "for the machine at hand, without the data.", "",
            "| study · scale | claims | time on 2 CPU cores | datasets | to run |",
            "|---|---|---|---|---|", *rows, *_files(datasets)]


def _files(datasets: dict[str, None]) -> list[str]:
    """Where the files of ``datasets`` go, for those this machine does not have in the
    repository's runs: the CIFAR sets (the same words on every machine)."""
    from losslab.data.cifar import files_needed

    lines = [f"- **{name}**: {files_needed(name)}." for name in datasets
             if name in ("cifar10", "cifar100")]
    return ["", "Where their data goes:", "", *lines] if lines else []


HEADER = """\
# Reproduction of the seed papers' claims

<!-- Generated by `losslab reproduce` from src/losslab/studies/claims.toml and the committed
results under results/; `losslab reproduce --check` (run by `make test`) fails when this file
differs from what they give. Do not edit it by hand. -->

Every claim of the seed documents, how losslab measures it and what it measured. The claims
are data (`src/losslab/studies/claims.toml`: statement, what the paper reports, study,
scale, metric, the conditions compared, the claimed direction and size); the numbers come
from the committed results under `results/<study>/<scale>/` (`losslab publish`), which
anyone can read without training (`losslab report results/<study>/<scale>`); each verdict
follows from one rule.

## The verdict rule

"""

COLUMNS = ("| # | claim (section) | paper reports | study · scale · dataset | n | "
           "effect [95% interval] | verdict | report figure |")


def render(results: Sequence[ClaimResult], claims: ClaimsFile, results_dir: Path) -> str:
    """The text of REPRODUCTION.md."""
    missing = [(r.claim.id, t) for r in results for t in r.missing_tests]
    if missing:
        raise LosslabError("tests named in the claims file no longer exist: " + ", ".join(
            f"{cid}: {t}" for cid, t in missing) + "; rename them back or fix "
            "src/losslab/studies/claims.toml")
    counts: dict[str, int] = {}
    for r in results:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    lines = [HEADER.rstrip("\n"), "", RULE.rstrip("\n"), "",
             f"Interval method: {INTERVAL_METHOD}. A study verdict needs at least "
             f"{MIN_SEEDS} seeds.", "",
             f"Verdicts of the {len(results)} claims: " + ", ".join(
                 f"{v} {n}" for v, n in sorted(counts.items(), key=lambda kv: -kv[1])) + ".",
             ""]
    for key, source in claims.sources.items():
        mine = [r for r in results if r.claim.source == key]
        if not mine:
            continue
        lines += [f"## {source.title}", "", COLUMNS, "|---|---|---|---|---|---|---|---|"]
        lines += [_row(r) for r in mine]
        parts = _parts(mine)
        if parts:
            lines += ["", "Comparisons of the claims with several parts:", "", *parts]
        lines.append("")
    lines += ["## Runs", "",
              "The runs behind the numbers above, as recorded by `losslab run` (machine, load "
              "average at the start, source commit, wall time):", "", *_runs(results_dir),
              *_missing(results, results_dir, studies_dir(results_dir.parent)), ""]
    return "\n".join(lines)


def as_json(results: Sequence[ClaimResult]) -> list[dict[str, Any]]:
    """One object per claim: id, verdict, study, scale, dataset, n, effect, ci_low, ci_high
    (of the deciding comparison; NaN as null), and every part."""

    def number(value: float) -> float | None:
        return value if math.isfinite(value) else None

    out = []
    for r in results:
        part = r.deciding
        out.append({
            "id": r.claim.id,
            "source": r.claim.source,
            "section": r.claim.section,
            "statement": r.claim.statement,
            "paper": r.claim.paper,
            "kind": r.claim.kind,
            "verdict": r.verdict,
            "study": part.study if part else None,
            "scale": part.scale if part else None,
            "dataset": ", ".join(part.datasets) if part and part.datasets else None,
            "stand_in_for": r.claim.dataset if r.stand_in else None,
            "n": part.n if part else None,
            "effect": number(part.effect) if part else None,
            "ci_low": number(part.low) if part else None,
            "ci_high": number(part.high) if part else None,
            "unit": part.unit if part else None,
            "tests": r.claim.tests,
            "parts": [{"label": p.label, "study": p.study, "scale": p.scale,
                       "dataset": ", ".join(p.datasets) or None, "n": p.n,
                       "effect": number(p.effect), "ci_low": number(p.low),
                       "ci_high": number(p.high), "verdict": p.verdict} for p in r.parts],
        })
    return json.loads(json.dumps(out))


def check(root: str | os.PathLike, notes: list[str] | None = None) -> list[str]:
    """Every disagreement between the repository and itself, as messages (none: in order).

    REPRODUCTION.md must be what the claims file and the committed results give, every
    test a claim names must exist, every comparison must name conditions its study plans
    at its scale, and every committed result must still be planned by its study file
    (:mod:`losslab.reproduce.stale`). Scales a study does not define yet are appended to
    ``notes`` (their claims are "not run"), not counted as problems.
    """
    from losslab.reproduce import estimates, table
    from losslab.reproduce.stale import claims_against_plans, stale_results

    root = Path(root)
    studies = studies_dir(root)
    claims = load_claims(studies / "claims.toml")
    results = reproduce(root, claims)
    problems = [f"{r.claim.id}: the test {t} no longer exists" for r in results
                for t in r.missing_tests]
    if not problems:
        target = root / DOCUMENT
        written = target.read_text(encoding="utf-8") if target.exists() else ""
        differences = text_differences(written, render(results, claims, root / "results"))
        if differences:
            problems += [*differences, "run `losslab reproduce` to regenerate REPRODUCTION.md"]
    planned, pending = claims_against_plans(claims, [studies])
    if notes is not None:
        notes.extend(pending)
    problems += estimates.check(studies, root / "results")
    problems += table.update(root, studies, check=True, notes=notes)
    return problems + planned + stale_results(root / "results", [studies])


def text_differences(written: str, expected: str, name: str = DOCUMENT) -> list[str]:
    """Each line where ``written`` differs from ``expected``, as a message."""
    out = []
    matcher = difflib.SequenceMatcher(a=written.splitlines(), b=expected.splitlines(),
                                      autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        old = written.splitlines()[i1:i2]
        new = expected.splitlines()[j1:j2]
        out.append(f"{name} line {i1 + 1}: has {_short(old)}; the results give {_short(new)}")
    return out


def _short(lines: list[str]) -> str:
    if not lines:
        return "nothing"
    text = " / ".join(lines)
    return repr(text if len(text) <= 160 else text[:157] + "...")
