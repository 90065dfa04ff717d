"""The driver of ``losslab run``: plan, store, lease, execute, record.

Order of work, so that bad input never touches the store: validate the study, load every
dataset (missing files are reported here), expand the grid, check that the directory
belongs to this study and this losslab version; only then open the store for writing.

Seed: Janocha & Czarnecki 2017 §3 (the grids a study runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from losslab.errors import LosslabError
from losslab.study.build import takes_data_shape
from losslab.study.executors import DataCache, Task, make_executor, make_task
from losslab.study.hashing import canonical_json
from losslab.study.plan import DEFAULT_MAX_STACK, Group, Plan, expand, restack
from losslab.study.spec import Study
from losslab.study.store import LEASE_GRACE_SECONDS, Store, check_compatible, environment
from losslab.study.timeleft import TimeLeft

HEARTBEAT_SECONDS = 5.0
CHECKPOINT_SECONDS = 300.0
CHECKPOINT_DIR = "checkpoints"
DONE = ("done", "diverged")


def default_out(study: Study) -> Path:
    """``results/<study name>`` under the current directory."""
    return Path("results") / study.name


def prepare(study: Study, cache: DataCache, max_stack: int = DEFAULT_MAX_STACK,
            tuned: Callable[[dict[str, Any]], Any] | None = None, load: bool = True) -> Plan:
    """Load every dataset of the study (missing files fail here) and expand its grid.

    ``tuned`` gives each cell the settings chosen by ``[tune]`` (see :func:`expand`).
    ``load=False`` (dry runs) plans from the datasets' shapes alone
    (:meth:`DataCache.describe`): nothing is loaded or downloaded, absent files fail nothing.
    """
    def shape_of(config: dict[str, Any]) -> Any:
        return cache.get(config) if load else cache.describe(config)

    from losslab.models import MODELS, models_for
    from losslab.study.plan import _resolve_dataset
    from losslab.study.spec import NOISE_FIELDS, registry_key

    spec = study.spec
    noise = {k: getattr(spec.noise, k) for k in NOISE_FIELDS}
    clean = {k: (v[0] if isinstance(v, list) else v) for k, v in noise.items()}
    for i, item in enumerate(spec.datasets):
        try:
            data = shape_of(_resolve_dataset(item, clean))
        except LosslabError as err:
            raise study.fail(f"datasets[{i}]", str(err)) from None
        fitting = models_for(data.input_shape)
        for j, model in enumerate(spec.models):
            key = registry_key("model", model.name)
            if not takes_data_shape(MODELS[key]) and key not in fitting:
                raise study.fail(
                    f"models[{j}]",
                    f"model {key!r} cannot read the samples {tuple(data.input_shape)} of "
                    f"datasets[{i}] ({item.name}); models that can: {', '.join(fitting)}. "
                    "Split the study or add an [[exclude]] rule",
                )

    def n_train(config: dict[str, Any]) -> int:
        return int(cache.describe(config).n_train)

    return expand(study, n_train, max_stack, tuned)


@dataclass
class RunEvents:
    """What the driver reports while it runs (the CLI draws it).

    Attributes:
        total: cells in the plan; ``done_before``: stored (done or diverged) at the start;
        ``done``: stored now; ``trained``: results this run stored (failed included);
        ``failed``: cells this run recorded as failed; ``held``: cells skipped because
        another live run holds their lease.
        model_steps_total / _done / _live: the planned model-steps of this run, those of
        finished stacks, and those reported so far by the stacks in flight.
        stacks_live: stack id -> (step, steps) of each stack in flight, as last reported.
        seconds_left: the time left, from the rate each kind of stack has shown
            (:class:`~losslab.study.timeleft.TimeLeft`); ``inf`` before any rate is known.
    """

    total: int = 0
    done_before: int = 0
    done: int = 0
    trained: int = 0
    failed: int = 0
    held: int = 0
    model_steps_total: int = 0
    model_steps_done: int = 0
    model_steps_live: float = 0.0
    stacks_live: dict[str, tuple[int, int]] = field(default_factory=dict)
    seconds_left: float = math.inf
    started: float = field(default_factory=time.perf_counter)
    messages: list[str] = field(default_factory=list)


def _cost_kind(group: Group) -> str:
    """What sets a stack's cost per model-step: its data, model and batch size (not its
    losses, seeds, learning rates or label noise)."""
    config = group.config
    return canonical_json([config["dataset"].get("name"), config["model"],
                           config["train"].get("batch_size")])


def run_study(
    study: Study,
    out: str | os.PathLike | None = None,
    *,
    executor: str = "auto",
    jobs: int | None = None,
    threads: int | None = None,
    address: str | None = None,
    device: str = "auto",
    max_stack: int = DEFAULT_MAX_STACK,
    lease_grace: float = LEASE_GRACE_SECONDS,
    checkpoint_every: float = CHECKPOINT_SECONDS,
    checkpoint_dir: Path | None = None,
    on_update: Callable[[RunEvents], None] | None = None,
    stop: threading.Event | None = None,
) -> RunEvents:
    """Run every cell of ``study`` that is not stored yet, writing results to ``out``.

    Args:
        study: a validated study (:func:`~losslab.study.spec.load_study`).
        out: the study directory (default ``results/<name>``).
        executor: ``"auto"`` (default: :mod:`losslab.study.policy` chooses),
            ``"inprocess"``, ``"process"`` or ``"ray"``.
        jobs: worker processes (process) or CPUs of a local Ray instance (ray); None:
            chosen (one per usable core).
        threads: torch threads per worker; None: chosen (one on CPU).
        address: a Ray cluster address.
        device: ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.
        max_stack: most models per train_many call.
        lease_grace: seconds without heartbeat after which another run's lease is stale.
        checkpoint_every: seconds of training between two checkpoints of a running stack
            (models, optimiser, random-number states); a killed or stopped stack resumes
            from its last one.
        checkpoint_dir: where the checkpoints go (default ``out/checkpoints``); on a
            cluster, storage that every node can reach.
        on_update: called with the :class:`RunEvents` after every change.
        stop: set it to stop at the next step boundary; unfinished cells stay pending.

    Returns:
        The final :class:`RunEvents`.
    """
    from losslab.study.policy import for_plan
    from losslab.train import resolve_device

    out = Path(out) if out is not None else default_out(study)
    device_name = str(resolve_device(device))
    cache = DataCache()
    plan = prepare(study, cache, max_stack)
    policy = for_plan(plan, cache, executor=executor, jobs=jobs, threads=threads,
                      device=device_name, max_stack=max_stack)
    executor, jobs, max_stack = policy.executor, policy.jobs, policy.max_stack
    plan = restack(plan, max_stack)
    # Ray workers may sit on other machines: they resolve "auto" themselves.
    task_device = device if executor == "ray" else device_name
    check_compatible(out, study.name, study.path)
    stop = stop or threading.Event()
    store = Store(out)
    checkpoints = Path(checkpoint_dir) if checkpoint_dir is not None else out / CHECKPOINT_DIR
    try:
        checkpoints.mkdir(parents=True, exist_ok=True)
        runner = make_executor(executor, jobs, address,
                               cache if executor == "inprocess" else None, policy.threads)
    except OSError as err:
        store.close()
        raise LosslabError(f"cannot create the checkpoint directory {checkpoints} "
                           f"({err.strerror}); pass another --checkpoint-dir") from None
    except BaseException:
        store.close()
        raise
    events = RunEvents(total=len(plan.cells), messages=list(study.notes))

    def say(line: str) -> None:
        events.messages.append(line)
        _notify(on_update, events)

    runner.on_message = say
    import torch

    threads_before = torch.get_num_threads()
    if executor == "inprocess" and policy.threads is not None:
        torch.set_num_threads(policy.threads)
    beat_stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, beat_stop), daemon=True)
    outcome = "finished"
    try:
        store.initialise(study.name, study.path)
        run_environment = environment(device_name, executor, jobs or 0)
        run_environment["parallelism"] = policy.as_dict()
        if policy.threads is not None:
            run_environment["threads"] = policy.threads
        store.begin_run(study.scale, executor, run_environment, study.text)
        if study.spec.tune is not None:
            tuned_plan = _tune(study, out, cache, device_name, max_stack, stop, events, on_update)
            if tuned_plan is None:
                outcome = "interrupted"
                return events
            plan = tuned_plan
        store.add_cells(plan.cells)
        status = store.statuses([c.cell_id for c in plan.cells])
        events.done_before = sum(s in DONE for s in status.values())
        events.done = events.done_before
        timeleft = TimeLeft(jobs or 1)
        for group in plan.groups:
            left = sum(c.axes["steps"] for c in group.cells if status[c.cell_id] not in DONE)
            events.model_steps_total += left
            if left:
                timeleft.plan(group.stack_id, _cost_kind(group), left)
        beat.start()
        _notify(on_update, events)
        progress_of: dict[str, float] = {}
        steps_of_task: dict[str, int] = {}

        def progress(stack_id: str, info: dict) -> None:
            if stack_id not in steps_of_task:
                return  # a worker's report that arrived after its stack's result
            events.stacks_live[stack_id] = (int(info.get("step", 0)), int(info.get("steps", 0)))
            progress_of[stack_id] = float(info.get("step", 0)) * float(info.get("models", 0))
            events.model_steps_live = sum(progress_of.values())
            timeleft.report(stack_id, progress_of[stack_id])
            events.seconds_left = timeleft.seconds()
            _notify(on_update, events)

        def tasks() -> Iterator[Task]:
            for group in plan.groups:
                if stop.is_set():
                    return
                ids = [c.cell_id for c in group.cells if status[c.cell_id] not in DONE]
                if not ids:
                    continue
                claimed, held = store.claim(ids, lease_grace)
                if held:
                    events.held += len(held)
                    events.messages.append(
                        f"{len(held)} cell(s) of stack {group.stack_id} are being trained by "
                        "another losslab run on this directory; this run skips them"
                    )
                    _notify(on_update, events)
                if not claimed:
                    timeleft.drop(group.stack_id)
                else:
                    saving = {"path": str(checkpoint_file(checkpoints, group.stack_id, claimed)),
                              "seconds": checkpoint_every}
                    task = make_task(group, claimed, task_device, study.spec.imports, saving)
                    steps_of_task[task["stack_id"]] = sum(
                        c.axes["steps"] for c in group.cells if c.cell_id in set(claimed)
                    )
                    if held:
                        timeleft.plan(group.stack_id, _cost_kind(group),
                                      steps_of_task[task["stack_id"]])
                    yield task

        for task, outcomes in runner.run(tasks(), progress, stop):
            finished = [o for o in outcomes if o["status"] != "interrupted"]
            interrupted = [o["cell_id"] for o in outcomes if o["status"] == "interrupted"]
            full = next((o for o in outcomes if o.get("disk_full")), None)
            if full is not None:
                raise DiskFull(Path(full["disk_full"]), full.get("bytes_needed", 0))
            if interrupted:
                store.release(interrupted)
            events.trained += store.record(finished)
            if not interrupted and task.get("checkpoint"):
                _remove(Path(task["checkpoint"]["path"]))
            events.done += sum(o["status"] in DONE for o in finished)
            events.failed += sum(o["status"] == "failed" for o in finished)
            progress_of.pop(task["stack_id"], None)
            events.stacks_live.pop(task["stack_id"], None)
            events.model_steps_done += steps_of_task.pop(task["stack_id"], 0)
            events.model_steps_live = sum(progress_of.values())
            timeleft.finish(task["stack_id"])
            events.seconds_left = timeleft.seconds()
            _notify(on_update, events)
        if stop.is_set():
            outcome = "interrupted"
    except DiskFull as full:
        outcome = "disk full"
        raise LosslabError(full.message(out, plan, store)) from None
    except sqlite3.OperationalError as err:
        if not disk_full(err):
            outcome = "crashed"
            raise
        outcome = "disk full"
        raise LosslabError(DiskFull(out, 0).message(out, plan, store)) from None
    except BaseException:
        outcome = "crashed"
        raise
    finally:
        torch.set_num_threads(threads_before)
        beat_stop.set()
        if beat.is_alive():
            beat.join()
        runner.close()
        try:
            store.end_run(outcome)
        except sqlite3.OperationalError as err:
            # A full disk cannot take the run's last row; its leases die with this process
            # and the next run takes them over.
            if not disk_full(err):
                raise
        finally:
            store.close()
    return events


def checkpoint_file(directory: Path, stack_id: str, cell_ids: list[str]) -> Path:
    """``directory/<stack>-<digest of its cells>.pt``: a stack trained with another subset
    of its cells (another run holds the rest) never reads this one's state."""
    digest = hashlib.sha256(",".join(sorted(cell_ids)).encode()).hexdigest()[:12]
    return directory / f"{stack_id}-{digest}.pt"


