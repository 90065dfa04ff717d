"""`losslab reproduce` end to end on a tiny real study (5 seeds, published in compact form):
verdicts from the rule, the JSON, the document, and every way --check must fail."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from losslab.cli import app
from losslab.errors import LosslabError
from losslab.metrics.stats import t_interval
from losslab.reproduce.document import DOCUMENT, check, text_differences
from losslab.reproduce.verdict import BY_TEST, NOT_RUN, verdict
from losslab.study import load, load_study, run_study
from losslab.study.compact import publish

TOY = """name = "toy"
description = "reproduce test: checkerboard, log against L1, five seeds"
seeds = 5
datasets = ["checkerboard"]
models = [{name = "mlp", hidden = [16]}]
losses = ["log", "l1"]
[train]
optimizer = "adam"
lr = 0.01
steps = 60
eval_every = 20
batch_size = 50
[scales.quick]
[scales.small]
seeds = 2
"""
CLAIMS = """
[sources.paper]
title = "A paper"

[[claims]]
id = "T1"
source = "paper"
section = "§1"
statement = "log fits better than L1"
paper = "+10 points"
dataset = "mnist"
study = "toy"
scale = "quick"
[[claims.compare]]
metric = "train_accuracy"
treatment = {loss = "log"}
control = {loss = "l1"}
direction = "greater"

[[claims]]
id = "T2"
source = "paper"
section = "§2"
statement = "log's training accuracy at the end, and its curve"
paper = "about 60-100%"
study = "toy"
scale = "quick"
[[claims.compare]]
metric = "train_accuracy"
treatment = {loss = "log"}
direction = "within"
target = [0.0, 100.0]
[[claims.compare]]
source = "curve"
metric = "train_accuracy"
step = "last"
minus_step = 20
treatment = {loss = "log"}
direction = "greater"

[[claims]]
id = "T3"
source = "paper"
section = "§3"
statement = "a theorem"
paper = "proof"
tests = ["tests/test_theorem.py::test_it"]

