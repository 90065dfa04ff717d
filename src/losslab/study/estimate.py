"""The time a plan will take on this machine, from two short timed runs per group.

For each group (cells sharing data, architecture and schedule) its largest stack is trained
for ``a`` and ``b`` steps; the difference gives the time of one step of that stack and the
rest the cost of set-up plus one evaluation. A stack of S steps with E evaluations is then
estimated at ``S * step + E * evaluation``, scaled by its size relative to the timed stack.
"""

from __future__ import annotations

import copy
import math
import time

from losslab.study.executors import DataCache, make_task, train_task
from losslab.study.plan import Plan


def estimate_seconds(plan: Plan, cache: DataCache, device: str, a: int = 2,
                     b: int = 6) -> list[float]:
    """Estimated seconds of every stack of ``plan`` (in-process, this machine).

    Args:
        plan: the expanded study.
        cache: its datasets.
        device: where it would run.
        a, b: the step counts of the two timed runs (a < b).

    Returns:
        One estimate per ``plan.groups`` entry.
    """
    from losslab.train import resolve_device

    device = str(resolve_device(device))
    timed: dict[str, tuple[float, float, int]] = {}
    for group in plan.groups:
        key = group.stack_id.rsplit("-", 1)[0]
        if key in timed and len(group.cells) <= timed[key][2]:
            continue
        task = make_task(group, [c.cell_id for c in group.cells], device, [])
        seconds = []
        for steps in (a, b):
            trial = copy.deepcopy(task)
            trial["train"].update(steps=steps, eval_every=steps, patience=None)
            start = time.perf_counter()
            train_task(trial, cache)
            seconds.append(time.perf_counter() - start)
        step = max(seconds[1] - seconds[0], 0.0) / (b - a)
        timed[key] = (step, max(seconds[0] - a * step, 0.0), len(group.cells))
    out = []
    for group in plan.groups:
        step, evaluation, size = timed[group.stack_id.rsplit("-", 1)[0]]
        train = group.config["train"]
        evaluations = math.ceil(train["steps"] / train["eval_every"])
        out.append((train["steps"] * step + evaluations * evaluation) * len(group.cells) / size)
    return out
