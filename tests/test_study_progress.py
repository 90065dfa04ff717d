"""Progress inside a stack: off a terminal `losslab run` prints lines while a stack trains
(not only when it ends), and the process and Ray executors forward their workers' steps."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from losslab.console import progress_seconds
from losslab.errors import LosslabError
from stores import LONG_STACK, STEPS, assert_workers_forward_their_steps, write_study


def write(tmp_path: Path) -> Path:
    return write_study(tmp_path, LONG_STACK, "long.toml")


def test_a_run_into_a_file_prints_lines_from_inside_the_stack(tmp_path):
    # In-process only: the lines come from the driver's events whatever the executor, and
    # that the process pool's and Ray's workers fill those events part-way is asserted by
    # test_workers_forward_their_steps_to_the_driver (and its Ray twin), without a second
    # 4000-step subprocess.
    log = tmp_path / "log.txt"
    env = {**os.environ, "LOSSLAB_PROGRESS_SECONDS": "0.2",
           "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    with log.open("w") as out:
        result = subprocess.run(
            [sys.executable, "-m", "losslab.cli", "run", str(write(tmp_path)), "--out",
             str(tmp_path / "out"), "--device", "cpu", "--executor", "inprocess", "--jobs", "1"],
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


def test_workers_forward_their_steps_to_the_driver(tmp_path):
    # The Ray executor's case is in tests/test_study_ray_cluster.py, which starts Ray once.
    assert_workers_forward_their_steps(write(tmp_path), tmp_path / "out", "process")
