"""A study's dry run: its plan as the parallelism policy stacks it, and the wall time that
plan will take on this machine (or on a given one).

Sits above :mod:`losslab.study.estimate` (the costs), :mod:`losslab.study.policy` (the
choice of workers and threads) and :mod:`losslab.study.runner` (the plan a run makes), so
that none of those imports another in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from losslab.study.estimate import estimate_seconds, makespan, plan_flops
from losslab.study.executors import DataCache
from losslab.study.plan import Plan


@dataclass(frozen=True)
class Forecast:
    """What a dry run says of a study: the ``plan`` as the chosen ``policy`` stacks it,
    each stack's estimated ``seconds`` on one worker, the ``[tune]`` stage's models and
    seconds (0 without one), the ``total`` wall time on the policy's workers, and the
    ``flops`` of every training, tuning included (:func:`plan_flops`)."""

    plan: Plan
    policy: Any
    seconds: list[float]
    tuning_models: int
    tuning_seconds: float
    total: float
    flops: float


def forecast(study: Any, cache: DataCache, *, device: str = "auto", executor: str = "auto",
             jobs: int | None = None, threads: int | None = None, max_stack: int = 64,
             rates: dict[str, float] | None = None) -> Forecast:
    """Plan ``study`` (nothing loaded), choose its parallelism as a run would
    (:func:`losslab.study.policy.choose`) and estimate its wall time.

    ``jobs`` and ``threads`` stand for ``--jobs`` / ``--threads`` (``jobs=2, threads=1``:
    a 2-core machine, whatever this one has); ``rates`` costs with given rates instead of
    this machine's (:func:`estimate_seconds`).
    """
    from losslab.study.plan import restack
    from losslab.study.policy import SPAWN_SECONDS, choose
    from losslab.study.runner import prepare
    from losslab.train import resolve_device

    kind = resolve_device(device).type
    plan = prepare(study, cache, max_stack, load=False)

    def seconds_of(p: Plan, n: int | None) -> list[float]:
        return estimate_seconds(p, cache, kind, threads=n, rates=rates)

    policy = choose(plan, seconds_of, executor=executor, jobs=jobs, threads=threads,
                    device_type=kind, max_stack=max_stack)
    plan = restack(plan, policy.max_stack)
    seconds = seconds_of(plan, policy.threads)
    workers = policy.jobs or 1
    total = (makespan(seconds, workers, SPAWN_SECONDS) if policy.executor != "inprocess"
             else sum(seconds))
    flops = plan_flops(plan, cache)
    tuning_models, tuning_seconds = 0, 0.0
    if study.spec.tune is not None:
        from losslab.study.tuning import tuning_study

        tune = study.spec.tune
        tuning = prepare(tuning_study(study), cache, policy.max_stack, load=False)
        rounds = 1 if tune.method == "grid" else tune.trials
        tuning_models = rounds * len(tuning.cells)
        tuning_seconds = rounds * makespan(seconds_of(tuning, policy.threads), workers)
        total += tuning_seconds
        flops += rounds * plan_flops(tuning, cache)
    return Forecast(plan, policy, seconds, tuning_models, tuning_seconds, total, flops)
