"""The time left of a study run, learnt from the stacks as they train.

A run's stacks can differ 100-fold in cost per model-step (a linear model next to a deep
net; a small net whose step is all dispatch overhead), so "model-steps left / model-steps
per second so far" is wrong whenever the cheap stacks run first, and the dry run's FLOP
estimate misses the overheads of small models by up to 10x. Instead each kind of stack
(the same data, model and batch: what sets the cost of a step) is timed while it trains,
and the stacks left are handed to the workers in plan order at the rate of their kind
(:func:`~losslab.study.estimate.makespan`); a kind not yet seen goes at the rate of all
the stacks seen so far.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from losslab.study.estimate import makespan


class TimeLeft:
    """Seconds left of the stacks of one run.

    Args:
        workers: stacks that train at once (worker processes; 1 in process).
        clock: seconds, monotonic (tests pass a fake one).

    Call :meth:`plan` for every stack before the run (in the order the workers take them),
    :meth:`report` with each progress report of a stack in flight, :meth:`finish` when it
    ends; :meth:`seconds` is then the time left (``inf`` before any stack has trained for
    two reports).
    """

    def __init__(self, workers: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self.workers = max(1, workers)
        self.clock = clock
        self.kind: dict[str, str] = {}
        self.total: dict[str, float] = {}  # stack -> its model-steps, in plan order
        self.first: dict[str, tuple[float, float]] = {}  # stack -> (time, model-steps)
        self.last: dict[str, tuple[float, float]] = {}
        self.learnt: dict[str, list[float]] = {}  # kind -> [model-steps, seconds] of ended

    def plan(self, stack_id: str, kind: str, model_steps: float) -> None:
        """A stack of ``model_steps`` (models x steps) to train; ``kind`` keys its cost."""
        self.kind[stack_id] = kind
        self.total[stack_id] = float(model_steps)

    def drop(self, stack_id: str) -> None:
        """A planned stack that this run will not train (another run holds its cells)."""
        self.total.pop(stack_id, None)
        self.first.pop(stack_id, None)
        self.last.pop(stack_id, None)

    def report(self, stack_id: str, model_steps_done: float) -> None:
        """A progress report: the stack has trained ``model_steps_done`` model-steps."""
        if stack_id not in self.total:
            return
        now = self.clock()
        self.first.setdefault(stack_id, (now, model_steps_done))
        self.last[stack_id] = (now, model_steps_done)

    def finish(self, stack_id: str) -> None:
        """The stack ended: what it showed goes into its kind's rate."""
        span = self._span(stack_id, ended=True)
        if span is not None:
            learnt = self.learnt.setdefault(self.kind[stack_id], [0.0, 0.0])
            learnt[0] += span[0]
            learnt[1] += span[1]
        self.drop(stack_id)

    def _span(self, stack_id: str, ended: bool = False) -> tuple[float, float] | None:
        """(model-steps, seconds) the stack trained between its first report and its last
        (or now, when it ended: the steps after the last report count too)."""
        if stack_id not in self.first:
            return None
        t0, done0 = self.first[stack_id]
        t1, done1 = (self.clock(), self.total[stack_id]) if ended else self.last[stack_id]
        if t1 <= t0 or done1 <= done0:
            return None
        return done1 - done0, t1 - t0

    def rates(self) -> dict[str, float]:
        """Model-steps per second of one stack of each kind seen so far; key ``""``: all
        kinds together (for the kinds not seen yet)."""
        seen = {k: list(v) for k, v in self.learnt.items()}
        for stack_id in self.last:
            span = self._span(stack_id)
            if span is not None:
                sums = seen.setdefault(self.kind[stack_id], [0.0, 0.0])
                sums[0] += span[0]
                sums[1] += span[1]
        out = {k: steps / seconds for k, (steps, seconds) in seen.items() if seconds > 0}
        everything = [sum(v[0] for v in seen.values()), sum(v[1] for v in seen.values())]
        if everything[1] > 0:
            out[""] = everything[0] / everything[1]
        return out

    def seconds(self) -> float:
        """Seconds until every planned stack has ended; ``inf`` while no rate is known."""
        rates = self.rates()
        if "" not in rates:
            return math.inf
        running: list[float] = []
        waiting: list[float] = []
        for stack_id, total in self.total.items():
            done = self.last.get(stack_id, (0.0, 0.0))[1]
            rate = rates.get(self.kind[stack_id], rates[""])
            queue = running if stack_id in self.last else waiting
            queue.append(max(total - done, 0.0) / rate)
        # The stacks in flight hold their workers; the others queue behind them.
        return makespan(running + waiting, max(self.workers, len(running)))
