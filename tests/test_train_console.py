"""`losslab train` progress and Ctrl-C, with real subprocesses and real SIGINTs."""

import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from losslab import cli
from losslab.data import load_dataset
from losslab.train.console import ProgressDisplay

runner = CliRunner()


def _start(*args):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(stream, text, timeout=120.0):
    """Read lines of ``stream`` until one contains ``text``; return everything read."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"{text!r} never appeared; got {''.join(seen)!r}")


@pytest.mark.slow
def test_ctrl_c_stops_at_a_step_and_prints_and_saves_the_result_so_far(tmp_path):
    out_file = tmp_path / "result.json"
    proc = _start(
        "-m",
        "losslab.cli",
        "train",
        "--dataset",
        "digits",
        "--steps",
        "200000",
        "--eval-every",
        "100",
        "--yes",
        "--json",
        "--device",
        "cpu",
        "--out",
        str(out_file),
    )
    try:
        _wait_for(proc.stderr, "step ")  # training has started (plain progress lines)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted after" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["interrupted"] is True and 0 < summary["steps"] < 200000
    saved = json.loads(out_file.read_text())
    assert saved["result"]["interrupted"] is True
    assert saved["result"]["steps_run"] == summary["steps"]
    # The accuracy printed is an evaluation at the stopping step, the one saved: a whole
    # number k of the n test images right. The trainer counts k exactly and divides by n in
    # float32 (one rounding, relative 2^-24); times n in float64 that is within
    # k * 2^-24 <= n * 2^-24 of the integer k (the float64 product adds ~n * 2^-53).
    assert summary["test_accuracy"] == saved["result"]["final"]["test_accuracy"]
    n = len(load_dataset("digits").y_test)
    right = summary["test_accuracy"] * n
    assert abs(right - round(right)) <= n * 2.0**-23


def test_a_second_ctrl_c_aborts():
    script = (
        "import time\n"
        "from losslab.console import interruptible\n"
        "with interruptible() as stop:\n"
        "    print('ready', flush=True)\n"
        "    while True:\n"
        "        time.sleep(0.01)\n"
    )
    proc = _start("-c", script)
    try:
        _wait_for(proc.stdout, "ready")
        proc.send_signal(signal.SIGINT)
        _wait_for(proc.stderr, "interrupted")
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode != 0


def test_implausible_steps_ask_for_yes_before_any_work():
    result = runner.invoke(cli.app, ["train", "--dataset", "digits", "--steps", "100000000"])
    assert result.exit_code != 0
    assert isinstance(result.exception, cli.LosslabError)
    message = str(result.exception)
    assert "--yes" in message and "\n" not in message and "epochs" in message


def test_quiet_prints_no_progress_and_lines_go_to_stderr():
    quiet = runner.invoke(cli.app, ["train", "--dataset", "digits", "--steps", "20", "--quiet"])
    assert quiet.exit_code == 0 and "step 20/20" not in quiet.output
    stream = io.StringIO()
    display = ProgressDisplay("auto", stream)  # a StringIO is not a terminal: plain lines
    assert display.mode == "lines"
    with display:
        display({"step": 5, "steps": 10, "models": 1, "last_eval": None, "elapsed": 1.0})
        display({"step": 6, "steps": 10, "models": 1, "last_eval": None, "elapsed": 1.2})
        last = {"test_accuracy": 0.5, "train_loss": 1.25}
        display({"step": 10, "steps": 10, "models": 1, "last_eval": last, "elapsed": 2.0})
    lines = stream.getvalue().splitlines()
    # The first report and the last step print; the one 0.2 s later does not.
    assert len(lines) == 2
    assert lines[0].startswith("step 5/10") and "left ~1 s" in lines[0]
    assert lines[1].startswith("step 10/10") and "loss 1.2500  accuracy 0.5000" in lines[1]
