"""The ready-made studies of ``studies/``: every file validates at every scale, every full
scale plans (the dry run's work), and every quick scale runs end to end at a tiny size
(one seed, two steps) so that none of them rots. Studies whose data is not on this machine
(CIFAR offline) are skipped with the data layer's message."""

import textwrap
import tomllib
from pathlib import Path

import pytest

from losslab.data import DATASETS
from losslab.errors import LosslabError
from losslab.study import StudyFileError, load, load_study, run_study
from losslab.study.executors import DataCache
from losslab.study.runner import prepare

STUDIES = sorted(p for p in (Path(__file__).resolve().parents[1] / "studies").glob("*.toml")
                 if p.name != "claims.toml")
TINY_STEPS = 2
TINY_LOSSES = 3


def skip_without_data(study) -> None:
    """Skip the test when a dataset of ``study`` is not on this machine (CIFAR offline).

    Each dataset is loaded with default options, so only missing files can fail here; a
    bad option of the study itself still fails the test that runs it.
    """
    from losslab.data import FILELESS, load_dataset

    for item in study.spec.datasets:
        # Tests never download: file-based sets are looked for on disk only.
        options = {} if item.name in FILELESS else {"download": False}
        try:
            load_dataset(item.name, **options)
        except LosslabError as err:
            pytest.skip(f"{study.path.name}: {item.name} is not on this machine: "
                        f"{str(err).splitlines()[0]}")


def planned(path: Path, scale: str):
    """(study, plan) at ``scale``, skipping when its data is absent."""
    study = load_study(path, scale)
    skip_without_data(study)
    return study, prepare(study, DataCache())


# The seed papers' experiments, the demo and the external references: each
# with a quick scale (minutes on 2 CPU cores) and a full one (the paper's protocol).
SEED_STUDIES = {
    "janocha-toy", "janocha-mnist", "janocha-cifar10", "janocha-noise",
    "twoscale-mnist", "twoscale-cifar10", "twoscale-cifar100",
    "daza-numpy-mlp", "daza-grid-search", "daza-vgg",
    "activations", "robust-losses", "demo", "references", "reference-mnist1d",
}


def scales_of(path: Path) -> list[str]:
    return list(tomllib.loads(path.read_text())["scales"])


def test_every_seed_experiment_has_a_quick_and_a_full_study():
    assert SEED_STUDIES <= {p.stem for p in STUDIES}
    for path in STUDIES:
        if path.stem in SEED_STUDIES:
            assert {"quick", "full"} <= set(scales_of(path)), path.name


# Studies whose data is not on a 2-core CPU machine (CIFAR): their claims are judged at the
# full scale, on a GPU; every other study has a `medium` scale that decides its claims.
CIFAR_STUDIES = {"janocha-cifar10", "twoscale-cifar10", "twoscale-cifar100",
                 "daza-numpy-mlp", "daza-grid-search", "daza-vgg"}
# Owned by the demo's maintainers: its medium scale is added there.
WITHOUT_MEDIUM = CIFAR_STUDIES | {"demo"}


@pytest.mark.parametrize("path", [p for p in STUDIES if p.stem not in WITHOUT_MEDIUM],
                         ids=lambda p: p.stem)
def test_medium_scale_has_five_seeds_or_more(path):
    assert "medium" in scales_of(path), f"{path.name}: add a [scales.medium] table"
    study = load_study(path, "medium")
    assert len(study.spec.seed_list) >= 5


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_every_scale_validates_and_is_named_after_its_file(path):
    for scale in [None, *scales_of(path)]:
        study = load_study(path, scale)
        assert study.name == path.stem
        assert study.spec.description


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in STUDIES if p.stem in SEED_STUDIES],
                         ids=lambda p: p.stem)
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
    study = load_study(path, "quick" if "quick" in scales_of(path) else None)
    train = {k: v for k, v in study.spec.train.items() if k not in ("steps", "epochs")}
    train.update(steps=TINY_STEPS, eval_every=TINY_STEPS, eval_train=False)
    # One seed and the first losses keep the run small (every loss entry was built by
    # load_study already); the input-noise measurement evaluates the whole training set
    # once per eps, so two values of eps suffice to exercise it.
    measure = dict(study.spec.measure)
    if measure.get("noise_robustness"):
        options = measure["noise_robustness"]
        measure["noise_robustness"] = {**(options if isinstance(options, dict) else {}),
                                       "eps": [0.0, 0.5]}
    study.spec = study.spec.model_copy(update={
        "seeds": [0], "train": train, "losses": study.spec.losses[:TINY_LOSSES],
        "measure": measure,
    })
    skip_without_data(study)
    events = run_study(study, tmp_path / "out", device="cpu")
    cells = load(tmp_path / "out").cells()
    assert len(cells) == events.total > 0
    assert set(cells["status"]) <= {"done", "diverged"}, cells.loc[
        cells["status"] == "failed", "error"
    ].tolist()
    assert (cells.loc[cells["status"] == "done", "steps_run"] == TINY_STEPS).all()


FALLBACK = """
name = "fallback"
seeds = 1
datasets = [{name = "PRIMARY", fallback = "FALLBACK", n_train = 40, n_test = 40}]
models = [{name = "mlp", hidden = [4]}]
losses = ["log"]
[train]
batch_size = 20
steps = 2
eval_every = 2
"""


def fallback_study(tmp_path, primary, fallback):
    path = tmp_path / "fallback.toml"
    text = FALLBACK.replace("PRIMARY", primary).replace("FALLBACK", fallback)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def absent_dataset(monkeypatch):
    """A registered dataset whose files are never found (as MNIST offline)."""

    def absent(root, rng, **options):
        raise LosslabError("dataset 'absent': the required files were not found")

    monkeypatch.setitem(DATASETS, "absent", absent)


def test_absent_dataset_runs_on_its_fallback_and_says_so(tmp_path, absent_dataset):
    study = load_study(fallback_study(tmp_path, "absent", "checkerboard"))
    assert [(d.name, d.options) for d in study.spec.datasets] == [
        ("checkerboard", {"n_train": 40, "n_test": 40})
    ]
    assert len(study.notes) == 1 and "absent is not available" in study.notes[0]
    assert "fallback checkerboard" in study.notes[0]
    events = run_study(study, tmp_path / "out", device="cpu")
    assert events.messages[0] == study.notes[0]
    assert set(load(tmp_path / "out").cells()["dataset"]) == {"checkerboard"}


def test_present_dataset_keeps_its_name(tmp_path):
    study = load_study(fallback_study(tmp_path, "checkerboard", "spirals"))
    assert [d.name for d in study.spec.datasets] == ["checkerboard"]
    assert "fallback" not in study.spec.datasets[0].options
    assert study.notes == []


@pytest.mark.parametrize("fallback, match", [
    ("fashion_mnst", "Did you mean 'fashion_mnist'"),
    ("digits", "has no option 'n_train'"),       # the fallback must take the same options
])
def test_bad_fallback_is_one_clear_error(tmp_path, fallback, match):
    with pytest.raises(StudyFileError, match=match) as err:
        load_study(fallback_study(tmp_path, "checkerboard", fallback))
    assert "datasets[0].fallback" in str(err.value)
