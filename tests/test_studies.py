"""The ready-made studies shipped in the package (``src/losslab/studies/``): every file
validates at every scale, every full scale plans (the dry run's work), every quick scale
runs end to end at a tiny size (one seed, two steps) so that none of them rots, and the
demo's models learn. Nothing is skipped: a file-based data set that is not on this machine
(CIFAR offline) is replaced by a stand-in of its shape made of scikit-learn's embedded
digits."""

import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

from chance import above_chance
from losslab.catalogue import PRESETS
from losslab.data import DATASETS, Dataset, load_dataset
from losslab.data.digits import load_digits
from losslab.errors import LosslabError
from losslab.study import StudyFileError, load, load_study, run_study
from losslab.study.executors import DataCache
from losslab.study.runner import prepare

STUDIES = sorted(p for p in PRESETS.glob("*.toml") if p.name != "claims.toml")
TINY_STEPS = 2
TINY_LOSSES = 3
LEARNERS = ("log", "hinge", "cauchy_schwarz")


# Absent file-based sets -> their classes; each is (3, 32, 32) colour images.
STAND_INS = {"cifar10": 10, "cifar100": 100}


def digits_as(name: str, classes: int):
    """A loader of the digits as ``name``: 8x8 images blown up to 3 x 32 x 32 (each pixel a
    4x4 block, the grey copied to 3 channels), labels 0..9 among ``classes`` classes (coarse
    label: fine // 5, as CIFAR-100's 20 super-classes of 5)."""

    def load(root, rng, **options):  # the absent set's own options (download=...) do not apply
        d = load_digits(root, rng)

        def colour(x):
            return np.repeat(np.kron(x, np.ones((4, 4), np.float32))[:, None], 3, axis=1)

        coarse = {} if classes < 100 else {"coarse_train": d.y_train // 5,
                                           "coarse_test": d.y_test // 5}
        return Dataset(x_train=colour(d.x_train), y_train=d.y_train, x_dev=None, y_dev=None,
                       x_test=colour(d.x_test), y_test=d.y_test, num_classes=classes,
                       class_names=[str(c) for c in range(classes)], name=name,
                       metadata={"source": f"digits standing in for {name}"}, **coarse)

    return load


@pytest.fixture
def stand_ins(monkeypatch):
    """``stand_ins(study)`` replaces each data set of ``study`` that is not on this machine by
    :func:`digits_as` (tests never download: file-based sets are looked for on disk only)."""
    from losslab.data import FILELESS, load_dataset

    def replace(study) -> None:
        for item in study.spec.datasets:
            options = {} if item.name in FILELESS else {"download": False}
            try:
                load_dataset(item.name, **options)
            except LosslabError as err:
                assert item.name in STAND_INS, f"{item.name}: absent ({err}); add a stand-in"
                monkeypatch.setitem(DATASETS, item.name,
                                    digits_as(item.name, STAND_INS[item.name]))

    return replace


def planned(path: Path, scale: str, stand_ins):
    """(study, plan) at ``scale``, absent data replaced by stand-ins."""
    study = load_study(path, scale)
    stand_ins(study)
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
def test_full_scale_plans(path, stand_ins):
    study, plan = planned(path, "full", stand_ins)
    quick_study, quick_plan = planned(path, "quick", stand_ins)
    assert plan.cells and plan.groups
    # The full scale is the paper's protocol: never smaller than the quick one.
    assert max(c.axes["steps"] for c in plan.cells) >= max(
        c.axes["steps"] for c in quick_plan.cells
    )


@pytest.mark.slow
@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_quick_scale_runs_at_tiny_size(path, tmp_path, stand_ins):
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
    stand_ins(study)
    events = run_study(study, tmp_path / "out", device="cpu")
    cells = load(tmp_path / "out").cells()
    assert len(cells) == events.total > 0
    # Two steps at a study's own learning rates cannot diverge: every cell finishes.
    assert (cells["status"] == "done").all(), cells.loc[
        cells["status"] != "done", ["loss", "status", "error"]
    ].to_dict("records")
    assert (cells["steps_run"] == TINY_STEPS).all()


def test_the_demo_learns_on_the_digits(tmp_path):
    """The demo's digits panel (its 5 x 200 net, Adam 1e-3), clean labels, 300 steps: every
    loss below ends far above what guessing scores on the 449 test images."""
    study = load_study(STUDIES[[p.stem for p in STUDIES].index("demo")], "quick")
    study.spec = study.spec.model_copy(update={
        "seeds": [0],
        "datasets": [d for d in study.spec.datasets if d.name == "digits"],
        "losses": [item for item in study.spec.losses if item.name in LEARNERS],
        "noise": type(study.spec.noise)(),
        "exclude": [],
        "train": {**study.spec.train, "steps": 300, "eval_every": 300},
    })
    run_study(study, tmp_path / "out", device="cpu")
    cells = load(tmp_path / "out").cells()
    assert sorted(cells["loss"]) == sorted(LEARNERS) and (cells["status"] == "done").all()
    # The test split of seed 0 is the one the cells evaluate on.
    bound = above_chance(load_dataset("digits", seed=0).y_test)
    # measured 0.975-0.980 for these losses at 300 steps; the bound is 0.20
    assert (cells["test_accuracy"] > bound).all(), cells[["loss", "test_accuracy"]]


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
