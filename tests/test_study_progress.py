"""Progress inside a stack: off a terminal `losslab run` prints lines while a stack trains
(not only when it ends), and the process and Ray executors forward their workers' steps."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from losslab.console import progress_seconds
from losslab.errors import LosslabError
from losslab.study import load_study, run_study

STEPS = 4000
STUDY = f"""
name = "long-stack"
description = "one stack long enough to report from inside"
seeds = 2
datasets = [{{name = "checkerboard", n_train = 200, n_test = 100}}]
models = [{{name = "mlp", hidden = [64, 64]}}]
losses = ["log"]
[train]
batch_size = 50
steps = {STEPS}
eval_every = {STEPS}
eval_train = false
"""


def write(tmp_path: Path) -> Path:
    path = tmp_path / "long.toml"
    path.write_text(textwrap.dedent(STUDY))
    return path


@pytest.mark.parametrize("executor", ["inprocess", "process"])
def test_a_run_into_a_file_prints_lines_from_inside_the_stack(tmp_path, executor):
    log = tmp_path / "log.txt"
    env = {**os.environ, "LOSSLAB_PROGRESS_SECONDS": "0.2",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with log.open("w") as out:
        result = subprocess.run(
            [sys.executable, "-m", "losslab.cli", "run", str(write(tmp_path)), "--out",
             str(tmp_path / "out"), "--device", "cpu", "--executor", executor, "--jobs", "1"],
            stdout=out, stderr=subprocess.STDOUT, env=env, timeout=600, check=False,
        )
    text = log.read_text()
    assert result.returncode == 0, text
    inside = [line for line in text.splitlines()
              if "0/2 cells" in line and f"/{STEPS}" in line and f"{STEPS}/{STEPS}" not in line]
    # At least one line shows the stack part-way (a step below STEPS) before it ended.
    assert inside, text
    assert all("model-steps/s" in line and "ETA" in line for line in inside)
    assert "2/2 cells" in text


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("LOSSLAB_PROGRESS_SECONDS", "2.5")
    assert progress_seconds() == 2.5
    monkeypatch.delenv("LOSSLAB_PROGRESS_SECONDS")
    assert progress_seconds() == 15.0
    for bad in ("0", "-1", "soon", "nan"):
        monkeypatch.setenv("LOSSLAB_PROGRESS_SECONDS", bad)
        with pytest.raises(LosslabError, match="LOSSLAB_PROGRESS_SECONDS"):
            progress_seconds()


@pytest.mark.parametrize("executor", ["process", "ray"])
def test_workers_forward_their_steps_to_the_driver(tmp_path, executor):
    if executor == "ray":
        pytest.importorskip("ray")
    seen: list[tuple[int, int]] = []

    def on_update(events):
        seen.extend(events.stacks_live.values())

    events = run_study(load_study(write(tmp_path)), tmp_path / "out", executor=executor,
                       jobs=1, device="cpu", on_update=on_update)
    assert events.done == 2
    assert seen and all(total == STEPS for _, total in seen)
    assert any(0 < step < STEPS for step, _ in seen), seen
    assert events.stacks_live == {}
