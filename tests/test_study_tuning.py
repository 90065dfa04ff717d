"""[tune]: per-loss settings chosen on the dev split, never with a test label or a final seed."""

import textwrap

import numpy as np
import pandas as pd
import pytest

import losslab.train
from losslab.data import DATASETS
from losslab.data.toy import load_checkerboard
from losslab.study import load, load_study, run_study
from losslab.study.spec import StudyFileError

STUDY = """
name = "tuned"
seeds = 2
datasets = [{name = "checkerboard", dev_fraction = 0.25, n_train = 160, n_test = 120}]
models = [{name = "mlp", hidden = [8]}]
losses = ["log", "hinge"]
[train]
steps = 30
batch_size = 40
eval_every = 30
[tune]
lr = [1e-3, 3e-2, 3e-1]
seeds = [100, 101]
"""


def write(tmp_path, text, name="s.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("seeds = [100, 101]", "seeds = [1, 100]", "tune.seeds"),
        ('dev_fraction = 0.25, ', "", "datasets[0]"),
        ("lr = [1e-3, 3e-2, 3e-1]", "lr = {low = 1e-4, high = 1e-1}", "tune.lr"),
        ("lr = [1e-3, 3e-2, 3e-1]", "lr = [1e-3, -1.0]", "tune.lr"),
        ("lr = [1e-3, 3e-2, 3e-1]", "lr = [1e-3, 1e-3]", "tune.lr"),
        ("lr = [1e-3, 3e-2, 3e-1]", "trials = 5\nlr = [1e-3]", "tune.trials"),
        ("lr = [1e-3, 3e-2, 3e-1]", "", "tune"),
        ("steps = 30", "steps = 30\nlr = [1e-3, 1e-2]", "train.lr"),
        ("seeds = [100, 101]", "seeds = [100]\nmetric = \"test_accuracy\"", "tune.metric"),
    ],
)
def test_bad_tune_tables_are_refused_with_the_field(tmp_path, old, new, field):
    assert old in STUDY
    with pytest.raises(StudyFileError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_study(write(tmp_path, STUDY.replace(old, new)))


class Spy:
    """Records what every train_many call receives: the data and the specs' seeds and lrs."""

    def __init__(self, monkeypatch):
        self.calls = []
        real = losslab.train.train_many

        def spy(model_fn, specs, data, config, **kwargs):
            self.calls.append({"data": data, "seeds": {s.seed for s in specs},
                               "lr": {(s.loss, s.lr) for s in specs}})
            return real(model_fn, specs, data, config, **kwargs)

        monkeypatch.setattr(losslab.train, "train_many", spy)


def poisoned_checkerboard(root, rng, **options):
    """The checkerboard with every test label moved to the next class."""
    data = load_checkerboard(root, rng, **options)
    data.y_test = (data.y_test + 1) % data.num_classes
    return data


@pytest.mark.slow
def test_grid_tuning_chooses_on_dev_without_test_labels_or_final_seeds(tmp_path, monkeypatch):
    spy = Spy(monkeypatch)
    out = tmp_path / "out"
    run_study(load_study(write(tmp_path, STUDY)), out, device="cpu")
    tuning_calls = [c for c in spy.calls if c["seeds"] <= {100, 101}]
    final_calls = [c for c in spy.calls if c["seeds"] <= {0, 1}]
    assert len(tuning_calls) + len(final_calls) == len(spy.calls) >= 2
    for call in tuning_calls:
        data = call["data"]
        # the test split the engine evaluates during tuning IS the dev split
        assert data.x_test is data.x_dev and data.y_test is data.y_dev
    results = load(out)
    trials = results.tuning()
    # 2 losses x 3 lr candidates, each over the 2 tuning seeds
    assert len(trials) == 6 and (trials["seeds"] == 2).all()
    # independent choice: the best mean dev accuracy per loss, first lr on ties
    for _, rows in trials.groupby("loss"):
        best = rows.sort_values(["score", "lr"], ascending=[False, True]).iloc[0]
        assert rows.loc[rows["chosen"], "lr"].tolist() == [best["lr"]]
    chosen = trials[trials["chosen"]].set_index("loss")["lr"]
    cells = results.cells()
    assert set(cells["seed"]) == {0, 1}
    for _, cell in cells.iterrows():
        assert cell["lr"] == chosen[cell["loss"]]
    assert {pair for c in final_calls for pair in c["lr"]} == set(chosen.items())
    assert results.tuned() == ("lr",)
    # each loss ran at its own lr, yet they are compared seed by seed
    comparison = results.compare("log")
    assert comparison[["loss", "versus", "n"]].values.tolist() == [["hinge", "log", 2]]

    # a rerun trains nothing: trials and cells are stored
    spy.calls.clear()
    run_study(load_study(write(tmp_path, STUDY)), out, device="cpu")
    assert spy.calls == []

    # poisoned test labels change no tuning score and no choice
    monkeypatch.setitem(DATASETS, "poisoned", poisoned_checkerboard)
    poisoned = STUDY.replace('name = "checkerboard"', 'name = "poisoned"')
    run_study(load_study(write(tmp_path, poisoned, "p.toml")), tmp_path / "p", device="cpu")
    other = load(tmp_path / "p").tuning()
    np.testing.assert_array_equal(other["score"], trials["score"])
    pd.testing.assert_series_equal(other["chosen"], trials["chosen"])
    # ... while the final test accuracies do see the poison
    assert load(tmp_path / "p").cells()["test_accuracy"].mean() < cells["test_accuracy"].mean()


@pytest.mark.slow
def test_optuna_tuning_is_seeded_and_within_range(tmp_path):
    text = STUDY.replace(
        "lr = [1e-3, 3e-2, 3e-1]",
        'method = "optuna"\ntrials = 3\nlr = {low = 1e-3, high = 3e-1, log = true}',
    ).replace("seeds = 2\n", "seeds = 1\n")
    path = write(tmp_path, text)
    run_study(load_study(path), tmp_path / "a", device="cpu")
    run_study(load_study(path), tmp_path / "b", device="cpu")
    a, b = load(tmp_path / "a").tuning(), load(tmp_path / "b").tuning()
    assert len(a) == 2 * 3  # 3 trials per loss
    assert a["lr"].between(1e-3, 3e-1).all()
    pd.testing.assert_frame_equal(a, b)  # TPE seeded: the same trials and choices
    cells = load(tmp_path / "a").cells()
    chosen = a[a["chosen"]].set_index("loss")["lr"]
    assert all(cells["lr"] == cells["loss"].map(chosen))


@pytest.mark.slow
def test_dry_run_counts_the_tuning_models(tmp_path):
    from typer.testing import CliRunner

    from losslab import cli

    result = CliRunner().invoke(
        cli.app, ["run", str(write(tmp_path, STUDY)), "--dry-run", "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 0, result.output
    # 2 losses x 3 lr candidates x 2 tuning seeds, before the 2 x 2 cells
    assert "[tune] grid: 12 tuning models first" in result.output
    assert "4 cells" in result.output
    assert not (tmp_path / "o").exists()  # a dry run writes nothing


@pytest.mark.slow
def test_interrupted_tuning_resumes_with_the_missing_stack_only(tmp_path, monkeypatch):
    import threading

    text = STUDY.replace(
        'datasets = [{name = "checkerboard", dev_fraction = 0.25, n_train = 160, n_test = 120}]',
        'datasets = [{name = "checkerboard", dev_fraction = 0.25, n_train = 160, n_test = 120},'
        ' {name = "spirals", dev_fraction = 0.25, n_train = 160, n_test = 120}]',
    ).replace("lr = [1e-3, 3e-2, 3e-1]", "lr = [1e-3, 3e-1]")
    path = write(tmp_path, text)
    stop = threading.Event()

    def stop_after_first_stack(events):
        if any(m.startswith("tuning: trained") for m in events.messages):
            stop.set()

    spy = Spy(monkeypatch)
    run_study(load_study(path), tmp_path / "out", device="cpu", stop=stop,
              on_update=stop_after_first_stack)
    assert len(spy.calls) == 1  # one dataset's tuning stack, then the stop
    assert load(tmp_path / "out").tuning()["seeds"].sum() == 2 * 2 * 2
    assert load(tmp_path / "out").cells().empty
    spy.calls.clear()
    run_study(load_study(path), tmp_path / "out", device="cpu")
    # the other dataset's tuning stack, then one final stack per dataset
    assert [c["seeds"] for c in spy.calls] == [{100, 101}, {0, 1}, {0, 1}]
    trials = load(tmp_path / "out").tuning()
    assert len(trials) == 2 * 2 * 2 and trials["chosen"].sum() == 4
    assert (load(tmp_path / "out").cells()["status"] == "done").all()
