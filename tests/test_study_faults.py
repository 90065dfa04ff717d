"""Faults during a study: a killed or stopped run resumes its stacks from their checkpoints,
a killed worker process is replaced, a full disk stops the run cleanly, a read-only study
directory can still be read, and one directory takes the same study from any path."""

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pandas as pd
import pytest
import torch

from losslab.study import load, load_study, run_study
from losslab.study.store import read_meta
from stores import assert_same_store, run_reference, six_stacks, write_study

# Two stacks (one per hidden width) of 2 losses x 2 seeds. 120 steps keep a stack running
# for a good part of a second, so a kill lands inside one; with --checkpoint-every 0 the
# stack saves its state after every step.
STUDY = """
name = "faults"
seeds = 2
datasets = [{name = "checkerboard", n_train = 60, n_test = 40}]
models = [{name = "mlp", hidden = [6]}, {name = "mlp", hidden = [8]}]
losses = ["log", "hinge"]
[train]
batch_size = 20
steps = 120
eval_every = 40
"""
CELLS = 8
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def write(directory, text=STUDY, name="faults.toml"):
    return write_study(directory, text, name)


def command(path, out, *extra, quiet=True):
    return [sys.executable, "-m", "losslab.cli", "run", str(path), "--out", str(out),
            "--device", "cpu", *(["--quiet"] if quiet else []), *extra]


def integrity(directory):
    conn = sqlite3.connect(directory / "study.sqlite")
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


def wait_for_checkpoint(out, child, timeout=120.0):
    """Until a stack has saved its state at least once: then it is mid-training."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if list((out / "checkpoints").glob("*.pt")):
            return
        assert child.poll() is None, "the run ended before any checkpoint was written"
        time.sleep(0.02)
    raise AssertionError("no checkpoint appeared")


def checkpoint_steps(out):
    """Step of each stack's last checkpoint (read as plain tensors and numbers only)."""
    steps = {}
    for file in (out / "checkpoints").glob("*.pt"):
        state = torch.load(file, map_location="cpu", weights_only=True)
        steps[file.name.partition("-")[0]] = state["parts"]["clock"]["step"]
    return steps


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = run_reference(tmp_path_factory, STUDY, "faults.toml")
    assert load(out).status_counts()["done"] == CELLS
    return out


@pytest.fixture
def started_steps(monkeypatch):
    """The step each stack starts training at in this process (0, or where it resumed)."""
    from losslab.train import engine

    starts = []
    run = engine._Run.run

    def recording(self, progress, stop):
        starts.append(self.clock.step)
        return run(self, progress, stop)

    monkeypatch.setattr(engine._Run, "run", recording)
    return starts


@pytest.mark.slow
def test_sigkill_mid_stack_shows_interrupted_and_resumes_from_the_checkpoint(
        tmp_path, reference, started_steps):
    path = write(tmp_path)
    out = tmp_path / "out"
    child = subprocess.Popen(command(path, out, "--checkpoint-every", "0"), env=ENV)
    wait_for_checkpoint(out, child)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert integrity(out) == "ok"
    saved = checkpoint_steps(out)
    assert saved and all(step > 0 for step in saved.values())
    counts = load(out).status_counts()
    # The killed run's leases have no live owner: interrupted, not running.
    assert counts["running"] == 0 and counts["interrupted"] >= 4
    events = run_study(load_study(path), out, device="cpu")
    assert events.done == CELLS
    # Every stack killed mid-way started at its checkpoint's step, not at 0.
    assert sorted(s for s in started_steps if s > 0) == sorted(saved.values())
    # A stored stack's checkpoint is deleted (the folder stays: another run may be using it).
    assert not list((out / "checkpoints").glob("*.pt*"))
    assert_same_store(out, reference)


