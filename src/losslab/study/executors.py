"""Executors: where the stacks of a study are trained. Workers return results; only the
driver writes the store.

A stack is described by a plain, picklable *task* (the shared configuration and, per cell,
loss, seed, lr and weight decay); :func:`train_task` turns it into ONE
:func:`~losslab.train.train_many` call and returns one plain *outcome* dict per cell. The
same function runs in the driver (:class:`InProcessExecutor`), in a local process pool
(:class:`ProcessExecutor`, ``--jobs N``) or on Ray workers (:class:`RayExecutor`).
A task whose ``engine`` is ``"npnet"`` is trained by :mod:`losslab.study.npnet_cells`
instead, with outcomes of the same form.
"""

from __future__ import annotations

import concurrent.futures as futures
import errno
import math
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from losslab.errors import LosslabError
from losslab.plugins import import_modules, load_plugins
from losslab.study.build import build_model
from losslab.study.build import one_line as _one_line
from losslab.study.hashing import canonical_json
from losslab.study.plan import Group

Task = dict[str, Any]
Outcome = dict[str, Any]
EXECUTORS = ("inprocess", "process", "ray")


def make_task(group: Group, cell_ids: list[str], device: str, imports: list[str],
              checkpoint: Mapping[str, Any] | None = None) -> Task:
    """The picklable description of training ``cell_ids`` of ``group`` in one stack.

    ``checkpoint``: ``{"path": file, "seconds": S}`` to save the stack's state at most every
    S seconds and resume from ``path`` when it exists (None: no checkpoints).
    """
    chosen = set(cell_ids)
    cfg = group.config
    return {
        "stack_id": group.stack_id,
        "checkpoint": dict(checkpoint) if checkpoint else None,
        "dataset": cfg["dataset"],
        "model": cfg["model"],
        "train": {k: v for k, v in cfg["train"].items() if k not in ("lr", "weight_decay")},
        "measure": cfg.get("measure", {}),
        "engine": cfg.get("engine", "torch"),
        "device": device,
        "imports": list(imports),
        "cells": [
            {
                "cell_id": c.cell_id,
                "loss": c.config["loss"],
                "seed": c.config["seed"],
                "lr": c.config["train"]["lr"],
                "weight_decay": c.config["train"]["weight_decay"],
            }
            for c in group.cells
            if c.cell_id in chosen
        ],
    }


class DataCache:
    """Datasets loaded once per resolved configuration (the last ``size`` kept), and their
    shapes (:meth:`describe`) known without loading them."""

    def __init__(self, size: int = 4):
        self.size = size
        self._data: dict[str, Any] = {}
        self._info: dict[str, Any] = {}

    def describe(self, config: Mapping[str, Any]) -> Any:
        """The :class:`~losslab.data.info.DatasetInfo` of ``config``; a loaded dataset's own
        shapes, else :func:`~losslab.data.info.describe_dataset` (no loading, no download)."""
        from losslab.data.info import DatasetInfo, describe_dataset

        key = canonical_json(config)
        if key not in self._info:
            data = self._data.get(key)
            if data is not None:
                n_dev = 0 if data.y_dev is None else len(data.y_dev)
                self._info[key] = DatasetInfo(data.name, len(data.y_train), n_dev,
                                              len(data.y_test), tuple(data.input_shape),
                                              data.num_classes)
            else:
                options = {k: v for k, v in config.items() if k != "name"}
                self._info[key] = describe_dataset(config["name"], options.pop("root", None),
                                                   **options)
        return self._info[key]

    def get(self, config: Mapping[str, Any]) -> Any:
        from losslab.data import load_dataset

        key = canonical_json(config)
        if key not in self._data:
            options = {k: v for k, v in config.items() if k != "name"}
            data = load_dataset(config["name"], options.pop("root", None), **options)
            while len(self._data) >= self.size:
                self._data.pop(next(iter(self._data)))
            self._data[key] = data
        return self._data[key]


def _measurements(measure: Mapping[str, Any]) -> list[Any]:
    if not measure:
        return []
    from losslab.metrics.measurements import get_measurement

    return [get_measurement(name, **options) for name, options in measure.items()]


class DatasetSource(Protocol):
    """Where training reads its datasets: a :class:`DataCache`, or tuning's dev-as-test view."""

    def get(self, config: Mapping[str, Any]) -> Any: ...


