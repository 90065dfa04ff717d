"""How a study uses the machine: executor, worker processes, torch threads and stack sizes.

Measured on a 2-core machine (benchmarks/threads.py): two OpenMP threads per process cost
5-10x when other programs keep the cores busy (threads spin waiting for each other), while
one thread per process never does. So on CPU every worker trains with ONE thread and
passive OpenMP waiting, and a study uses the cores with worker *processes*, one per core,
when the plan is long enough to pay for starting them. Stacks are then cut so that the
workers finish together (a makespan over the estimated stack times,
:mod:`losslab.study.estimate`): three stacks on two workers leave one worker idle for a
third of the run, six half-size stacks do not. ``--executor``, ``--jobs`` and ``--threads``
override each choice (a named executor keeps the planned stacks); the choice and its reason
are recorded in the run's environment.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from losslab.errors import LosslabError
from losslab.study.plan import Plan, restack

if TYPE_CHECKING:
    from losslab.study.executors import DataCache

# Starting a worker process (interpreter, torch, the dataset) costs about this, in seconds.
SPAWN_SECONDS = 5.0
# Below this estimated in-process time, worker processes are not worth starting.
MIN_PARALLEL_SECONDS = 20.0
# Process workers must beat in-process by this factor to be chosen.
PARALLEL_GAIN = 1.25
# A stack is split into at most this many parts to balance the workers.
MAX_SPLIT = 4


@dataclass(frozen=True)
class Parallelism:
    """What a run uses: ``executor`` (inprocess, process, ray), ``jobs`` workers (None: all
    of a Ray cluster), ``threads`` torch threads per worker (None: torch's default, on
    CUDA), ``max_stack`` models per stack, and ``why`` in words."""

    executor: str
    jobs: int | None
    threads: int | None
    max_stack: int
    why: str

    def as_dict(self) -> dict[str, object]:
        """The record stored in the run's environment."""
        return asdict(self)


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _costs(plan: Plan, seconds_of: Callable[[Plan], list[float]]) -> list[tuple[int, float, float]]:
    """Per group (cells, a, b): a stack of m of its models takes about ``a + b * m`` s."""
    one = restack(plan, 1)
    two = restack(plan, 2)
    t1 = seconds_of(one)
    t2 = seconds_of(two)
    out: dict[str, list[float]] = {}
    for group, seconds in zip(one.groups, t1, strict=True):
        out.setdefault(group.cells[0].group_id, [0, seconds, 0.0])[0] += 1
    seen: set[str] = set()
    for group, seconds in zip(two.groups, t2, strict=True):
        key = group.cells[0].group_id
        if key in seen or len(group.cells) != 2:
            continue
        seen.add(key)
        out[key][2] = seconds - out[key][1]
    result = []
    for cells, a_plus_b, b in out.values():
        result.append((int(cells), a_plus_b - b, b))
    return result


def _stack_times(costs: list[tuple[int, float, float]], size: int) -> list[float]:
    times = []
    for cells, a, b in costs:
        parts = math.ceil(cells / size)
        per = math.ceil(cells / parts)
        left = cells
        for _ in range(parts):
            m = min(per, left)
            left -= m
            times.append(a + b * m)
    return times


def best_stack_size(plan: Plan, seconds_of: Callable[[Plan], list[float]], workers: int,
                    max_stack: int) -> tuple[int, float]:
    """The ``max_stack`` (at most the given one) whose stacks finish soonest on ``workers``
    workers, and that makespan in seconds; ties go to the larger stacks."""
    from losslab.study.estimate import makespan

    costs = _costs(plan, seconds_of)
    sizes = {min(max_stack, math.ceil(cells / k)) for cells, _, _ in costs
             for k in range(1, MAX_SPLIT * max(1, workers) + 1)}
    sizes = {s for s in sizes if s >= 1}
    best = (max_stack, makespan(_stack_times(costs, max_stack), workers))
    for size in sorted(sizes, reverse=True):
        span = makespan(_stack_times(costs, size), workers)
        if span < best[1] * (1 - 1e-9):
            best = (size, span)
    return best


def choose(plan: Plan, seconds_of: Callable[[Plan, int], list[float]], *, executor: str,
           jobs: int | None, threads: int | None, device_type: str,
           max_stack: int) -> Parallelism:
    """The parallelism of a run of ``plan``.

    Args:
        plan: the expanded study.
        seconds_of: (plan, threads) -> estimated seconds per stack (one worker).
        executor: ``auto``, ``inprocess``, ``process`` or ``ray``.
        jobs, threads: the user's ``--jobs`` / ``--threads``, None to choose.
        device_type: ``cpu`` or ``cuda``.
        max_stack: the user's cap on models per stack.
    """
    if executor not in ("auto", "inprocess", "process", "ray"):
        raise LosslabError(f"unknown executor {executor!r}; choose one of auto, inprocess, "
                           "process, ray")
    for name, value in (("jobs", jobs), ("threads", threads)):
        if value is not None and value < 1:
            raise LosslabError(f"--{name} must be at least 1, got {value}")
    if device_type != "cpu":
        chosen = "inprocess" if executor == "auto" else executor
        return Parallelism(chosen, jobs or 1, threads, max_stack,
                           f"device {device_type}: the accelerator does the work")
    threads = threads or 1
    single = "one torch thread per worker (never slowed by other programs' load)"
    if executor == "inprocess" or (executor == "auto" and jobs == 1):
        return Parallelism("inprocess", 1, threads, max_stack,
                           "asked for one worker" if executor == "auto" else
                           "asked for in-process")

    def estimate(p: Plan) -> list[float]:
        # A stack that cannot be estimated (its model cannot be built) fails at once.
        return [s if math.isfinite(s) else 0.0 for s in seconds_of(p, threads)]

    workers = jobs or usable_cores()
    if executor in ("process", "ray"):
        # Asked for by name: the stacks stay as planned (a Ray cluster's size is not this
        # machine's, and a named executor stores the same stacks as in-process).
        return Parallelism(executor, workers if executor == "process" else jobs, threads,
                           max_stack, f"asked for {executor}; {single}")
    serial = sum(estimate(plan))
    if workers == 1 or serial < MIN_PARALLEL_SECONDS:
        reason = ("one usable core" if workers == 1 else
                  f"~{serial:.0f} s in-process: too short to start worker processes")
        return Parallelism("inprocess", 1, threads, max_stack, f"{reason}; {single}")
    size, span = best_stack_size(plan, estimate, workers, max_stack)
    if span + SPAWN_SECONDS > serial / PARALLEL_GAIN:
        return Parallelism("inprocess", 1, threads, max_stack,
                           f"{workers} worker processes would not be faster; {single}")
    stacks = len(restack(plan, size).groups)
    workers = min(workers, stacks)
    return Parallelism("process", workers, threads, size,
                       f"{stacks} stacks of at most {size} models on {workers} worker "
                       f"processes, one per usable core; {single}")


def for_plan(plan: Plan, cache: DataCache, *, executor: str, jobs: int | None,
             threads: int | None, device: str, max_stack: int) -> Parallelism:
    """:func:`choose` with the estimates of :func:`~losslab.study.estimate.estimate_seconds`
    (``cache``: the plan's :class:`~losslab.study.executors.DataCache`; nothing is loaded)."""
    from losslab.study.estimate import estimate_seconds
    from losslab.train import resolve_device

    def seconds_of(p: Plan, n: int) -> list[float]:
        return estimate_seconds(p, cache, device, threads=n)

    return choose(plan, seconds_of, executor=executor, jobs=jobs, threads=threads,
                  device_type=resolve_device(device).type, max_stack=max_stack)
