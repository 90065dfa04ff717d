"""A study on a two-node local Ray cluster (``ray.cluster_utils.Cluster``): each stack asks
for the resources it needs, and a killed Ray worker or a lost node costs a retry from the
stack's last checkpoint, never a cell: the store ends equal to the in-process run's."""

import os
import signal
import threading
import time

import pytest
import torch

ray = pytest.importorskip("ray")

from losslab.study import load, load_study, run_study  # noqa: E402
from losslab.study.executors import RayExecutor  # noqa: E402
from stores import (  # noqa: E402
    LONG_STACK,
    assert_workers_forward_their_steps,
    run_reference,
    write_study,
)
from stores import assert_same_store as same_store  # noqa: E402

# Three widths x 2 losses x 2 seeds, two models a stack: six stacks, so that both nodes
# are busy when one of them goes.
STUDY = """
name = "cluster"
seeds = 2
datasets = [{name = "checkerboard", n_train = 60, n_test = 40}]
models = [{name = "mlp", hidden = [4]}, {name = "mlp", hidden = [6]}, {name = "mlp", hidden = [8]}]
losses = ["log", "hinge"]
[train]
batch_size = 20
steps = 120
eval_every = 40
"""
CELLS = 12

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """A head (1 CPU, and 2 GPUs it declares without having them) and a worker node
    (1 CPU); the driver (this process) connected to it."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 2, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        yield cluster, worker
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = run_reference(tmp_path_factory, STUDY, "cluster.toml", max_stack=2)
    return out.parent / "cluster.toml", out


def assert_same_store(directory, reference):
    """Every cell stored once (cell_id and (cell, metric, step) are the store's keys), with
    the in-process metrics (exact: see tests/stores.py)."""
    cells = load(directory).cells()
    assert cells.cell_id.is_unique and (cells.status == "done").all()
    same_store(directory, reference)


def when(condition, action):
    """Run ``action`` in a thread once ``condition()`` holds (polled every 20 ms)."""
    def watch():
        deadline = time.monotonic() + 300
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.02)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _ray_train_workers(parent=None):
    """Pids of the Ray worker processes training a stack (Ray titles them ray::<task>),
    of the raylet ``parent`` only if given."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as file:
                    if not file.read().startswith(b"ray::_ray_train"):
                        continue
                with open(f"/proc/{entry}/stat") as file:
                    ppid = int(file.read().rpartition(")")[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if parent is None or ppid == parent:
                found.append(int(entry))
    return found


@pytest.mark.skipif(torch.cuda.is_available(), reason="the declared GPUs must not be real")
def test_each_stack_asks_for_its_resources_and_sees_the_gpu_ray_gave_it(cluster):
    executor = RayExecutor()
    cells = [{"cell_id": f"c{i}", "loss": {"name": "log"}, "seed": i, "lr": 0.01,
              "weight_decay": 0.0} for i in range(3)]
    base = {"dataset": {"name": "checkerboard", "n_train": 20, "n_test": 10},
            "model": {"name": "mlp", "hidden": [4]}, "train": {"steps": 2, "eval_every": 1},
            "measure": {}, "imports": [], "checkpoint": None}
    tasks = [{**base, "stack_id": "gpu", "device": "cuda", "cells": cells},
             {**base, "stack_id": "cpu", "device": "cpu", "cells": cells[:1]}]
    assert executor.resources(tasks[0]) == {"num_cpus": 1, "num_gpus": 1}
    assert executor.resources(tasks[1]) == {"num_cpus": 1, "num_gpus": 0}
    assert executor.resources({**tasks[1], "device": "auto"})["num_gpus"] == 1
    results = dict((task["stack_id"], outcomes) for task, outcomes in
                   executor.run(iter(tasks), None, threading.Event()))
    gpu = results["gpu"][0]["worker"]
    # Ray picked one of the two declared GPUs and exported exactly it to the stack; the
    # stack then found no real CUDA device and failed without touching one.
    assert gpu["gpus"] == 1 and len(gpu["gpu_ids"]) == 1 and gpu["gpu_ids"][0] in ("0", "1")
    assert gpu["cuda_visible_devices"] == gpu["gpu_ids"][0]
    assert results["gpu"][0]["status"] == "failed"
    cpu = results["cpu"][0]
    assert cpu["status"] == "done" and cpu["worker"]["threads"] == 1
    assert cpu["worker"]["cuda_visible_devices"] in (None, "")


def test_ray_equals_in_process(cluster, study, tmp_path):
    """The Ray executor on the Ray this process is already connected to (no address): the
    store equals the in-process run's. Here rather than beside the process pool's test
    (tests/test_study_executors.py) so that the suite starts Ray once."""
    path, reference = study
    events = run_study(load_study(path), tmp_path / "out", executor="ray", device="cpu",
                       max_stack=2)
    assert events.trained == events.total == CELLS
    assert load(tmp_path / "out").environment()["executor"] == "ray"
    assert_same_store(tmp_path / "out", reference)


def test_ray_workers_forward_their_steps_to_the_driver(cluster, tmp_path):
    # tests/test_study_progress.py asks the same of the process pool's workers.
    path = write_study(tmp_path, LONG_STACK, "long.toml")
    assert_workers_forward_their_steps(path, tmp_path / "out", "ray")


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the Ray workers through /proc")
def test_a_killed_ray_worker_is_retried_from_its_checkpoint(cluster, study, tmp_path):
    path, reference = study
    out = tmp_path / "out"
    killed = []

    def kill():
        for pid in _ray_train_workers()[:1]:
            os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer does
            killed.append(pid)

    # A stack has saved its first step and a worker is training: kill that worker.
    thread = when(lambda: list((out / "checkpoints").glob("*.pt")) and _ray_train_workers(),
                  kill)
    events = run_study(load_study(path), out, executor="ray", address=cluster[0].address,
                       device="cpu", max_stack=2, checkpoint_every=0.0)
    thread.join()
    assert killed
    cells = load(out).cells()
    assert any("Ray worker or node was lost; retrying it from its last checkpoint" in m
               for m in events.messages), (events.messages, cells.error.dropna().tolist())
    assert events.done == events.total == CELLS
    assert_same_store(out, reference)


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="finds the Ray workers through /proc")
def test_a_lost_node_is_retried_on_the_nodes_that_remain(cluster, study, tmp_path):
    path, reference = study
    out = tmp_path / "out"
    cluster_, worker = cluster
    raylet = worker.all_processes["raylet"][0].process.pid
    # Once the worker node is training a stack, that stack is lost with the node.
    thread = when(lambda: _ray_train_workers(raylet),
                  lambda: cluster_.remove_node(worker, allow_graceful=False))
    events = run_study(load_study(path), out, executor="ray", address=cluster_.address,
                       device="cpu", max_stack=2, checkpoint_every=0.0)
    thread.join()
    # The node's raylet and workers are gone (Ray's head may mark it dead only later).
    assert not worker.any_processes_alive()
    retried = [m for m in events.messages if "retrying it from its last checkpoint" in m]
    assert retried, events.messages
    # In the same call: every cell stored, and by this run.
    assert events.done == events.trained == CELLS
    assert_same_store(out, reference)