def train_task(task: Task, cache: DatasetSource, progress: Callable[[dict], None] | None = None,
               stop: threading.Event | None = None) -> list[Outcome]:
    """Train the cells of ``task`` as ONE train_many stack and return their outcomes.

    Args:
        task: from :func:`make_task`.
        cache: where datasets are loaded once.
        progress: the engine's progress callback (a dict per report), if any.
        stop: an event that interrupts training (results are then ``interrupted``).

    Returns:
        One dict per cell: ``cell_id``, ``status`` ("done", "diverged", "failed" or
        "interrupted"), ``error``, ``diverged_at``, ``final``, ``curves``,
        ``measurements`` (rows (step, name, index, value)), ``seconds``, ``steps_run``,
        ``best_step``, ``stopped_early``. A failure (e.g. out of memory) fails every cell
        of the stack with its error; it never raises.
    """
    from losslab.train import ModelSpec, TrainConfig, resolve_device, train_many

    if task.get("engine") == "npnet":
        from losslab.study.npnet_cells import train_npnet_task

        return train_npnet_task(task, cache, progress, stop)

    builder: Callable[[int], Any] | None = None
    specs: list[ModelSpec] = []
    try:
        load_plugins()
        import_modules(task["imports"])
        data = cache.get(task["dataset"])
        model_cfg = {k: v for k, v in task["model"].items() if k != "name"}
        name = task["model"]["name"]

        def build(seed: int) -> Any:
            return build_model(name, data.input_shape, data.num_classes, seed=seed,
                               **model_cfg)

        builder = build

        saving: dict[str, Any] = {}
        if task.get("checkpoint") and _reachable(task["checkpoint"]["path"]):
            # Saved by time only (and at the end): steps say nothing about how much work a
            # kill would lose.
            saving = {"checkpoint_path": task["checkpoint"]["path"],
                      "checkpoint_every": task["train"].get("steps", 1),
                      "checkpoint_seconds": task["checkpoint"]["seconds"]}
        config = TrainConfig(**task["train"], device=task["device"], **saving)
        device = str(resolve_device(config.device))
        specs = [
            ModelSpec(
                loss=c["loss"]["name"],
                seed=c["seed"],
                loss_kwargs={k: v for k, v in c["loss"].items() if k != "name"},
                lr=c["lr"],
                weight_decay=c["weight_decay"],
                label=c["cell_id"],
            )
            for c in task["cells"]
        ]
        try:
            results = train_many(build, specs, data, config, progress=progress, stop=stop,
                                 measure=_measurements(task["measure"]))
        except LosslabError as err:
            path = saving.get("checkpoint_path")
            if not (path and os.path.exists(path) and "checkpoint" in str(err)):
                raise
            # An unreadable or foreign checkpoint costs only its progress: start afresh.
            os.remove(path)
            results = train_many(build, specs, data, config, progress=progress, stop=stop,
                                 measure=_measurements(task["measure"]))
    except OSError as err:
        if err.errno not in DISK_FULL_ERRNOS:
            return _failed(task, err)
        # Not a failure of the cells: the driver stops the run and says how much to free.
        needed = _state_bytes(builder, specs) if builder is not None and specs else 0
        return [{"cell_id": c["cell_id"], "status": "interrupted", "error": _one_line(err),
                 "disk_full": os.path.dirname(task["checkpoint"]["path"]),
                 "bytes_needed": needed} for c in task["cells"]]
    except Exception as err:  # noqa: BLE001 - a failed stack is recorded, the study goes on
        return _failed(task, err)
    out = []
    for cell, result in zip(task["cells"], results, strict=True):
        if result.interrupted:
            status = "interrupted"
        else:
            status = "diverged" if result.diverged else "done"
        out.append(
            {
                "cell_id": cell["cell_id"],
                "status": status,
                "error": None,
                "diverged_at": result.diverged_at,
                "final": dict(result.final),
                "curves": {k: list(v) for k, v in result.curves.items()},
                "measurements": [tuple(r) for r in result.measurements],
                "seconds": result.seconds,
                "steps_run": result.steps_run,
                "best_step": result.best_step,
                "stopped_early": result.stopped_early,
                "device": device,
            }
        )
    return out


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _reachable(path: str) -> bool:
    """Whether this worker can write checkpoints to ``path``'s folder (a Ray node without
    the driver's storage cannot: its stacks then train without checkpoints)."""
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as err:
        if err.errno in DISK_FULL_ERRNOS:
            raise
        return False
    return os.access(os.path.dirname(path), os.W_OK)


def _failed(task: Task, err: BaseException) -> list[Outcome]:
    error = _one_line(err)
    return [{"cell_id": c["cell_id"], "status": "failed", "error": error,
             "device": task["device"]} for c in task["cells"]]


