"""Running studies in-process: stored results against per-model training, the DataFrames,
resume, failures, directory checks and the command line (real engine, real SQLite)."""

import hashlib
import json
import sqlite3
import textwrap

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import roundoff
from losslab import cli
from losslab.data import load_dataset
from losslab.errors import LosslabError
from losslab.models import for_data
from losslab.study import load, load_study, run_study
from losslab.study.results import CELL_COLUMNS
from losslab.train import TrainConfig, train

TINY = """
name = "tiny"
description = "two losses, two learning rates, two seeds on a small checkerboard"
seeds = 2
datasets = [{name = "checkerboard", n_train = 120, n_test = 80}]
models = [{name = "mlp", hidden = [8]}]
losses = ["log", "hinge"]
[train]
lr = [1e-2, 3e-2]
batch_size = 20
steps = 12
eval_every = 4
"""
runner = CliRunner()


def write(tmp_path, text=TINY, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


GAMMA = 120 * 2.0**-24  # K u32 for the longest float32 reduction of the tiny study
STEPS_RUN = 12


def _shaken(model):
    """``model`` with every weight scaled by (1 + GAMMA): one step's worth of round-off."""
    return roundoff.shaken(model, GAMMA, double=False)


def _bound(reference, moved):
    """The bound of tests/roundoff.py over the STEPS_RUN steps of a cell."""
    return roundoff.bound(STEPS_RUN, reference, moved, GAMMA)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    study = load_study(write(root))
    events = run_study(study, root / "out", device="cpu")
    return root, events


@pytest.mark.slow
def test_every_cell_equals_training_that_model_alone(tiny_run):
    root, events = tiny_run
    assert events.done == events.total == 8 and events.failed == 0
    cells = load(root / "out").cells()
    curves = load(root / "out").curves()
    data = load_dataset("checkerboard", n_train=120, n_test=80)
    for row in cells.itertuples():
        net = for_data("mlp", data.input_shape, data.num_classes, hidden=[8], seed=row.seed)
        config = TrainConfig(lr=row.lr, batch_size=20, steps=12, eval_every=4, seed=row.seed,
                             device="cpu")
        alone = train(net, data, row.loss_name, config)
        # The stack (batched matmuls) and the single model differ only in float32 summation
        # order: one step rounds each sum of K <= 120 terms (the loss means over the 120
        # training samples) to within GAMMA = K u32 of its magnitude. How much training
        # amplifies that belongs to the run (Adam divides by sqrt(v) + eps): it is measured
        # by training alone again from weights scaled by (1 + GAMMA). Round-off enters at
        # each of the T = 12 steps, none growing more than one entering at step 0, so T
        # times that run's distance (plus T GAMMA |value|) bounds the difference.
        shaken = train(_shaken(for_data("mlp", data.input_shape, data.num_classes, hidden=[8],
                                        seed=row.seed)), data, row.loss_name, config)
        for metric in ("train_loss", "test_loss"):
            tol = _bound(alone.final[metric], shaken.final[metric])
            # past 1e-3 the bound would hide a real difference (lr 1e-2 vs 3e-2 moves the
            # losses by > 1e-2): the run would be too chaotic to compare
            assert tol < 1e-3, f"{metric}: round-off amplified to {tol:.1e}"
            assert abs(getattr(row, metric) - alone.final[metric]) <= tol, metric
        # a round-off tie of a sample's top logits may flip it: one sample of the split
        for metric, n in (("train_accuracy", 120), ("test_accuracy", 80)):
            assert abs(getattr(row, metric) - alone.final[metric]) <= 1.001 / n, metric
        mine = curves[(curves.cell_id == row.cell_id) & (curves.metric == "test_loss")]
        assert mine.step.tolist() == [4, 8, 12]
        tol = _bound(np.array(alone.curves["test_loss"]), np.array(shaken.curves["test_loss"]))
        assert tol < 1e-3
        np.testing.assert_allclose(mine.value, alone.curves["test_loss"], rtol=0, atol=tol)


def test_cells_frame_follows_the_contract(tiny_run):
    root, _ = tiny_run
    res = load(root / "out")
    cells = res.cells()
    assert list(cells.columns[: len(CELL_COLUMNS)]) == list(CELL_COLUMNS)
    assert (cells.status == "done").all() and cells.error.isna().all()
    assert sorted(cells.loss.unique()) == ["hinge", "log"]
    assert sorted(cells.lr.unique()) == [1e-2, 3e-2] and sorted(cells.seed.unique()) == [0, 1]
    assert (cells.steps == 12).all() and (cells.steps_run == 12).all()
    assert cells.dev_accuracy.isna().all() and cells.test_accuracy.between(0, 1).all()
    assert cells.cell_id.is_unique and cells.condition_id.nunique() == 4
    assert res.axes() == ["loss", "lr", "seed"]
    config = json.loads(cells.config.iloc[0])
    assert config["seed"] == cells.seed.iloc[0] and config["train"]["steps"] == 12
    assert cells.condition.iloc[0] == "checkerboard / mlp[8x1] / relu / log / lr=0.01"
    assert res.study_text().startswith("\nname = \"tiny\"")
    env = res.environment()
    assert env["device"] == "cpu" and env["losslab"] and env["torch"] and env["threads"] >= 1
    assert set(res.curves().columns) == {"cell_id", "step", "metric", "value"}
    assert list(res.measurements().columns) == ["cell_id", "step", "name", "index", "value"]


def test_rerun_skips_stored_cells_and_a_new_value_adds_only_new_cells(tmp_path):
    path = write(tmp_path, TINY.replace("lr = [1e-2, 3e-2]", "lr = 1e-2"))
    first = run_study(load_study(path), tmp_path / "out", device="cpu")
    assert first.done == first.total == 4
    before = load(tmp_path / "out").cells()
    again = run_study(load_study(path), tmp_path / "out", device="cpu")
    assert again.done_before == again.done == 4
    pd.testing.assert_frame_equal(load(tmp_path / "out").cells(), before)
    path.write_text(textwrap.dedent(TINY.replace('lr = [1e-2, 3e-2]', 'lr = 1e-2').replace(
        '"log", "hinge"', '"log", "hinge", "l2"')))
    grown = run_study(load_study(path), tmp_path / "out", device="cpu")
    assert grown.total == 6 and grown.done_before == 4 and grown.done == 6
    after = load(tmp_path / "out").cells().set_index("cell_id")
    kept = before.set_index("cell_id")
    pd.testing.assert_frame_equal(after.loc[kept.index, kept.columns], kept)


def test_a_cell_that_fails_at_run_time_is_recorded_and_the_study_goes_on(tmp_path):
    # 2^36 hidden units cannot be allocated: a real out-of-memory error in one stack.
    text = TINY.replace("lr = [1e-2, 3e-2]", "lr = 1e-2").replace(
        'models = [{name = "mlp", hidden = [8]}]',
        'models = [{name = "mlp", hidden = [68719476736]}, {name = "mlp", hidden = [8]}]')
    events = run_study(load_study(write(tmp_path, text)), tmp_path / "out", device="cpu")
    cells = load(tmp_path / "out").cells()
    failed = cells[cells.model == "mlp[68719476736x1]"]
    assert (failed.status == "failed").all() and len(failed) == 4
    assert failed.error.str.contains("allocate").all()
    assert (cells[cells.model == "mlp[8x1]"].status == "done").all()
    assert events.failed == 4 and events.done == 4


def test_another_study_or_version_is_refused_without_touching_the_store(tmp_path):
    path = write(tmp_path, TINY.replace("lr = [1e-2, 3e-2]", "lr = 1e-2").replace(
        "steps = 12", "steps = 4"))
    run_study(load_study(path), tmp_path / "out", device="cpu")
    store = tmp_path / "out" / "study.sqlite"
    # The same study from another path is the same study: every cell is found stored.
    (tmp_path / "copy").mkdir()
    copy = write(tmp_path / "copy", path.read_text())
    again = run_study(load_study(copy), tmp_path / "out", device="cpu")
    assert again.done_before == again.done == 4 and again.trained == 0
    before = digest(store)
    other = write(tmp_path, path.read_text().replace('name = "tiny"', 'name = "other"'), "o.toml")
    with pytest.raises(LosslabError, match=r"holds study 'tiny' \(from .*tiny.toml\), not "
                                           r"'other' \(from .*o.toml\)"):
        run_study(load_study(other), tmp_path / "out", device="cpu")
    assert digest(store) == before
    conn = sqlite3.connect(store)
    with conn:
        conn.execute("UPDATE meta SET value = '0.0.1' WHERE key = 'losslab_version'")
    conn.close()
    changed = digest(store)
    with pytest.raises(LosslabError, match="made by losslab 0.0.1"):
        run_study(load_study(path), tmp_path / "out", device="cpu")
    assert digest(store) == changed != before


def test_missing_dataset_files_and_unwritable_directory(tmp_path):
    missing = TINY.replace('{name = "checkerboard", n_train = 120, n_test = 80}',
                           f'{{name = "arrays", path = "{tmp_path / "absent.npz"}"}}')
    with pytest.raises(LosslabError, match=r"datasets\[0\]"):
        run_study(load_study(write(tmp_path, missing)), tmp_path / "out", device="cpu")
    assert not (tmp_path / "out").exists()
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(LosslabError, match="cannot write to the study directory"):
        run_study(load_study(write(tmp_path)), blocker / "out", device="cpu")


def test_cli_run_status_export_report(tmp_path):
    path = write(tmp_path, TINY.replace("lr = [1e-2, 3e-2]", "lr = 1e-2").replace(
        "steps = 12", "steps = 4"))
    out = tmp_path / "out"
    dry = runner.invoke(cli.app, ["run", str(path), "--out", str(out), "--dry-run",
                                  "--device", "cpu"])
    assert dry.exit_code == 0, dry.output
    assert "4 cells (0 excluded), 1 stacks, 0 already stored" in dry.stdout
    assert not out.exists()
    result = runner.invoke(cli.app, ["run", str(path), "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "tiny: 4/4 cells stored" in result.stdout
    # Not a terminal: plain progress lines instead of a live bar.
    assert "4/4 cells" in result.stderr and "model-steps/s" in result.stderr
    quiet = runner.invoke(cli.app, ["run", str(path), "--out", str(out), "--quiet"])
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    status = runner.invoke(cli.app, ["status", str(out), "--json"])
    counts = json.loads(status.stdout)
    assert counts == {"study": "tiny", "total": 4, "pending": 0, "running": 0,
                      "interrupted": 0, "done": 4,
                      "diverged": 0, "failed": 0}
    cells = load(out).cells()
    for fmt, read in (("csv", pd.read_csv), ("parquet", pd.read_parquet)):
        target = tmp_path / f"cells.{fmt}"
        exported = runner.invoke(cli.app, ["export", str(out), "--format", fmt, "--out",
                                           str(target)])
        assert exported.exit_code == 0, exported.output
        back = read(target)
        assert back.cell_id.tolist() == cells.cell_id.tolist()
        np.testing.assert_allclose(back.test_accuracy, cells.test_accuracy, rtol=0, atol=0)
    report = runner.invoke(cli.app, ["report", str(out), "--text"])
    assert report.exit_code == 0, report.output
    for condition, rows in cells.groupby("condition"):
        line = next(ln for ln in report.stdout.splitlines() if condition in ln)
        mean = rows.test_accuracy.mean() * 100
        sd = rows.test_accuracy.std(ddof=1) * 100
        assert f"{mean:.2f} ± {sd:.2f}" in line
    page = runner.invoke(cli.app, ["report", str(out)])
    assert page.exit_code == 0, page.output
    assert page.stdout.strip() == str(out / "report" / "index.html")
    assert "tiny" in (out / "report" / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "{dir}/absent.toml"], "no such study file"),
        (["run", "{dir}/bad.toml"], "malformed TOML"),
        (["run", "{dir}/tiny.toml", "--scale", "huge"], "--scale 'huge' is not defined"),
        (["status", "{dir}"], "holds no study results"),
        (["export", "{dir}", "--format", "xlsx"], "csv or parquet"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(tmp_path, console, args, message):
    write(tmp_path)
    (tmp_path / "bad.toml").write_text("name = [\n")
    code, _, err = console(*[a.replace("{dir}", str(tmp_path)) for a in args])
    assert code == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err


def test_measure_table_rows_are_stored_per_cell(tmp_path):
    from losslab.metrics.measurements import get_measurement
    from losslab.train import ModelSpec, train_many

    text = TINY.replace("lr = [1e-2, 3e-2]", "lr = 1e-2") + "\n[measure]\ngrad_norms = true\n"
    run_study(load_study(write(tmp_path, text)), tmp_path / "out", device="cpu")
    res = load(tmp_path / "out")
    rows = res.measurements()
    cells = res.cells()
    assert set(rows.cell_id) == set(cells.cell_id)
    # Reference: the engine called directly with the same measurement on the same stack.
    data = load_dataset("checkerboard", n_train=120, n_test=80)
    specs = [ModelSpec(r.loss_name, int(r.seed), lr=1e-2, weight_decay=0.0)
             for r in cells.itertuples()]
    direct = train_many(
        lambda s: for_data("mlp", data.input_shape, data.num_classes, hidden=[8], seed=s),
        specs, data, TrainConfig(batch_size=20, steps=12, eval_every=4, device="cpu"),
        measure=[get_measurement("grad_norms")])
    for row, result in zip(cells.itertuples(), direct, strict=True):
        mine = rows[rows.cell_id == row.cell_id]
        assert len(mine) == len(result.measurements) > 0
        for (step, name, index, value), got in zip(result.measurements, mine.itertuples(),
                                                   strict=True):
            assert (got.step, got.name, got.index) == (step, name, index)
            # Same stack, same order of operations: the stored value is the engine's.
            assert got.value == value
