"""Statistics of stored studies: StudyResults.summary/compare/ranks/diagnosis and the
tables of `losslab report`, on a real (tiny) study."""

import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from losslab import cli
from losslab.metrics import stats
from losslab.study import load, load_study, run_study

# Two float64 means of the same 6 values of size <= 1: each within (n + 1) u of the exact
# mean in any summation order (n = 6 seeds, u = 2**-53); both sides, 2x margin.
MEAN_TOL = 2 * 2 * 7 * 2.0**-53

STUDY = """
name = "paired"
seeds = 6
datasets = [{name = "checkerboard", dev_fraction = 0.2, n_train = 150, n_test = 100},
            {name = "spirals", dev_fraction = 0.2, n_train = 150, n_test = 100}]
models = [{name = "mlp", hidden = [8]}]
losses = ["log", "hinge", "l1"]
[train]
lr = 3e-2
batch_size = 30
steps = 20
eval_every = 20
"""
runner = CliRunner()


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("paired")
    path = root / "paired.toml"
    path.write_text(textwrap.dedent(STUDY))
    run_study(load_study(path), root / "out", device="cpu")
    return root / "out"


@pytest.mark.slow
def test_results_statistics_equal_the_pure_functions(study_dir):
    results = load(study_dir)
    cells = results.cells()
    summary = results.summary()
    assert len(summary) == 6 and (summary["n"] == 6).all()
    for row in summary.itertuples():
        values = cells.loc[cells["condition_id"] == row.condition_id, "test_accuracy"]
        # two float64 means of the same 6 accuracies in [0, 1], possibly summed in other
        # orders: each within (n + 1) u of exact; both sides, 2x margin
        assert row.mean == pytest.approx(values.mean(), rel=0, abs=MEAN_TOL)
    comparison = results.compare("log")
    # per dataset, hinge and l1 against log; the group column is the varying dataset axis
    assert list(comparison.columns[:3]) == ["dataset", "loss", "versus"]
    assert len(comparison) == 4 and set(comparison["versus"]) == {"log"}
    for row in comparison.itertuples():
        a = cells[(cells.dataset == row.dataset) & (cells.loss == row.loss)].set_index("seed")
        b = cells[(cells.dataset == row.dataset) & (cells.loss == "log")].set_index("seed")
        d = (a["test_accuracy"] - b["test_accuracy"]).to_numpy()
        assert row.wins == int(np.sum(d > 0)) and row.losses == int(np.sum(d < 0))
        # the same per-seed subtractions, then a mean of 6 values in [-1, 1] (as above)
        assert row.mean_diff == pytest.approx(d.mean(), rel=0, abs=MEAN_TOL)
    # Holm within each dataset's family (the same function on the same p-values: equal)
    for _, part in comparison.groupby("dataset"):
        np.testing.assert_array_equal(part["p_holm"], stats.holm(part["p_value"]))
    for row in summary.itertuples():
        values = cells.loc[cells["condition_id"] == row.condition_id, "test_accuracy"]
        assert (row.mean, row.ci_low, row.ci_high) == stats.t_interval(values, bounds=(0, 1))
    assert len(results.compare(None)) == 2 * 3  # every pair of 3 losses, per dataset
    ranks = results.ranks()
    assert list(ranks.columns) == ["checkerboard", "spirals", "mean_rank", "conditions"]
    assert sorted(ranks["checkerboard"]) == [1.0, 2.0, 3.0]
    diagnosis = results.diagnosis()
    assert (diagnosis["held_out"] == "dev").all() and len(diagnosis) == 6
    assert results.tuning().empty and results.tuned() == ()


@pytest.mark.slow
def test_report_prints_the_statistics_tables(study_dir, console):
    result = runner.invoke(cli.app, ["report", str(study_dir), "--reference", "hinge", "--text"])
    assert result.exit_code == 0, result.output
    out = result.output
    for title in ("95% t interval", "rank of each loss", "each loss vs hinge", "bias / variance",
                  "Holm within each condition"):
        assert title in out
    verdicts = load(study_dir).compare("hinge")["verdict"]
    assert all(v.split(":")[0][:30] in out.replace("\n", " ") for v in verdicts)
    code, _, err = console("report", study_dir, "--reference", "hnge")
    assert code == 2
    assert err.startswith("error: reference loss 'hnge'") and len(err.strip().splitlines()) == 1