def _remove(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".tmp")):
        with contextlib.suppress(OSError):
            leftover.unlink()


class DiskFull(Exception):
    """The disk under ``directory`` filled; ``needed``: bytes a stack's checkpoint takes."""

    def __init__(self, directory: Path, needed: int):
        super().__init__(str(directory))
        self.directory, self.needed = directory, needed

    def message(self, out: Path, plan: Plan, store: Store) -> str:
        """One line: where, how much is free, how much to free, and what to do then."""
        free = shutil.disk_usage(self.directory).free
        cells = store.conn.execute(
            "SELECT count(*) FROM cells WHERE status IN ('done', 'diverged')"
        ).fetchone()[0]
        size = sum(f.stat().st_size for f in out.glob("study.sqlite*") if f.is_file())
        remaining = max(0, len(plan.cells) - cells)
        # Results to come at the size of those stored (or 64 kB a cell before the first),
        # a checkpoint, and room for SQLite's write-ahead log to grow.
        per_cell = size / cells if cells else 65536
        needed = int(remaining * per_cell + self.needed + 2 * 2**20)
        return (f"the disk holding {self.directory} is full ({_mb(free)} free): free at "
                f"least {_mb(needed)} there and run the same command again; stored cells "
                "are kept")


def _mb(n: float) -> str:
    return f"{n / 2**20:.1f} MB"


