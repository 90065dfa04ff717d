"""Dry runs plan from dataset shapes and estimate from FLOPs: nothing loaded, downloaded or
trained; shapes agree with loading; absent files are reported, not fatal; identical
stacks get identical estimates; the machine's rates are measured once and cached."""

import textwrap
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from losslab import cli
from losslab.catalogue import PRESETS
from losslab.data import load_dataset
from losslab.data.info import describe_dataset
from losslab.errors import LosslabError
from losslab.study import estimate, load_study, run_study
from losslab.study.executors import DataCache
from losslab.study.runner import prepare

STUDIES = PRESETS
runner = CliRunner()


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Rates and data files looked for under tmp_path only (no CIFAR, no stored rates)."""
    monkeypatch.setenv("LOSSLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("LOSSLAB_DATA", raising=False)


@pytest.mark.parametrize("name, options", [
    ("checkerboard", {}),
    ("spirals", {"n_train": 90, "n_test": 30, "num_classes": 3, "dev_fraction": 0.2}),
    ("random_labels", {"n_train": 50, "flatten": True}),
    ("digits", {}),
    ("digits", {"test_fraction": 0.3, "dev_fraction": 0.15, "flatten": True,
                "standardize": True, "label_noise_rate": 0.4, "seed": 3}),
    ("mnist1d", {"dev_fraction": 0.1}),
])
def test_described_shapes_are_the_loaded_shapes(name, options):
    info = describe_dataset(name, **options)
    data = load_dataset(name, **options)
    assert info.missing is None
    assert (info.n_train, info.n_dev, info.n_test) == (
        len(data.y_train), 0 if data.y_dev is None else len(data.y_dev), len(data.y_test))
    assert info.input_shape == data.input_shape
    assert info.num_classes == data.num_classes


def test_absent_files_are_described_with_the_way_to_get_them():
    info = describe_dataset("cifar100", dev_fraction=0.1, flatten=True)
    assert (info.n_train, info.n_dev, info.n_test) == (45000, 5000, 10000)
    assert info.input_shape == (3 * 32 * 32,) and info.num_classes == 100
    assert "cifar-100-python" in info.missing and "cifar-100-python.tar.gz" in info.missing


def test_model_cost_counts_flops_by_hand():
    # MLP 2-200x5-4: 2 * sum(in * out) per sample = 2 * (2*200 + 4*200*200 + 200*4).
    mlp = estimate.model_cost({"name": "mlp", "hidden": [200] * 5}, (2,), 4)
    assert mlp.matmul_flops == 2 * (2 * 200 + 4 * 200 * 200 + 200 * 4)
    assert mlp.conv_flops == 0
    assert mlp.parameters == 2 * 200 + 200 + 4 * (200 * 200 + 200) + 200 * 4 + 4
    # LeNet-5 on 3x32x32: conv1 6@5x5 -> 28x28, conv2 16@5x5 on 6x14x14 -> 10x10.
    lenet = estimate.model_cost({"name": "lenet5"}, (3, 32, 32), 10)
    assert lenet.conv_flops == 2 * (3 * 25 * 6 * 28 * 28) + 2 * (6 * 25 * 16 * 10 * 10)


def test_dry_run_loads_nothing_and_identical_stacks_get_identical_estimates(monkeypatch):
    def refuse(self, config):
        raise AssertionError(f"a dry run loaded {config['name']}")

    monkeypatch.setattr(DataCache, "get", refuse)
    result = runner.invoke(cli.app, ["run", str(STUDIES / "demo.toml"), "--scale", "full",
                                     "--dry-run", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    stacks = [line for line in result.stdout.splitlines() if line.startswith("  stack ")]
    assert len(stacks) >= 2
    by_shape: dict[str, set[str]] = {}
    for line in stacks:
        shape, time = line.split(": ", 1)[1].rsplit(", ~", 1)
        by_shape.setdefault(shape, set()).add(time)
    assert any(len(s) == 1 for s in by_shape.values())
    assert all(len(times) == 1 for times in by_shape.values()), by_shape


def test_dry_run_of_a_study_without_its_data_says_so():
    result = runner.invoke(cli.app, ["run", str(STUDIES / "twoscale-cifar10.toml"), "--scale",
                                     "full", "--dry-run", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "data missing: dataset 'cifar10'" in result.stdout
    assert "estimated time" in result.stdout


def test_the_real_run_still_fails_early_on_missing_files(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text(textwrap.dedent("""
        name = "c"
        seeds = 1
        datasets = [{name = "cifar10", download = false}]
        models = [{name = "lenet5"}]
        losses = ["log"]
        [train]
        steps = 2
    """))
    study = load_study(path)
    plan = prepare(study, DataCache(), load=False)
    assert len(plan.cells) == 1
    with pytest.raises(LosslabError, match="cifar10"):
        run_study(study, tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()


def test_rates_are_measured_once_per_machine_and_thread_count(monkeypatch):
    calls = []

    def fake(device="cpu"):
        calls.append(device)
        return {"flops": 1e10, "bandwidth": 1e9, "op_seconds": 1e-6}

    monkeypatch.setattr(estimate, "measure_rates", fake)
    first = estimate.machine_rates("cpu", 1)
    assert estimate.machine_rates("cpu", 1) == first and calls == ["cpu"]
    estimate.machine_rates("cpu", 2)
    assert calls == ["cpu", "cpu"]
    assert estimate.cache_file().exists()


def test_makespan_hands_stacks_to_the_first_free_worker():
    assert estimate.makespan([3.0, 3.0, 3.0], 1) == 9.0
    assert estimate.makespan([3.0, 3.0, 3.0], 2) == 6.0
    assert estimate.makespan([4.0, 1.0, 1.0, 1.0], 2) == 4.0
    assert estimate.makespan([], 2) == 0.0


def scales_of(path: Path) -> list:
    return [None, *tomllib.loads(path.read_text()).get("scales", {})]


# Study files (the claims file beside them is not one).
STUDY_FILES = sorted(p for p in STUDIES.glob("*.toml") if "losses" in tomllib.loads(p.read_text()))


@pytest.mark.parametrize("path", STUDY_FILES, ids=lambda p: p.stem)
def test_every_study_plans_and_estimates_without_its_data(path, monkeypatch):
    monkeypatch.setattr(estimate, "measure_rates",
                        lambda device="cpu": {"flops": 5e10, "bandwidth": 1e10,
                                              "op_seconds": 5e-6})
    for scale in scales_of(path):
        study = load_study(path, scale)
        cache = DataCache()
        plan = prepare(study, cache, load=False)
        seconds = estimate.estimate_seconds(plan, cache, "cpu", threads=1)
        assert len(seconds) == len(plan.groups) > 0
        assert all(0 < s < float("inf") for s in seconds), (scale, seconds)


def test_a_study_describes_mnist1d_without_generating_it(monkeypatch):
    # The study resolves the loader's defaults (generator_seed=None); that is still the
    # published data, whose shapes are known: generating it took 20 s of a dry run.
    def refuse():
        raise AssertionError("the dry run generated MNIST-1D")

    monkeypatch.setattr("losslab.data.mnist1d._published", refuse)
    study = load_study(STUDIES / "reference-mnist1d.toml", "quick")
    cache = DataCache()
    plan = prepare(study, cache, load=False)
    info = cache.describe(plan.groups[0].config["dataset"])
    assert (info.n_train, info.n_test, info.input_shape) == (4000, 1000, (40,))


@pytest.mark.parametrize("name, folder", [("cifar10", "cifar-10-batches-py"),
                                          ("cifar100", "cifar-100-python")])
def test_the_cifar_files_go_where_reproduction_md_says(name, folder, tmp_path, monkeypatch):
    from losslab.data.cifar import files_needed

    text = files_needed(name)
    assert f"`{folder}/`" in text and f"`$LOSSLAB_DATA/{name}/`" in text
    monkeypatch.setenv("LOSSLAB_DATA", str(tmp_path / "data"))
    assert describe_dataset(name).missing is not None
    (tmp_path / "data" / name / folder).mkdir(parents=True)
    assert describe_dataset(name).missing is None
