"""Studies: a grid of datasets x models x activations x losses x settings x seeds from one
TOML file, trained in stacks, stored in SQLite, resumable, on one machine or a Ray cluster.

::

    from losslab.study import load_study, run_study, load
    study = load_study("demo", scale="quick")   # a preset or a .toml path; validated completely
    run_study(study, "results/demo")                          # skips stored cells
    load("results/demo").cells()                              # a pandas DataFrame

Modules: :mod:`~losslab.study.spec` (the file and its validation),
:mod:`~losslab.study.plan` (cells, content hashes, stacks), :mod:`~losslab.study.store`
(SQLite, leases), :mod:`~losslab.study.executors` (in-process, process pool, Ray),
:mod:`~losslab.study.runner` (the driver), :mod:`~losslab.study.results` (DataFrames).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from losslab.lazy import members_on_first_use

if TYPE_CHECKING:
    from losslab.study.plan import Cell, Group, Plan, expand
    from losslab.study.results import StudyResults, load
    from losslab.study.runner import run_study
    from losslab.study.spec import Study, StudyFileError, load_study

# Imported on first use (PEP 562): `losslab --help` and every CLI verb import this package
# for its `cli` module, and pandas and torch behind these names cost seconds at start-up.
_LAZY = {
    "Cell": "plan", "Group": "plan", "Plan": "plan", "expand": "plan",
    "StudyResults": "results", "load": "results", "run_study": "runner",
    "Study": "spec", "StudyFileError": "spec", "load_study": "spec",
}

__getattr__ = members_on_first_use(__name__, _LAZY)

__all__ = [
    "Cell",
    "Group",
    "Plan",
    "Study",
    "StudyFileError",
    "StudyResults",
    "expand",
    "load",
    "load_study",
    "run_study",
]