def disk_full(err: sqlite3.Error) -> bool:
    """SQLite's SQLITE_FULL ("database or disk is full")."""
    return getattr(err, "sqlite_errorname", "") == "SQLITE_FULL" or "disk is full" in str(err)


def _tune(study: Study, out: Path, cache: DataCache, device: str, max_stack: int,
          stop: threading.Event, events: RunEvents,
          on_update: Callable[[RunEvents], None] | None) -> Plan | None:
    """Run (or resume) ``[tune]``; the final plan at the chosen values, None if stopped."""
    from losslab.study.tuning import run_tuning, tune_key, tune_spec

    tuned = tune_spec(study).tuned
    events.messages.append("tuning the learning rate per loss on the dev split")
    _notify(on_update, events)

    def trained(models: int) -> None:
        events.messages.append(f"tuning: trained {models} models")
        _notify(on_update, events)

    def n_train(config: dict[str, Any]) -> int:
        return int(len(cache.get(config).y_train))

    chosen = run_tuning(study, out, cache, device, n_train, max_stack, stop, trained)
    if stop.is_set():
        return None
    plan = prepare(study, cache, max_stack, lambda config: chosen[tune_key(config, tuned)])
    events.total = len(plan.cells)
    return plan


def _notify(on_update: Callable[[RunEvents], None] | None, events: RunEvents) -> None:
    if on_update is not None:
        on_update(events)


def _heartbeat(store: Store, stop: threading.Event) -> None:
    """Refresh this run's leases from its own connection until ``stop`` is set."""
    from losslab.study.store import connect

    conn = connect(store.path)
    try:
        while not stop.wait(HEARTBEAT_SECONDS):
            # A beat missed (disk full, a long lock) is taken again at the next one; the
            # driver meets and reports the cause itself.
            with contextlib.suppress(sqlite3.Error):
                store.heartbeat(conn)
    finally:
        conn.close()
