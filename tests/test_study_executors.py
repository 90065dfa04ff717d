"""The process-pool and Ray executors store exactly what the in-process executor stores."""

import textwrap

import pandas as pd
import pytest

from losslab.study import load, load_study, run_study

STUDY = """
name = "exec"
seeds = 2
datasets = [{name = "checkerboard", n_train = 60, n_test = 40}]
models = [{name = "mlp", hidden = [4]}, {name = "mlp", hidden = [6]}, {name = "mlp", hidden = [8]}]
losses = ["log", "hinge"]
[train]
lr = [1e-2, 3e-2]
batch_size = 20
steps = 6
eval_every = 3
"""


def snapshot(directory):
    res = load(directory)
    cells = res.cells().drop(columns=["seconds"]).sort_values("cell_id").reset_index(drop=True)
    curves = res.curves().sort_values(["cell_id", "metric", "step"]).reset_index(drop=True)
    return cells, curves


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("exec")
    path = root / "exec.toml"
    path.write_text(textwrap.dedent(STUDY))
    run_study(load_study(path), root / "inprocess", device="cpu")
    return path, snapshot(root / "inprocess")


def assert_equal(directory, expected):
    cells, curves = snapshot(directory)
    # Same seeds on the CPU: the worker computes exactly what the driver would.
    pd.testing.assert_frame_equal(cells, expected[0], check_exact=True)
    pd.testing.assert_frame_equal(curves, expected[1], check_exact=True)


@pytest.mark.slow
def test_process_pool_equals_in_process(reference, tmp_path):
    path, expected = reference
    events = run_study(load_study(path), tmp_path / "out", executor="process", jobs=2,
                       device="cpu")
    assert events.trained == events.total == 24
    assert load(tmp_path / "out").environment()["executor"] == "process"
    assert_equal(tmp_path / "out", expected)


@pytest.mark.slow
def test_ray_equals_in_process(reference, tmp_path):
    ray = pytest.importorskip("ray")
    path, expected = reference
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        events = run_study(load_study(path), tmp_path / "out", executor="ray", device="cpu")
    finally:
        ray.shutdown()
    assert events.trained == events.total == 24
    assert_equal(tmp_path / "out", expected)