def _state_bytes(build: Callable[[int], Any], specs: list[Any]) -> int:
    """About the size of a stack's checkpoint: weights plus two optimiser moments."""
    model = build(specs[0].seed)
    return 3 * len(specs) * sum(p.numel() * p.element_size() for p in model.parameters())


# ---------------------------------------------------------------------- executors
class InProcessExecutor:
    """Trains the stacks one after another in the driver process (the default)."""

    name = "inprocess"

    def __init__(self, cache: DataCache | None = None):
        self.cache = cache or DataCache()

    def run(self, tasks: Iterator[Task], progress: Callable[[str, dict], None] | None,
            stop: threading.Event) -> Iterator[tuple[Task, list[Outcome]]]:
        for task in tasks:
            if stop.is_set():
                return
            def report(info: dict, stack_id: str = task["stack_id"]) -> None:
                if progress is not None:
                    progress(stack_id, info)
            yield task, train_task(task, self.cache, report, stop)

    def close(self) -> None:
        return None


_WORKER_CACHE: DataCache | None = None
_WORKER_STOP = threading.Event()
_WORKER_PROGRESS: Any = None
# A worker forwards its engine's reports at most this often (seconds).
FORWARD_SECONDS = 1.0


def forwarder(put: Callable[[Any], None], stack_id: str) -> Callable[[dict], None]:
    """The engine's ``progress`` callable for a stack trained away from the driver: sends
    ``(stack_id, {"step", "steps", "models"})`` through ``put`` at most every
    :data:`FORWARD_SECONDS`, and always the last step. A failed send is dropped: progress
    is for display and never stops training."""
    last = [-math.inf]

    def report(info: dict) -> None:
        now = time.monotonic()
        if now - last[0] < FORWARD_SECONDS and info.get("step") != info.get("steps"):
            return
        last[0] = now
        try:
            put((stack_id, {k: info.get(k) for k in ("step", "steps", "models")}))
        except Exception:  # noqa: BLE001, S110 - see the docstring
            pass

    return report


def drain_progress(get: Callable[[], Any], progress: Callable[[str, dict], None] | None
                   ) -> None:
    """Hand every report waiting in a worker-to-driver queue to ``progress``; ``get``
    raises when the queue is empty."""
    while True:
        try:
            stack_id, info = get()
        except Exception:  # noqa: BLE001 - empty (or closed): nothing more now
            return
        if progress is not None:
            progress(stack_id, info)


def _worker_init(threads: int, stop: Any, reports: Any = None) -> None:
    import signal
    import sys

    if "torch" not in sys.modules:
        # Read once, when torch loads OpenMP: idle threads sleep instead of spinning.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    import torch

    global _WORKER_CACHE, _WORKER_PROGRESS
    torch.set_num_threads(threads)
    if reports is not None:
        # A killed driver must not leave workers waiting to flush their reports.
        reports.cancel_join_thread()
        _WORKER_PROGRESS = reports
    _WORKER_CACHE = DataCache(size=2)
    # Ctrl-C reaches the whole process group: the driver decides, the workers hear it
    # through ``stop`` and end their stacks at a step boundary with a checkpoint.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        stop.wait()
        _WORKER_STOP.set()

    threading.Thread(target=watch, daemon=True).start()


def _worker_train(task: Task) -> list[Outcome]:
    assert _WORKER_CACHE is not None
    report = None
    if _WORKER_PROGRESS is not None:
        report = forwarder(_WORKER_PROGRESS.put_nowait, task["stack_id"])
    return train_task(task, _WORKER_CACHE, report, stop=_WORKER_STOP)


