"""Crash safety: runs killed with SIGKILL at random moments, resumed, end equal to an
uninterrupted run cell for cell; concurrent runs split the work through leases."""

import multiprocessing
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from losslab.study import load, load_study, run_study
from losslab.study.store import Store, read_meta
from stores import assert_same_store, run_reference, six_stacks, write_study

# Six stacks (one per hidden width) of 2 losses x 2 seeds: a stack takes ~0.1 s here, so
# random kills land before, during and between stacks and inside the write transactions.
KILL = six_stacks("kill", steps=6, eval_every=3)


def write(tmp_path, text=KILL):
    return write_study(tmp_path, text, "kill.toml")


def assert_consistent(directory):
    """A killed store is intact (SQLite's own check, no half-written cell); returns the
    number of done cells."""
    conn = sqlite3.connect(directory / "study.sqlite")
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        if read_meta(directory) is None:
            return 0  # killed before its first commit: an empty file, read as "no study yet"
        rows = conn.execute(
            "SELECT c.status, count(k.cell_id) FROM cells c LEFT JOIN curves k "
            "USING (cell_id) GROUP BY c.cell_id"
        ).fetchall()
    finally:
        conn.close()
    for status, n_curves in rows:
        # 6 steps, evaluated at 3 and 6, 7 stored metrics (no dev split): 14 rows or none.
        assert (status, n_curves) in {("done", 14), ("pending", 0), ("running", 0)}
    return sum(status == "done" for status, _ in rows)


def _child(path, out, queue=None):
    import torch

    torch.set_num_threads(1)
    events = run_study(load_study(path), out, device="cpu")
    if queue is not None:
        queue.put(events.trained)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = run_reference(tmp_path_factory, KILL, "kill.toml")
    assert load(out).status_counts()["done"] == 24
    return out


@pytest.mark.slow
def test_random_sigkills_then_resume_equal_an_uninterrupted_run(tmp_path, reference):
    path = write(tmp_path)
    context = multiprocessing.get_context("fork")
    rng = random.Random(0)
    kills, rounds = 0, 0
    while kills < 24:
        out = tmp_path / f"out{rounds}"
        rounds += 1
        for _ in range(8):
            child = context.Process(target=_child, args=(path, out))
            child.start()
            time.sleep(rng.uniform(0.0, 0.35))
            if child.is_alive():
                os.kill(child.pid, signal.SIGKILL)
                kills += 1
            # Reap it: a zombie would still look alive to the lease check.
            child.join()
            if (out / "study.sqlite").exists() and assert_consistent(out) == 24:
                break  # the study is complete: later kills would hit nothing
        resumed = run_study(load_study(path), out, device="cpu")
        assert resumed.done == 24 and resumed.trained == 24 - resumed.done_before
        assert_same_store(out, reference)
    assert kills >= 20


@pytest.mark.slow
def test_killed_command_line_run_resumes(tmp_path, reference, console):
    path = write(tmp_path)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "losslab.cli", "run", str(path), "--out", str(out),
               "--device", "cpu", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen(command, env=env)
    deadline = time.monotonic() + 120
    done = 0
    while done == 0 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
        if (out / "study.sqlite").exists():
            conn = sqlite3.connect(out / "study.sqlite")
            try:
                done = conn.execute(
                    "SELECT count(*) FROM cells WHERE status = 'done'"
                ).fetchone()[0]
            except sqlite3.OperationalError:
                done = 0
            finally:
                conn.close()
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert_consistent(out)
    # The same command again, in this process: what is tested is the killed process's store.
    code, _, err = console(*command[3:])
    assert code == 0, err
    assert_same_store(out, reference)


@pytest.mark.slow
def test_two_runs_on_one_directory_never_train_the_same_cell(tmp_path, reference):
    path = write(tmp_path)
    out = tmp_path / "out"
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_child, args=(path, out, queue)) for _ in range(2)]
    for child in children:
        child.start()
    trained = [queue.get(timeout=300) for _ in children]
    for child in children:
        child.join()
        assert child.exitcode == 0
    # Stored results are only written under a lease: each cell once, by one of the runs.
    assert sum(trained) == 24
    assert_same_store(out, reference)


def test_a_live_lease_is_respected_with_a_message(tmp_path):
    path = write(tmp_path)
    out = tmp_path / "out"
    study = load_study(path)
    run_study(study, out, device="cpu", stop=_stopped())
    store = Store(out, owner=f"{os.uname().nodename}:{os.getpid()}:test")
    held = load(out).cells()
    first_stack = held.cell_id[:4].tolist()
    claimed, _ = store.claim(first_stack, grace=3600)
    store.close()
    assert claimed == first_stack
    events = run_study(study, out, device="cpu")
    assert events.held == 4 and events.done == 20 and events.trained == 20
    assert "being trained by another losslab run" in events.messages[0]
    statuses = load(out).cells().set_index("cell_id").status
    assert (statuses[first_stack] == "running").all()


def test_a_stale_lease_of_another_host_is_taken_over(tmp_path):
    path = write(tmp_path)
    out = tmp_path / "out"
    study = load_study(path)
    run_study(study, out, device="cpu", stop=_stopped())
    store = Store(out, owner="elsewhere:1:0")
    cells = load(out).cells().cell_id.tolist()
    store.claim(cells, grace=3600)
    store.conn.execute("UPDATE cells SET heartbeat = heartbeat - 100")
    store.close()
    events = run_study(study, out, device="cpu", lease_grace=50)
    assert events.held == 0 and events.trained == 24


def _stopped():
    import threading

    stop = threading.Event()
    stop.set()
    return stop


def test_a_stopped_run_keeps_finished_stacks_and_resumes(tmp_path, reference):
    import threading

    path = write(tmp_path)
    out = tmp_path / "out"
    stop = threading.Event()

    def stop_after_two_stacks(events):
        if events.trained >= 8:
            stop.set()

    events = run_study(load_study(path), out, device="cpu", stop=stop,
                       on_update=stop_after_two_stacks)
    assert events.trained == 8
    statuses = load(out).cells().status.value_counts().to_dict()
    assert statuses == {"done": 8, "pending": 16}
    conn = sqlite3.connect(out / "study.sqlite")
    assert conn.execute("SELECT outcome FROM runs").fetchall() == [("interrupted",)]
    conn.close()
    resumed = run_study(load_study(path), out, device="cpu")
    assert resumed.done_before == 8 and resumed.trained == 16
    assert_same_store(out, reference)
