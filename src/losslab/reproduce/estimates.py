"""The committed estimates: every ready-made study's cells, seeds, FLOPs and time on 2 cores.

``results/estimates.json`` holds, for every study file and every scale it defines, what the
planner gives (cells, seeds), the FLOPs of its training (:func:`losslab.study.estimate.plan_flops`,
a function of the study file alone) and its estimated wall time on a 2-core machine (two
worker processes of one torch thread, as the thread policy runs there), costed at the rates
(matmul FLOP/s, copy bytes/s, one small op's seconds) of the machine that wrote the file::

    {"written_by": "losslab reproduce --estimate", "measured_at": "...", "machine": "...",
     "jobs": 2, "threads": 1, "rates": {"flops": ..., "bandwidth": ..., "op_seconds": ...},
     "studies": {"demo": {"quick": {"cells": 108, "seeds": 5, "flops": ..., "seconds": ...}}}}

The rates are the only input that depends on the machine, and they are in the file: so
``losslab reproduce --check`` recomputes every entry from the study files and the stored
rates, on any machine, and names each one that differs (a study file changed since
``losslab reproduce --estimate``). Only that explicit command measures rates.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from pathlib import Path
from typing import Any

from losslab.errors import LosslabError

ESTIMATES = "estimates.json"
#: The machine the estimates are for: ``--jobs 2 --threads 1``, what the thread policy uses
#: on 2 free cores.
JOBS = 2
THREADS = 1
# Every entry is recomputed by the same arithmetic in the same order, so it comes out
# bit-identical; this relative tolerance only absorbs the JSON round trip of a float
# (repr is exact in Python, but another writer's may keep 15-17 digits).
RELATIVE_TOLERANCE = 1e-12
FIELDS = ("cells", "seeds", "flops", "seconds")


def study_files(studies: Path) -> list[Path]:
    """The study files of the folder ``studies`` (every ``*.toml`` but the claims file)."""
    return sorted(p for p in Path(studies).glob("*.toml") if p.name != "claims.toml")


def scales_of(path: Path) -> list[str]:
    """The ``[scales.NAME]`` tables of a study file, in file order."""
    import tomllib

    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise LosslabError(f"{path}: cannot read the study file ({err}); fix it") from None
    return list(document.get("scales", {}))


def entry(path: Path, scale: str, rates: dict[str, float], cache: Any = None) -> dict[str, Any]:
    """The estimate of study file ``path`` at ``scale`` for a 2-core machine with ``rates``.

    Returns:
        ``cells`` and ``seeds`` (distinct seeds) of the plan, ``flops`` of every training
        and evaluation (tuning included; None when a model cannot be built) and
        ``seconds``, the estimated wall time (None likewise).
    """
    from losslab.study.executors import DataCache
    from losslab.study.forecast import forecast
    from losslab.study.spec import load_study

    study = load_study(path, scale)
    told = forecast(study, cache or DataCache(), device="cpu", jobs=JOBS, threads=THREADS,
                    rates=rates)
    seeds = len({cell.axes["seed"] for cell in told.plan.cells})
    return {"cells": len(told.plan.cells), "seeds": seeds,
            "flops": told.flops if math.isfinite(told.flops) else None,
            "seconds": told.total if math.isfinite(told.total) else None}


def compute(studies: Path, rates: dict[str, float]) -> dict[str, dict[str, dict[str, Any]]]:
    """:func:`entry` for every study file of ``studies`` and every scale it defines, keyed
    by file stem, then scale."""
    from losslab.study.executors import DataCache

    cache = DataCache()
    return {path.stem: {scale: entry(path, scale, rates, cache) for scale in scales_of(path)}
            for path in study_files(studies)}


def read(results: Path) -> dict[str, Any] | None:
    """``results/estimates.json``, or None when it was never written."""
    path = Path(results) / ESTIMATES
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise LosslabError(f"{path} is not readable JSON ({err}); write it again with "
                           "`losslab reproduce --estimate`") from None
    rates = document.get("rates")
    if (not isinstance(rates, dict) or not {"flops", "bandwidth", "op_seconds"} <= set(rates)
            or not isinstance(document.get("studies"), dict)):
        raise LosslabError(f"{path} lacks its rates or studies; write it again with "
                           "`losslab reproduce --estimate`")
    return document


def write(studies: Path, results: Path) -> Path:
    """Measure this machine's rates at one thread (:func:`~losslab.study.estimate.
    measure_rates`, not the cache: the file names the machine it measured), estimate every
    study and scale, and write ``results/estimates.json``; returns its path."""
    import torch

    from losslab.study.estimate import measure_rates
    from losslab.study.store import machine

    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        rates = measure_rates("cpu")
    finally:
        torch.set_num_threads(previous)
    document = {
        "written_by": "losslab reproduce --estimate",
        "measured_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "load_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "jobs": JOBS,
        "threads": THREADS,
        "rates": rates,
        "studies": compute(studies, rates),
    }
    path = Path(results) / ESTIMATES
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path


def _same(stored: Any, computed: Any) -> bool:
    if isinstance(stored, (int, float)) and isinstance(computed, (int, float)):
        return math.isclose(stored, computed, rel_tol=RELATIVE_TOLERANCE, abs_tol=0.0)
    return stored == computed


def check(studies: Path, results: Path) -> list[str]:
    """Each entry of ``results/estimates.json`` that the study files no longer give at
    the stored rates, each study or scale missing from it and each one it has too many,
    as messages (none when the file was never written)."""
    where = f"results/{ESTIMATES}"
    document = read(results)
    if document is None:
        return []
    stored = document["studies"]
    computed = compute(studies, {k: float(document["rates"][k])
                                 for k in ("flops", "bandwidth", "op_seconds")})
    fix = "run `losslab reproduce --estimate` (then `losslab reproduce`)"
    problems = []
    for study in sorted(set(stored) | set(computed)):
        mine, theirs = stored.get(study, {}), computed.get(study, {})
        for scale in list(dict.fromkeys([*theirs, *mine])):
            if scale not in mine:
                problems.append(f"{where}: no estimate of {study} at scale {scale}; {fix}")
            elif scale not in theirs:
                problems.append(f"{where}: {study} at scale {scale} is no longer a study "
                                f"scale; {fix}")
            else:
                for field in FIELDS:
                    if not _same(mine[scale].get(field), theirs[scale][field]):
                        problems.append(
                            f"{where}: {study} {scale}: {field} is {mine[scale].get(field)!r}, "
                            f"the study file gives {theirs[scale][field]!r}; {fix}")
    return problems
