"""Tiny study files and their stores, shared by the study tests: write a study file, run
it once per module, and compare two stores cell for cell.

Same seeds on the CPU give bit-identical training, and a checkpoint holds every float of
a stack's state (the trainer's own resume test, tests/test_train.py, asks the same), so
two stores of one study are compared exactly, without a tolerance.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd

from losslab.study import load, load_study, run_study

# Columns that record how long, not what: they differ between runs by design.
RUN_COLUMNS = ["seconds"]


def six_stacks(name: str, steps: int, eval_every: int) -> str:
    """A study of six stacks (one per hidden width, 4 to 9), each 2 losses x 2 seeds on a
    small checkerboard: 24 cells for the tests of concurrent and killed runs."""
    return f"""
name = "{name}"
seeds = 2
datasets = [{{name = "checkerboard", n_train = 60, n_test = 40}}]
models = [{{name = "mlp", hidden = [4]}}, {{name = "mlp", hidden = [5]}},
          {{name = "mlp", hidden = [6]}}, {{name = "mlp", hidden = [7]}},
          {{name = "mlp", hidden = [8]}}, {{name = "mlp", hidden = [9]}}]
losses = ["log", "hinge"]
[train]
batch_size = 20
steps = {steps}
eval_every = {eval_every}
"""


def write_study(directory: Path, text: str, name: str = "study.toml") -> Path:
    """``text`` (dedented) as ``directory/name``; returns the path."""
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def run_reference(tmp_path_factory, text: str, name: str = "study.toml", **options) -> Path:
    """Write ``text`` into a fresh folder and run it in-process (CPU); returns the store's
    folder, ``<folder>/out``, with the study file beside it as ``<folder>/name``."""
    root = tmp_path_factory.mktemp(Path(name).stem)
    path = write_study(root, text, name)
    run_study(load_study(path), root / "out", device="cpu", **options)
    return root / "out"


def snapshot(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Everything a store holds about its cells (less RUN_COLUMNS), in a canonical order:
    the cells and the curves."""
    res = load(directory)
    cells = res.cells().drop(columns=RUN_COLUMNS).sort_values("cell_id").reset_index(drop=True)
    curves = res.curves().sort_values(["cell_id", "metric", "step"]).reset_index(drop=True)
    return cells, curves


def assert_same_store(directory: Path, reference, steps: str | None = None) -> None:
    """The store in ``directory`` equals ``reference`` (a folder, or its snapshot) exactly.
    ``steps="reference"``: compare the curves at the reference's evaluation steps only (a
    stopped stack adds one evaluation where it stopped, as the trainer's stop test shows)."""
    cells, curves = snapshot(directory)
    ref_cells, ref_curves = reference if isinstance(reference, tuple) else snapshot(reference)
    pd.testing.assert_frame_equal(cells, ref_cells, check_exact=True)
    if steps == "reference":
        curves = curves[curves.step.isin(set(ref_curves.step))].reset_index(drop=True)
    pd.testing.assert_frame_equal(curves, ref_curves, check_exact=True)


# One stack of two models, long enough that its workers report steps part-way (the engine
# reports every 0.5 s, a worker forwards every FORWARD_SECONDS) on any machine.
STEPS = 4000
LONG_STACK = f"""
name = "long-stack"
description = "one stack long enough to report from inside"
seeds = 2
datasets = [{{name = "checkerboard", n_train = 200, n_test = 100}}]
models = [{{name = "mlp", hidden = [64, 64]}}]
losses = ["log"]
[train]
batch_size = 50
steps = {STEPS}
eval_every = {STEPS}
eval_train = false
"""


def assert_workers_forward_their_steps(path: Path, out: Path, executor: str) -> None:
    """A stack of :data:`LONG_STACK` (at ``path``) trained by ``executor``'s workers reports
    its steps to the driver while it trains, and nothing is left in flight at the end."""
    seen: list[tuple[int, int]] = []

    def on_update(events):
        seen.extend(events.stacks_live.values())

    events = run_study(load_study(path), out, executor=executor, jobs=1, device="cpu",
                       on_update=on_update)
    assert events.done == 2
    assert seen and all(total == STEPS for _, total in seen)
    assert any(0 < step < STEPS for step, _ in seen), seen
    assert events.stacks_live == {}
