"""The time left of a study run: each kind of stack at the rate it has shown."""

from __future__ import annotations

import math

from losslab.study.timeleft import TimeLeft


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_nothing_is_known_before_a_stack_has_trained_between_two_reports():
    clock = Clock()
    left = TimeLeft(2, clock)
    left.plan("a-0", "cheap", 1000)
    assert left.seconds() == math.inf
    left.report("a-0", 100)
    assert left.seconds() == math.inf  # one report gives no rate


def test_cheap_stacks_first_do_not_make_the_expensive_ones_look_cheap():
    # Two kinds, 10 model-steps/s and 100 model-steps/s per stack, two workers; the
    # cheap stacks run first, as in a study whose linear models come first.
    clock = Clock()
    left = TimeLeft(2, clock)
    for i in range(2):
        left.plan(f"cheap-{i}", "cheap", 1000)
    for i in range(2):
        left.plan(f"dear-{i}", "dear", 1000)
    for i in range(2):
        left.report(f"cheap-{i}", 0)
    clock.now = 5.0
    for i in range(2):
        left.report(f"cheap-{i}", 500)
    # Only the cheap kind is known: the dear stacks are costed at its rate (100/s):
    # 5 s left of each cheap stack, then 10 s of each dear one, two at a time.
    assert left.seconds() == 5.0 + 10.0
    clock.now = 10.0
    for i in range(2):
        left.finish(f"cheap-{i}")
        left.report(f"dear-{i}", 0)
    clock.now = 20.0
    for i in range(2):
        left.report(f"dear-{i}", 100)
    # Now the dear kind shows 10/s: 900 model-steps left of each, side by side.
    assert left.seconds() == 90.0


def test_stacks_queue_behind_the_workers_in_plan_order():
    clock = Clock()
    left = TimeLeft(2, clock)
    for i in range(3):
        left.plan(f"s-{i}", "k", 100)
    left.report("s-0", 0)
    clock.now = 1.0
    left.report("s-0", 10)  # 10 model-steps/s
    # s-0: 9 s on one worker; s-1 10 s on the other; s-2 after s-0: 9 + 10.
    assert left.seconds() == 19.0
    left.drop("s-2")  # held by another run
    assert left.seconds() == 10.0


def test_a_finished_stack_teaches_its_kind_with_the_steps_after_its_last_report():
    clock = Clock()
    left = TimeLeft(1, clock)
    left.plan("k-0", "k", 100)
    left.plan("k-1", "k", 100)
    left.report("k-0", 0)
    clock.now = 2.0
    left.report("k-0", 20)  # 10/s so far
    clock.now = 20.0
    left.finish("k-0")  # 100 model-steps in 20 s: 5/s with the tail
    assert left.rates()["k"] == 5.0
    assert left.seconds() == 20.0
    left.finish("k-1")  # ended without a report: teaches nothing, leaves nothing
    assert left.seconds() == 0.0
