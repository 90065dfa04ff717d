"""The time a plan will take on this machine, from three short timed runs per group.

For each group (cells sharing data, architecture and schedule) its largest stack is trained
for ``a`` steps with one evaluation, ``b`` steps with one evaluation and ``b`` steps with
two: the differences give the time of one step and of one evaluation, the rest is set-up.
A stack of S steps with E evaluations is estimated at ``setup + S * step + E * evaluation``,
the step and evaluation parts scaled by its size relative to the timed stack.
"""

from __future__ import annotations

import copy
import math
import time

from losslab.study.executors import DataCache, make_task, train_task
from losslab.study.plan import Plan


def estimate_seconds(plan: Plan, cache: DataCache, device: str, a: int = 2,
                     b: int = 8) -> list[float]:
    """Estimated seconds of every stack of ``plan`` (in-process, this machine).

    Args:
        plan: the expanded study.
        cache: its datasets.
        device: where it would run.
        a, b: the step counts of the timed runs (a < b, b even).

    Returns:
        One estimate per ``plan.groups`` entry (timings on a busy machine are noisy).
    """
    from losslab.train import resolve_device

    device = str(resolve_device(device))
    timed: dict[str, tuple[float, float, float, int]] = {}
    for group in plan.groups:
        key = group.stack_id.rsplit("-", 1)[0]
        if key in timed and len(group.cells) <= timed[key][3]:
            continue
        task = make_task(group, [c.cell_id for c in group.cells], device, [])
        seconds = []
        for steps, every in ((a, a), (b, b), (b, b // 2)):
            trial = copy.deepcopy(task)
            trial["train"].update(steps=steps, eval_every=every, patience=None)
            start = time.perf_counter()
            train_task(trial, cache)
            seconds.append(time.perf_counter() - start)
        step = max(seconds[1] - seconds[0], 0.0) / (b - a)
        evaluation = max(seconds[2] - seconds[1], 0.0)
        setup = max(seconds[0] - a * step - evaluation, 0.0)
        timed[key] = (setup, step, evaluation, len(group.cells))
    out = []
    for group in plan.groups:
        setup, step, evaluation, size = timed[group.stack_id.rsplit("-", 1)[0]]
        train = group.config["train"]
        evaluations = math.ceil(train["steps"] / train["eval_every"])
        work = train["steps"] * step + evaluations * evaluation
        out.append(setup + work * len(group.cells) / size)
    return out
