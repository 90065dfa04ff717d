"""The committed (compact) form of a study store: a tiny real run is published, read back
exactly, published again byte for byte, reported, and refused when it is not what it says."""

from __future__ import annotations

import gzip
import json
import os

import pandas as pd
import pytest

from losslab.errors import LosslabError
from losslab.study import load, load_study, run_study
from losslab.study.compact import is_compact, publish, read_run, restore, total_megabytes
from losslab.study.store import environment

TOY = """name = "toy"
description = "compact-form test: checkerboard, two losses"
seeds = 2
datasets = ["checkerboard"]
models = [{name = "mlp", hidden = [8]}]
losses = ["log", "hinge"]
[train]
steps = 20
eval_every = 10
batch_size = 50
[measure]
noise_robustness = {eps = [0.0, 0.5]}
[scales.quick]
"""


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("compact")
    study_file = root / "toy.toml"
    study_file.write_text(TOY)
    store = root / "store"
    run_study(load_study(study_file, "quick"), store)
    return store, publish(store, root / "results" / "toy" / "quick")


def test_round_trip_is_exact(published):
    store, compact = published
    assert is_compact(compact) and not is_compact(store)
    a, b = load(store), load(compact)
    pd.testing.assert_frame_equal(a.cells(), b.cells())
    pd.testing.assert_frame_equal(a.curves(), b.curves())
    pd.testing.assert_frame_equal(a.measurements(), b.measurements())
    assert a.study_text() == b.study_text() and a.environment() == b.environment()
    assert a.meta() == b.meta() and a.status_counts() == b.status_counts()
    assert len(b.cells()) == 4 and not b.measurements().empty


def test_publishing_twice_gives_the_same_bytes(published, tmp_path):
    store, compact = published
    again = publish(store, tmp_path / "again")
    for file in sorted(p.name for p in compact.iterdir() if p.is_file()):
        assert (compact / file).read_bytes() == (again / file).read_bytes(), file


def test_run_records_machine_load_commit_and_wall_time(published):
    _, compact = published
    run = read_run(compact)["runs"][-1]
    env = run["environment"]
    assert env["machine"] and env["commit"]
    assert env["load_at_start"] is None or env["load_at_start"] >= 0
    assert run["finished"] >= run["started"]
    assert set(environment("cpu", "inprocess", 1)) >= {"machine", "load_at_start", "commit"}


def test_files_are_text_or_gzip_text(published):
    _, compact = published
    head = (compact / "cells.csv").read_text().splitlines()[0].split(",")
    assert head[0] == "cell_id" and "test_accuracy" in head
    with gzip.open(compact / "curves.csv.gz", "rt") as f:
        assert f.readline().strip() == "cell_id,step,metric,value"
    assert 0 < total_megabytes(compact.parent) < 1


def test_committed_results_stay_within_the_budget():
    from pathlib import Path

    from losslab.study.compact import MAX_TOTAL_MB

    root = Path(__file__).resolve().parents[1] / "results"
    assert not root.exists() or total_megabytes(root) <= MAX_TOTAL_MB


def test_report_reads_the_compact_form(published):
    from typer.testing import CliRunner

    from losslab.cli import app

    _, compact = published
    result = CliRunner().invoke(app, ["report", str(compact), "--text"])
    assert result.exit_code == 0, result.output
    assert "log" in result.output and "hinge" in result.output


def test_publish_refuses_another_scale_and_missing_store(published, tmp_path):
    store, _ = published
    with pytest.raises(LosslabError, match="last run .* scale 'quick', not 'full'"):
        publish(store, tmp_path / "x", scale="full")
    with pytest.raises(LosslabError, match="no study store"):
        publish(tmp_path, tmp_path / "y")


def test_restore_refuses_damaged_files(published, tmp_path):
    _, compact = published
    broken = tmp_path / "broken"
    broken.mkdir()
    for file in compact.iterdir():
        if file.is_file():
            (broken / file.name).write_bytes(file.read_bytes())
    (broken / "curves.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(LosslabError, match="not a readable compact study"):
        restore(broken, tmp_path / "r1")
    document = json.loads((broken / "run.json").read_text())
    document["format"] = 99
    (broken / "run.json").write_text(json.dumps(document))
    with pytest.raises(LosslabError, match="format 99"):
        restore(broken, tmp_path / "r2")
    assert not os.path.exists(tmp_path / "r1" / "study.sqlite")
