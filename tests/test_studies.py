"""The ready-made studies of ``studies/``: every file validates at every scale, every full
scale plans (the dry run's work), and every quick scale runs end to end at a tiny size
(one seed, two steps) so that none of them rots. Studies whose data is not on this machine
(CIFAR offline) are skipped with the data layer's message."""

from pathlib import Path

import pytest

from losslab.errors import LosslabError
from losslab.study import load, load_study, run_study
from losslab.study.executors import DataCache
from losslab.study.runner import prepare

STUDIES = sorted((Path(__file__).resolve().parents[1] / "studies").glob("*.toml"))
SCALES = ("quick", "full")
TINY_STEPS = 2


def planned(path: Path, scale: str):
    """(study, plan) at ``scale``; skips the test when a dataset's files are absent."""
    study = load_study(path, scale)
    try:
        plan = prepare(study, DataCache())
    except LosslabError as err:
        if "files were not found" not in str(err):
            raise
        pytest.skip(f"{path.name}: data not on this machine: {str(err).splitlines()[0]}")
    return study, plan


def test_every_seed_experiment_has_a_study():
    # ../shared/SPEC.md "The seed experiments", the demo and the external references.
    expected = {
        "janocha-toy", "janocha-mnist", "janocha-cifar10", "janocha-noise",
        "twoscale-mnist", "twoscale-cifar10", "twoscale-cifar100",
        "daza-numpy-mlp", "daza-grid-search", "daza-vgg",
        "activations", "robust-losses", "demo", "references", "reference-mnist1d",
    }
    assert {p.stem for p in STUDIES} == expected


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_scale_validates_and_is_named_after_its_file(path):
    for scale in SCALES:
        study = load_study(path, scale)
        assert study.name == path.stem
        assert study.spec.description


@pytest.mark.slow
@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_full_scale_plans(path):
    study, plan = planned(path, "full")
    quick_study, quick_plan = planned(path, "quick")
    assert plan.cells and plan.groups
    # The full scale is the paper's protocol: never smaller than the quick one.
    assert max(c.axes["steps"] for c in plan.cells) >= max(
        c.axes["steps"] for c in quick_plan.cells
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_quick_scale_runs_at_tiny_size(path, tmp_path):
    study = load_study(path, "quick")
    train = {k: v for k, v in study.spec.train.items() if k not in ("steps", "epochs")}
    train.update(steps=TINY_STEPS, eval_every=TINY_STEPS, eval_train=False)
    study.spec = study.spec.model_copy(update={"seeds": [0], "train": train})
    try:
        events = run_study(study, tmp_path / "out", device="cpu")
    except LosslabError as err:
        if "files were not found" not in str(err):
            raise
        pytest.skip(f"{path.name}: data not on this machine: {str(err).splitlines()[0]}")
    cells = load(tmp_path / "out").cells()
    assert len(cells) == events.total > 0
    assert set(cells["status"]) <= {"done", "diverged"}, cells.loc[
        cells["status"] == "failed", "error"
    ].tolist()
    assert (cells.loc[cells["status"] == "done", "steps_run"] == TINY_STEPS).all()
