"""Committed results that their study file no longer plans.

A cell's id is the content hash of its fully resolved configuration (:mod:`losslab.study.
plan`), so planning the study file again, at the committed scale, must give every committed
cell id; a cell id the plan lacks means the file (or a default, or the losslab version)
changed after the run. Planning here builds no dataset: a dataset entry with a fallback
takes the choice the committed run made, and the cell ids come from
:func:`losslab.study.plan.expand`.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from losslab.errors import LosslabError


def _study_file(name: str, study_dirs: list[Path]) -> Path | None:
    import tomllib

    for directory in study_dirs:
        candidate = directory / f"{name}.toml"
        if candidate.is_file():
            return candidate
        for path in sorted(directory.glob("*.toml")):
            try:
                if tomllib.loads(path.read_text(encoding="utf-8")).get("name") == name:
                    return path
            except (OSError, tomllib.TOMLDecodeError):
                continue
    return None


def _committed(directory: Path) -> tuple[dict[str, dict[str, Any]], set[str]]:
    """cell_id -> config of the committed cells, and the dataset names they ran on."""
    configs: dict[str, dict[str, Any]] = {}
    with (directory / "cells.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            configs[row["cell_id"]] = json.loads(row["config"])
    datasets = {c["dataset"]["name"] for c in configs.values()}
    return configs, datasets


def planned_ids(study_file: Path, scale: str | None, datasets: set[str],
                tuning_choices: list[dict[str, Any]] | None = None) -> set[str]:
    """The cell ids the study file plans at ``scale``, each fallback resolved to the
    dataset in ``datasets`` (the committed run's), without touching data."""
    from losslab.study.plan import expand
    from losslab.study.spec import Item, Study, load_study, registry_key

    study = load_study(study_file, scale, fallbacks=False)
    items = []
    for item in study.spec.datasets:
        options = {k: v for k, v in item.options.items() if k != "fallback"}
        name = item.name
        fallback = item.options.get("fallback")
        if fallback is not None and registry_key("dataset", name) not in datasets and (
                registry_key("dataset", fallback) in datasets):
            name = fallback
        items.append(Item(name=name, options=options))
    study = Study(study.spec.model_copy(update={"datasets": items}), study.path, study.text,
                  study.scale)
    tuned = None
    if study.spec.tune is not None:
        from losslab.study.tuning import tune_key

        params = study.spec.tune.tuned
        chosen = {c["tune_key"]: c for c in tuning_choices or []}

        def tuned(config: dict[str, Any]) -> dict[str, Any]:
            found = chosen.get(tune_key(config, params))
            return {} if found is None else {p: found[p] for p in params}

    if "epochs" in study.spec.train:
        from losslab.study.executors import DataCache
        from losslab.study.runner import prepare

        plan = prepare(study, DataCache(), tuned=tuned)
    else:
        plan = expand(study, tuned=tuned)
    return {c.cell_id for c in plan.cells}


def stale_results(results_dir: Path, study_dirs: list[Path]) -> list[str]:
    """A message per committed study whose cells its study file no longer plans."""
    from losslab.reproduce.measure import Results
    from losslab.study.compact import read_run
    from losslab.study.hashing import content_hash

    problems = []
    for study, scale in Results(results_dir).available():
        directory = results_dir / study / scale
        where = f"results/{study}/{scale}"
        document = read_run(directory)
        configs, datasets = _committed(directory)
        altered = [cid for cid, config in configs.items() if content_hash(config) != cid]
        if altered:
            problems.append(f"{where}: {len(altered)} cell(s) whose configuration does not "
                            f"hash to their id (first {altered[0]}): cells.csv was edited")
        path = _study_file(document["study"], study_dirs)
        if path is None:
            problems.append(f"{where}: no study file for study {document['study']!r} in "
                            f"{', '.join(map(str, study_dirs))}")
            continue
        choices = None
        if "tuning_choices" in document["tables"]:
            import pandas as pd

            file = directory / document["tables"]["tuning_choices"]
            choices = pd.read_csv(file).to_dict("records")
        try:
            planned = planned_ids(path, document["scale"], datasets, choices)
        except LosslabError as err:
            problems.append(f"{where}: {path} no longer plans at scale "
                            f"{document['scale']!r}: {err}")
            continue
        extra = sorted(set(configs) - planned)
        if extra:
            version = {c.get("losslab") for c in configs.values()}
            from losslab import __version__

            why = (f"they were made by losslab {', '.join(map(str, version))}, this is "
                   f"{__version__}" if version != {__version__} else
                   f"{path} changed after the run")
            problems.append(f"{where}: {len(extra)} of {len(configs)} committed cells are no "
                            f"longer planned by {path} at scale {document['scale']!r} ({why}); "
                            "run the study again and publish it")
    return problems


def claims_against_plans(claims: Any, study_dirs: list[Path]) -> tuple[list[str], list[str]]:
    """Check every comparison's filters against the cells its study plans at its scale.

    Returns ``(problems, notes)``: a problem is a filter no planned cell matches (or a
    study file that is missing); a note is a scale the study file does not define yet (its
    claims stay "not run" until it does).
    """
    import tomllib

    import pandas as pd

    from losslab.reproduce.measure import _per_seed, _select

    problems: list[str] = []
    notes: list[str] = []
    plans: dict[tuple[str, str], pd.DataFrame | None] = {}
    for claim in claims.claims:
        for part in claim.parts():
            key = (str(part.study), str(part.scale))
            if key not in plans:
                path = _study_file(key[0], study_dirs)
                plans[key] = None
                if path is None:
                    problems.append(f"claim {claim.id}: no study file for {key[0]!r}")
                    continue
                scales = tomllib.loads(path.read_text(encoding="utf-8")).get("scales", {})
                if key[1] not in scales:
                    notes.append(f"{path.name} has no [scales.{key[1]}] yet: its claims are "
                                 "not run until it does")
                    continue
                study = load_study(path, key[1], fallbacks=False)
                plans[key] = pd.DataFrame([c.axes for c in expand_cheap(study)])
            frame = plans[key]
            if frame is None:
                continue
            try:
                base = _select(frame, part.where, claim, "where")
                _per_seed(_select(base, part.treatment, claim, "treatment"), claim,
                          "treatment")
                if part.control is not None:
                    _per_seed(_select(base, part.control, claim, "control"), claim, "control")
            except LosslabError as err:
                problems.append(f"{err} (planned by {key[0]} at scale {key[1]})")
    return problems, notes


def load_study(path: Path, scale: str, fallbacks: bool = False) -> Any:
    from losslab.study.spec import load_study as load

    return load(path, scale, fallbacks=fallbacks)


def expand_cheap(study: Any) -> list[Any]:
    """The planned cells without data; a study that counts epochs needs its datasets."""
    from losslab.study.plan import expand

    if "epochs" in study.spec.train:
        from losslab.study.executors import DataCache
        from losslab.study.runner import prepare

        return prepare(study, DataCache()).cells
    return expand(study).cells