@pytest.mark.slow
def test_sigint_keeps_the_running_stacks_progress(tmp_path, reference, started_steps):
    path = write(tmp_path)
    out = tmp_path / "out"
    child = subprocess.Popen(command(path, out), env=ENV, stderr=subprocess.PIPE, text=True)
    # The default cadence (minutes) never saves within this test: the stop itself does.
    deadline = time.monotonic() + 120
    while read_meta(out) is None or load(out).status_counts()["running"] == 0:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.02)
    time.sleep(0.2)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 130, err
    saved = checkpoint_steps(out)
    assert saved and all(step > 0 for step in saved.values())
    counts = load(out).status_counts()
    assert counts["running"] == counts["interrupted"] == 0 and counts["pending"] >= 4
    run_study(load_study(path), out, device="cpu")
    assert sorted(s for s in started_steps if s > 0) == sorted(saved.values())
    assert_same_store(out, reference, steps="reference")


def _workers(parent):
    """The pool's worker processes under ``parent`` (spawned: ``multiprocessing.spawn``),
    without the resource tracker."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as file:
                ppid = int(file.read().rpartition(")")[2].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                cmdline = file.read().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent and "spawn_main" in cmdline and "resource_tracker" not in cmdline:
            found.append(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the workers through /proc")
def test_a_killed_worker_process_is_replaced_and_its_stack_rerun(tmp_path, reference):
    path = write(tmp_path)
    out = tmp_path / "out"
    child = subprocess.Popen(
        command(path, out, "--executor", "process", "--jobs", "2", "--checkpoint-every", "0",
                quiet=False),
        env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    wait_for_checkpoint(out, child)
    workers = _workers(child.pid)
    assert workers
    os.kill(workers[0], signal.SIGKILL)  # as the out-of-memory killer does
    stdout, stderr = child.communicate(timeout=300)
    assert child.returncode == 0, stderr
    said = " ".join(stderr.split())  # the progress display wraps long lines
    assert "worker process died; retrying it from its last checkpoint (retry 1 of 3)" in said
    counts = load(out).status_counts()
    assert counts["done"] == counts["total"] == CELLS
    assert_same_store(out, reference)


@contextlib.contextmanager
def read_only(directory):
    """``directory`` as a read-only mount (root), or without write permission (others)."""
    if os.geteuid() != 0:
        mode = directory.stat().st_mode
        for path in (directory, *directory.iterdir()):
            path.chmod(path.stat().st_mode & ~0o222)
        try:
            yield directory
        finally:
            directory.chmod(mode)
        return
    view = directory.parent / f"ro-{uuid.uuid4().hex[:8]}"
    view.mkdir()
    mounted = subprocess.run(["mount", "--bind", "-o", "ro", str(directory), str(view)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot make a read-only bind mount: {mounted.stderr.decode().strip()}")
    try:
        yield view
    finally:
        subprocess.run(["umount", str(view)], check=True)


def test_a_read_only_study_directory_can_be_read_and_reported(tmp_path, console):
    from typer.testing import CliRunner

    from losslab import cli

    small = STUDY.replace("steps = 120", "steps = 4").replace("eval_every = 40",
                                                              "eval_every = 2")
    path = write(tmp_path, small)
    run_study(load_study(path), tmp_path / "out", device="cpu")
    runner = CliRunner()
    with read_only(tmp_path / "out") as view:
        with pytest.raises(OSError):
            (view / "probe").write_text("")
        status = runner.invoke(cli.app, ["status", str(view)])
        assert status.exit_code == 0, status.output
        assert f"faults: {CELLS} cells: {CELLS} done" in status.stdout
        exported = runner.invoke(cli.app, ["export", str(view), "--out",
                                           str(tmp_path / "cells.csv")])
        assert exported.exit_code == 0, exported.output
        assert len(pd.read_csv(tmp_path / "cells.csv")) == CELLS
        report = runner.invoke(cli.app, ["report", str(view), "--out",
                                         str(tmp_path / "report")])
        assert report.exit_code == 0, report.output
        assert (tmp_path / "report" / "index.html").exists()
        # What needs writing says so in one line (exit 2 through the console script).
        for args in (["report", str(view)], ["export", str(view)],
                     ["run", str(path), "--out", str(view), "--device", "cpu"]):
            code, _, err = console(*args)
            assert code == 2, err
            assert len(err.strip().splitlines()) == 1, err
            assert str(view) in err and "Traceback" not in err


def _fill(directory):
    """Write one file until the file system is full; returns it."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
        while True:
            file.write(b"\0" * 65536)
    return filler


