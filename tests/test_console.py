"""The console toolkit every verb shares: durations, ETA, progress display, Ctrl-C."""

import io
import math
import signal
import time

import pytest

from losslab.console import Progress, duration, interruptible, rough_duration, seconds_left


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.42, "0.4 s"),  # a fraction of a second stays visible
        (1.0, "1 s"),
        (59.4, "59 s"),
        (95.2, "1 min 35 s"),
        (3599.0, "59 min 59 s"),
        (4000.0, "1 h 06 min"),  # 4000 s = 1 h 6 min 40 s: past an hour the seconds drop
        (math.inf, "?"),
        (math.nan, "?"),
        (-1.0, "?"),
    ],
)
def test_duration_reads_as_a_person_would_say_it(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.3, "1 s"),  # an estimate never says 0
        (40.4, "40 s"),
        (1260.0, "21 min"),
        (5400.0, "1.5 h"),  # 90 min: past the minutes
        (3_697_200.0, "1,027 h"),
        (math.inf, "?"),
    ],
)
def test_an_estimate_reads_at_the_precision_it_has(seconds, text):
    assert rough_duration(seconds) == text


def test_seconds_left_goes_at_the_rate_so_far():
    # 5 of 20 units in 10 s: 2 s a unit, 15 units left. All operands are small integers,
    # exact in float64, and the quotient 2.0 is exact: the answer is exact.
    assert seconds_left(5, 20, 10.0) == 30.0
    assert seconds_left(0, 20, 10.0) == math.inf  # no rate yet
    assert seconds_left(20, 20, 10.0) == 0.0


def _fake_tty() -> io.StringIO:
    stream = io.StringIO()
    stream.isatty = lambda: True  # type: ignore[method-assign]
    return stream


def test_auto_mode_picks_a_bar_on_a_terminal_and_lines_elsewhere():
    assert Progress("x", mode="auto", stream=_fake_tty()).mode == "bar"
    assert Progress("x", mode="auto", stream=io.StringIO(), interval=1.0).mode == "lines"


def test_lines_print_at_once_when_asked_and_every_interval_in_between():
    stream = io.StringIO()
    with Progress("x", mode="lines", stream=stream, interval=0.05) as progress:
        progress.update(1, 10, "first")  # the first update prints at once
        progress.update(2, 10, "second")  # waits for the timer
        time.sleep(0.5)  # ten intervals: the timer prints "second" several times
        progress.update(10, 10, "last", now=True)
        progress.message("a note")
    lines = stream.getvalue().splitlines()
    assert lines[0] == "first"
    assert lines.count("second") >= 2
    assert lines[-2:] == ["last", "a note"]


def test_quiet_prints_nothing():
    stream = io.StringIO()
    with Progress("x", ("f",), mode="quiet", stream=stream) as progress:
        progress.update(1, 2, "line", now=True, f="field")
        progress.message("note")
    assert stream.getvalue() == ""


def test_the_bar_moves_with_the_updates_and_shows_its_fields():
    stream = _fake_tty()
    with Progress("study", ("cells",), mode="bar", stream=stream, counts=True) as progress:
        progress.update(3, 8, "unused off a terminal", cells="1/2 cells")
        task = progress._bar.tasks[0]
        assert (task.completed, task.total) == (3, 8)
        progress.message("a note")
    text = stream.getvalue()
    assert "study" in text and "1/2 cells" in text and "3/8" in text and "a note" in text


def test_interruptible_sets_the_event_and_restores_the_previous_handler():
    def previous(signum, frame):
        raise AssertionError("the previous handler must not run inside the block")

    old = signal.signal(signal.SIGINT, previous)
    try:
        stream = io.StringIO()
        with interruptible("the cells stored so far", stream=stream) as stop:
            assert not stop.is_set()
            signal.raise_signal(signal.SIGINT)
            assert stop.is_set()
            assert "keeping the cells stored so far" in stream.getvalue()
            with pytest.raises(KeyboardInterrupt):
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is previous
    finally:
        signal.signal(signal.SIGINT, old)