class ProcessExecutor:
    """A local pool of ``jobs`` worker processes, each with ``threads`` torch threads
    (default 1, :mod:`losslab.study.policy`) and passive OpenMP waiting.

    Workers are started with ``spawn`` (no forked torch state) and return outcomes; the
    driver writes them. A worker killed from outside (SIGKILL, the out-of-memory killer)
    breaks the whole pool: a new pool replaces it and the stacks that were in flight run
    again, from their last checkpoint.
    """

    name = "process"

    def __init__(self, jobs: int, threads: int | None = None):
        self.jobs = jobs
        self.threads = threads or 1
        self.on_message: Callable[[str], None] | None = None
        self.context = multiprocessing.get_context("spawn")
        self.stop = self.context.Event()
        self.reports = self.context.Queue()
        self.pool = self._new_pool()
        self._pool_of: dict[futures.Future, futures.ProcessPoolExecutor] = {}

    def _new_pool(self) -> futures.ProcessPoolExecutor:
        return futures.ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=self.context,
            initializer=_worker_init,
            initargs=(self.threads, self.stop, self.reports),
        )

    def _submit(self, task: Task) -> futures.Future:
        future = self.pool.submit(_worker_train, task)
        self._pool_of[future] = self.pool
        return future

    def _result(self, future: futures.Future) -> list[Outcome]:
        outcomes = future.result()
        self._pool_of.pop(future, None)
        return outcomes

    def _replace(self, future: futures.Future) -> None:
        # Every future of a broken pool fails; only the first one of it starts a new pool.
        if self._pool_of.pop(future, None) is self.pool:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = self._new_pool()

    def run(self, tasks: Iterator[Task], progress: Callable[[str, dict], None] | None,
            stop: threading.Event) -> Iterator[tuple[Task, list[Outcome]]]:
        def wait(pending: Any, return_when: str) -> tuple[Any, Any]:
            # Short waits, so that a stop reaches the workers within a fraction of a second.
            while True:
                done, rest = futures.wait(pending, timeout=0.2, return_when=return_when)
                drain_progress(self.reports.get_nowait, progress)
                if stop.is_set():
                    self.stop.set()
                if done:
                    return done, rest

        return _drain(tasks, self.jobs, self._submit, wait, self._result, stop,
                      Lost((BrokenProcessPool,), "its worker process died", self._replace,
                           self.on_message))

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.reports.cancel_join_thread()
        self.reports.close()