@pytest.fixture
def small_disk(tmp_path):
    """A 8 MB tmpfs (root on Linux), unmounted afterwards."""
    if os.geteuid() != 0 or sys.platform != "linux":
        pytest.skip("mounting a small tmpfs needs root on Linux")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.slow
def test_a_full_disk_stops_the_run_in_one_line_and_the_same_command_completes(
        tmp_path, reference, small_disk, console):
    from losslab.errors import LosslabError

    path = write(tmp_path)
    out = small_disk / "out"
    filled = []

    def fill_after_first_stack(events):
        if events.trained >= 4 and not filled:
            filled.append(_fill(small_disk))

    with pytest.raises(LosslabError, match=rf"the disk holding {out}.* is full \(.* free\): "
                                           r"free at least .* MB"):
        run_study(load_study(path), out, device="cpu", checkpoint_every=0.0,
                  on_update=fill_after_first_stack)
    assert filled and integrity(out) == "ok"
    assert load(out).status_counts()["done"] == 4
    # The same command while the disk is still full: one line, exit 2.
    code, _, err = console(*command(path, out)[3:])
    assert code == 2 and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "is full" in err
    assert integrity(out) == "ok"
    filled[0].unlink()
    code, _, err = console(*command(path, out)[3:])
    assert code == 0, err
    assert_same_store(out, reference)


def test_the_same_study_from_another_path_uses_the_same_directory(tmp_path):
    small = STUDY.replace("steps = 120", "steps = 4").replace("eval_every = 40",
                                                              "eval_every = 2")
    first = write(tmp_path, small)
    run_study(load_study(first), tmp_path / "out", device="cpu")
    (tmp_path / "moved").mkdir()
    moved = write(tmp_path / "moved", small.replace("seeds = 2", "seeds = 3"), "copy.toml")
    events = run_study(load_study(moved), tmp_path / "out", device="cpu")
    # The stored cells are kept and only the third seed's trains.
    assert events.done_before == CELLS and events.trained == CELLS // 2


LOAD = six_stacks("load", steps=40, eval_every=20)
# A separate process asks `losslab status` every 0.1 s until the file STOP appears and
# prints every answer that is not a count of cells.
POLL = """
import sys, time
from pathlib import Path
from typer.testing import CliRunner
from losslab import cli
out, stop = sys.argv[1], Path(sys.argv[2])
runner, polls = CliRunner(), 0
while not stop.exists():
    result = runner.invoke(cli.app, ["status", out, "--json"])
    polls += 1
    # Before the first run has created the store there is nothing to count yet.
    said = " ".join(f"{result.output} {result.exception!r}".split())
    if result.exit_code != 0 and "holds no" not in said:
        print("ERROR", result.exit_code, said, flush=True)
    time.sleep(0.1)
print("polls", polls)
"""


@pytest.mark.slow
def test_two_runs_a_status_poll_and_a_report_share_one_directory(tmp_path, console):
    import re

    path = write(tmp_path, LOAD, "load.toml")
    reference = tmp_path / "reference"
    run_study(load_study(path), reference, device="cpu")
    out = tmp_path / "out"
    stop = tmp_path / "STOP"
    poll = subprocess.Popen([sys.executable, "-c", POLL, str(out), str(stop)], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = [subprocess.Popen(command(path, out, quiet=False), env=ENV,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    deadline = time.monotonic() + 300
    while read_meta(out) is None or load(out).status_counts()["done"] == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # The report in this process, while the two runs go on in theirs.
    report_code, _, report_err = console("report", out, "--out", tmp_path / "report")
    finished = [run.communicate(timeout=300) for run in runs]
    stop.write_text("")
    polled, poll_err = poll.communicate(timeout=120)
    assert report_code == 0, report_err
    trained = 0
    for run, (stdout, stderr) in zip(runs, finished, strict=True):
        assert run.returncode == 0, stderr
        assert "locked" not in stderr and "Traceback" not in stderr, stderr
        trained += int(re.search(r"\((\d+) trained now", stdout).group(1))
    assert poll.returncode == 0 and "ERROR" not in polled and not poll_err.strip(), polled
    assert int(polled.split()[-1]) > 0
    # Each cell trained by exactly one of the runs (results are written under a lease).
    assert trained == 24
    assert_same_store(out, reference)