[[claims]]
id = "T4"
source = "paper"
section = "§4"
statement = "only two seeds ran"
paper = "x"
study = "toy"
scale = "small"
[[claims.compare]]
metric = "train_accuracy"
treatment = {loss = "log"}
control = {loss = "l1"}
direction = "greater"
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A checkout-like folder: studies/, tests/, results/ with the toy study published."""
    root = tmp_path_factory.mktemp("repo")
    (root / "studies").mkdir()
    (root / "studies" / "toy.toml").write_text(TOY)
    (root / "studies" / "claims.toml").write_text(CLAIMS)
    (root / "tests").mkdir()
    (root / "tests" / "test_theorem.py").write_text("def test_it():\n    pass\n")
    for scale in ("quick", "small"):
        store = root / "stores" / scale
        run_study(load_study(root / "studies" / "toy.toml", scale), store)
        publish(store, root / "results" / "toy" / scale)
    return root


@pytest.fixture
def repo(built, tmp_path, monkeypatch):
    """A fresh copy of the built checkout, as the current directory."""
    root = tmp_path / "repo"
    shutil.copytree(built, root, ignore=shutil.ignore_patterns("stores"))
    monkeypatch.chdir(root)
    return root


def _cli(*args):
    return CliRunner().invoke(app, ["reproduce", *args])


def test_json_verdicts_follow_the_rule_from_the_committed_cells(repo):
    result = _cli("--json")
    assert result.exit_code == 0, result.output
    claims = {c["id"]: c for c in json.loads(result.output)}
    assert set(claims) == {"T1", "T2", "T3", "T4"}
    cells = load(repo / "results" / "toy" / "quick").cells().set_index(["loss", "seed"])
    diff = [100 * (cells.loc[("log", s), "train_accuracy"] - cells.loc[("l1", s),
                                                                      "train_accuracy"])
            for s in range(5)]
    mean, low, high = t_interval(np.array(diff), bounds=(-100.0, 100.0))
    t1 = claims["T1"]
    assert (t1["study"], t1["scale"], t1["dataset"], t1["n"]) == ("toy", "quick",
                                                                 "checkerboard", 5)
    assert t1["stand_in_for"] == "mnist"
    assert (t1["effect"], t1["ci_low"], t1["ci_high"]) == pytest.approx((mean, low, high))
    assert t1["verdict"] == verdict(low, high, 5, "greater")
    assert claims["T3"]["verdict"] == BY_TEST
    assert claims["T4"]["verdict"] == NOT_RUN and claims["T4"]["n"] == 2
    assert len(claims["T2"]["parts"]) == 2


def test_written_document_passes_the_check_and_holds_the_runs(repo):
    assert _cli().exit_code == 0
    text = (repo / DOCUMENT).read_text()
    assert "| T1 |" in text and "stand-in for mnist" in text and "## Runs" in text
    assert "`toy` quick" in text and "load at start" in text
    assert check(repo) == []
    result = _cli("--check")
    assert result.exit_code == 0, result.output


def test_any_number_edited_by_hand_is_found(repo):
    assert _cli().exit_code == 0
    text = (repo / DOCUMENT).read_text()
    numbers = list(re.finditer(r"\d", text))
    assert len(numbers) > 50
    for match in numbers:
        digit = match.group()
        edited = text[: match.start()] + str((int(digit) + 1) % 10) + text[match.end():]
        assert text_differences(edited, text), match.start()
    first = numbers[len(numbers) // 2]
    (repo / DOCUMENT).write_text(text[: first.start()] + str((int(first.group()) + 1) % 10)
                                 + text[first.end():])
    result = _cli("--check")
    assert result.exit_code == 1
    assert "REPRODUCTION.md line" in result.output and "losslab reproduce" in result.output


def test_check_fails_when_a_test_is_gone(repo):
    assert _cli().exit_code == 0
    (repo / "tests" / "test_theorem.py").write_text("def test_renamed():\n    pass\n")
    result = _cli("--check")
    assert result.exit_code == 1 and "T3: the test tests/test_theorem.py::test_it" in result.output


def test_check_fails_when_the_study_file_changed_after_the_run(repo):
    assert _cli().exit_code == 0
    study = repo / "studies" / "toy.toml"
    study.write_text(study.read_text().replace("lr = 0.01", "lr = 0.02"))
    result = _cli("--check")
    assert result.exit_code == 1
    assert "results/toy/quick: 10 of 10 committed cells are no longer planned" in result.output


def test_check_fails_when_cells_csv_was_edited(repo):
    assert _cli().exit_code == 0
    cells = repo / "results" / "toy" / "quick" / "cells.csv"
    cells.write_text(cells.read_text().replace('""steps"": 60', '""steps"": 61', 1))
    assert any("does not hash to their id" in p for p in check(repo))


def test_without_results_study_claims_are_not_run(repo):
    shutil.rmtree(repo / "results")
    claims = {c["id"]: c for c in json.loads(_cli("--json").output)}
    assert claims["T1"]["verdict"] == NOT_RUN and claims["T3"]["verdict"] == BY_TEST


def test_a_filter_that_matches_nothing_names_the_claim(repo):
    claims = repo / "studies" / "claims.toml"
    claims.write_text(claims.read_text().replace('control = {loss = "l1"}',
                                                 'control = {loss = "hinge"}', 1))
    result = _cli("--json")
    assert isinstance(result.exception, LosslabError)
    assert "claim T1: control asks for loss = 'hinge'" in str(result.exception)
    assert "values present: l1, log" in str(result.exception)


def test_check_finds_filters_the_study_does_not_plan(repo):
    shutil.rmtree(repo / "results")
    claims = repo / "studies" / "claims.toml"
    claims.write_text(claims.read_text().replace('control = {loss = "l1"}',
                                                 'control = {loss = "hinge"}', 1))
    notes: list[str] = []
    problems = check(repo, notes)
    assert any(p.startswith("claim T1: control asks for loss = 'hinge'") and
               p.endswith("(planned by toy at scale quick)") for p in problems), problems
    assert notes == []


def test_the_repository_document_is_current():
    # The committed REPRODUCTION.md is what the committed claims and results give.
    root = Path(__file__).resolve().parents[1]
    assert check(root) == []


TABLES = "# x\n\n<!-- studies-table -->\nby hand\n<!-- /studies-table -->\n"


@pytest.fixture
def estimated(repo, monkeypatch):
    """The checkout with a README and a docs page showing the studies table, and its
    estimates written at fixed rates (no measurement)."""
    monkeypatch.setattr("losslab.study.estimate.measure_rates", lambda device="cpu": {
        "flops": 1e10, "bandwidth": 1e9, "op_seconds": 1e-6})
    (repo / "README.md").write_text(TABLES)
    (repo / "docs").mkdir()
    (repo / "docs" / "studies.md").write_text(TABLES)
    result = _cli("--estimate")
    assert result.exit_code == 0, result.output
    return repo


def test_estimates_hold_the_planned_cells_and_the_flops_counted_by_hand(estimated):
    from losslab.data.info import describe_dataset

    studies = json.loads((estimated / "results" / "estimates.json").read_text())["studies"]
    quick, small = studies["toy"]["quick"], studies["toy"]["small"]
    assert (quick["cells"], quick["seeds"], small["cells"], small["seeds"]) == (10, 5, 4, 2)
    # MLP 2-16-C: 2 FLOPs per weight and sample; a step is 3 passes over the batch of 50
    # (forward, backward), an evaluation one pass over every split, every 20 of 60 steps.
    info = describe_dataset("checkerboard")
    evaluated = info.n_train + info.n_dev + info.n_test
    per_sample = 2 * (2 * 16 + 16 * info.num_classes)
    assert quick["flops"] == 10 * per_sample * (60 * 50 * 3 + 3 * evaluated)
    assert small["flops"] == quick["flops"] * 4 / 10
    assert small["seconds"] < quick["seconds"]


def test_the_studies_table_shows_measured_times_and_estimates(estimated):
    from losslab.console import duration

    runs = json.loads((estimated / "results" / "toy" / "quick" / "run.json").read_text())
    wall = sum(r["finished"] - r["started"] for r in runs["runs"])
    load_at_start = runs["runs"][0]["environment"]["load_at_start"]
    readme = (estimated / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| `toy` |"))
    # quick was run (bold, measured); the study has no medium or full scale.
    assert row == f"| `toy` | 10 (5), **{duration(wall)}**, load {load_at_start:.2f} | — | — |"
    assert "by hand" not in readme and "1 FLOP" not in readme
    assert "10.0 GFLOP/s" in readme
    docs = (estimated / "docs" / "studies.md").read_text()
    assert "| `toy` | reproduce test: checkerboard, log against L1, five seeds |" in docs
    assert "(reproduction.md#runs)" in docs and "(REPRODUCTION.md#runs)" in readme
    assert check(estimated) == []


def test_check_names_hand_edited_tables_and_stale_estimates(estimated):
    readme = estimated / "README.md"
    text = readme.read_text()
    readme.write_text(text.replace("10 (5)", "11 (5)"))
    assert check(estimated) == ["README.md: the studies table is not what the study files "
                                "and results give; run `losslab reproduce`"]
    readme.write_text(text)
    path = estimated / "results" / "estimates.json"
    written = json.loads(path.read_text())
    written["studies"]["toy"]["quick"]["cells"] = 11
    path.write_text(json.dumps(written))
    problems = check(estimated)
    assert ("results/estimates.json: toy quick: cells is 11, the study file gives 10; run "
            "`losslab reproduce --estimate` (then `losslab reproduce`)") in problems
    study = estimated / "studies" / "toy.toml"
    study.write_text(study.read_text().replace("[scales.small]\nseeds = 2",
                                               "[scales.small]\nseeds = 3"))
    problems = check(estimated)
    assert any(p.startswith("results/estimates.json: toy small: cells is 4, the study file "
                            "gives 6") for p in problems), problems


def test_a_table_without_estimates_is_a_note(repo):
    (repo / "README.md").write_text(TABLES)
    assert _cli().exit_code == 0
    assert "| `toy` | ? | ? | ? |" in (repo / "README.md").read_text()
    notes: list[str] = []
    assert check(repo, notes) == []
    assert any("losslab reproduce --estimate" in n for n in notes)