class RayExecutor:
    """Stacks as Ray tasks on a local or remote cluster (``pip install losslab[ray]``).

    A stack whose worker process or node is lost runs again on the nodes that remain,
    from its last checkpoint (the retry is the driver's, so that it can say so).

    Args:
        address: a cluster address (``ray start --head`` prints it), ``"auto"``, or None
            for a local instance.
        num_cpus: CPUs of a local instance (default: all).
        cpus_per_task: CPUs each stack reserves, also its torch thread count.
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 cpus_per_task: int = 1):
        try:
            import ray
        except ImportError:
            raise LosslabError(
                "--executor ray needs Ray: pip install 'losslab[ray]'"
            ) from None
        self.ray = ray
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                kwargs["address"] = address
            else:
                # "local" starts an instance of our own even when another Ray cluster runs
                # on this machine (plain ray.init() would join it and refuse num_cpus).
                kwargs["address"] = "local"
                kwargs["num_cpus"] = num_cpus
            try:
                ray.init(**kwargs)
            except ConnectionError as err:
                raise LosslabError(
                    f"cannot reach the Ray cluster at {address!r} ({err}); check --address"
                ) from None
            self._started = True
        else:
            self._started = False
        self.on_message: Callable[[str], None] | None = None
        self.remote = ray.remote(_ray_train)
        self.cpus_per_task = cpus_per_task
        resources = ray.cluster_resources()
        self.gpus = int(resources.get("GPU", 0))
        self.slots = max(1, int(resources.get("CPU", 1)) // cpus_per_task)

    def resources(self, task: Task) -> dict[str, float]:
        """What one stack asks Ray for: a GPU (and one CPU to drive it) when it trains on
        CUDA (``--device cuda``, or ``auto`` on a cluster with GPUs), else up to
        ``cpus_per_task`` CPUs, no more than it has models (a thread per model at most)."""
        device = task["device"]
        if device.startswith("cuda") or (device == "auto" and self.gpus):
            return {"num_cpus": 1, "num_gpus": 1}
        return {"num_cpus": max(1, min(self.cpus_per_task, len(task["cells"]))),
                "num_gpus": 0}

    def run(self, tasks: Iterator[Task], progress: Callable[[str, dict], None] | None,
            stop: threading.Event) -> Iterator[tuple[Task, list[Outcome]]]:
        ray = self.ray

        from ray.util.queue import Queue

        # The queue is an actor that holds no CPU, so it never takes a stack's slot.
        reports = Queue(actor_options={"num_cpus": 0})

        def wait(pending: Any, return_when: str | None = None) -> tuple[Any, Any]:
            while True:
                ready, rest = ray.wait(list(pending), num_returns=1, timeout=0.5)
                drain_progress(reports.get_nowait, progress)
                if ready:
                    return ready, rest

        def submit(task: Task) -> Any:
            return self.remote.options(max_retries=0, **self.resources(task)).remote(
                task, reports)

        lost = (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
                ray.exceptions.ObjectLostError, ray.exceptions.OutOfMemoryError,
                ray.exceptions.LocalRayletDiedError)
        return _drain(tasks, self.slots, submit, wait, ray.get, stop,
                      Lost(lost, "its Ray worker or node was lost", None, self.on_message))

    def close(self) -> None:
        if self._started:
            self.ray.shutdown()


_RAY_CACHE: DataCache | None = None


def _ray_train(task: Task, reports: Any = None) -> list[Outcome]:
    """A stack on a Ray worker, with as many torch threads as CPUs Ray gave it; each outcome
    carries ``worker``: host, pid, threads, the GPUs Ray assigned and the
    ``CUDA_VISIBLE_DEVICES`` the stack saw."""
    import socket

    import ray
    import torch

    global _RAY_CACHE
    given = ray.get_runtime_context().get_assigned_resources()
    threads = max(1, int(given.get("CPU", 1)))
    torch.set_num_threads(threads)
    if _RAY_CACHE is None:
        _RAY_CACHE = DataCache(size=2)
    report = None if reports is None else forwarder(reports.put_nowait, task["stack_id"])
    outcomes = train_task(task, _RAY_CACHE, report)
    worker = {"host": socket.gethostname(), "pid": os.getpid(), "threads": threads,
              "gpus": given.get("GPU", 0),
              "gpu_ids": list(ray.get_runtime_context().get_accelerator_ids().get("GPU", [])),
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    return [{**outcome, "worker": worker} for outcome in outcomes]


RETRIES = 3


@dataclass
class Lost:
    """How an executor's lost work shows: the exceptions of a dead worker or node, the words
    for it, what replaces the dead worker (None: the executor does it itself), and where
    the line about a retry goes."""

    errors: tuple[type[BaseException], ...]
    what: str
    replace: Callable[[Any], None] | None
    say: Callable[[str], None] | None
    retries: int = RETRIES


def _drain(tasks: Iterator[Task], slots: int, submit: Callable[[Task], Any],
           wait: Callable[..., tuple[Any, Any]], result: Callable[[Any], list[Outcome]],
           stop: threading.Event, lost: Lost | None = None
           ) -> Iterator[tuple[Task, list[Outcome]]]:
    """Keep ``slots`` tasks in flight; yield (task, outcomes) as they finish.

    A task lost with its worker (``lost.errors``) is submitted again, up to
    ``lost.retries`` times, before its cells fail; it resumes from its checkpoint.
    """
    running: dict[Any, Task] = {}
    again: list[Task] = []
    attempts: dict[str, int] = {}
    tasks = iter(tasks)
    exhausted = False
    while True:
        while not stop.is_set() and len(running) < slots and (again or not exhausted):
            task = again.pop(0) if again else next(tasks, None)
            if task is None:
                exhausted = True
                break
            running[submit(task)] = task
        if not running:
            return
        done, _ = wait(list(running), return_when=futures.FIRST_COMPLETED)
        for handle in done:
            task = running.pop(handle)
            try:
                outcomes = result(handle)
            except Exception as err:  # noqa: BLE001 - a lost worker fails its stack only
                if lost is not None and isinstance(err, lost.errors):
                    if lost.replace is not None:
                        lost.replace(handle)
                    tries = attempts[task["stack_id"]] = attempts.get(task["stack_id"], 0) + 1
                    if tries <= lost.retries:
                        if lost.say is not None:
                            lost.say(
                                f"stack {task['stack_id']} ({len(task['cells'])} cells): "
                                f"{lost.what}; retrying it from its last checkpoint "
                                f"(retry {tries} of {lost.retries})"
                            )
                        again.append(task)
                        continue
                outcomes = [{"cell_id": c["cell_id"], "status": "failed",
                             "error": _one_line(err)} for c in task["cells"]]
            yield task, outcomes


def make_executor(kind: str, jobs: int | None = 1, address: str | None = None,
                  cache: DataCache | None = None, threads: int | None = None) -> Any:
    """An executor by name: ``inprocess``, ``process`` (``jobs`` workers of ``threads``
    torch threads) or ``ray`` (``jobs`` CPUs of a local instance, ``threads`` per stack)."""
    if kind == "inprocess":
        return InProcessExecutor(cache)
    if kind == "process":
        return ProcessExecutor(jobs or 1, threads)
    if kind == "ray":
        return RayExecutor(address, num_cpus=jobs if jobs and jobs > 1 and not address
                           else None, cpus_per_task=threads or 1)
    raise LosslabError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}")
