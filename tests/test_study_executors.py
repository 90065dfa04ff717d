"""The process-pool executor stores exactly what the in-process executor stores (the Ray
executor's test is in tests/test_study_ray_cluster.py, which starts Ray once for all)."""

import pytest

from losslab.study import load, load_study, run_study
from stores import assert_same_store, run_reference, snapshot

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


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = run_reference(tmp_path_factory, STUDY, "exec.toml")
    return out.parent / "exec.toml", snapshot(out)


@pytest.mark.slow
def test_process_pool_equals_in_process(reference, tmp_path):
    path, expected = reference
    events = run_study(load_study(path), tmp_path / "out", executor="process", jobs=2,
                       device="cpu")
    assert events.trained == events.total == 24
    assert load(tmp_path / "out").environment()["executor"] == "process"
    assert_same_store(tmp_path / "out", expected)
