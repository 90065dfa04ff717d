"""What a long command shows while it runs and how it stops: one toolkit for every verb.

``losslab train``, ``losslab run``, the report and the reproduction document all use it,
so a duration, an ETA, a progress line and a Ctrl-C read the same everywhere.

* :func:`duration`: ``95.2`` -> ``"1 min 35 s"``.
* :func:`rough_duration`: an estimate at the precision it has: ``1260`` -> ``"21 min"``.
* :func:`seconds_left`: the time left of a run from its work done so far (the ETA).
* :func:`progress_seconds`: how often a plain progress line is printed
  (``$LOSSLAB_PROGRESS_SECONDS``, default 15).
* :class:`Progress`: a rich bar on a terminal that moves with every update; off a terminal
  (logs, CI, nohup) a plain line at once on the first and on each ``now=True`` update and
  every :func:`progress_seconds` in between, even when no update arrives; nothing when
  quiet.
* :func:`interruptible`: the first Ctrl-C (SIGINT) sets a ``threading.Event`` that the
  work reads between units (a training step), so it stops cleanly and keeps what was done;
  a second Ctrl-C aborts at once. The previous handler is restored on exit.

It imports nothing of losslab but :mod:`losslab.errors`, so any package may use it
without reaching up the data flow.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Literal, TextIO

from losslab.errors import LosslabError

if TYPE_CHECKING:
    from rich.progress import Progress as Bar
    from rich.progress import TaskID

Mode = Literal["auto", "bar", "lines", "quiet"]


def duration(seconds: float) -> str:
    """A duration as a person reads it: ``0.42`` -> ``"0.4 s"``, ``95`` -> ``"1 min 35 s"``,
    ``4000`` -> ``"1 h 07 min"``; ``"?"`` when unknown (NaN, infinite or negative)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 0.95:
        # Tiny cells of a study run in a fraction of a second; "0 s" would hide them.
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def rough_duration(seconds: float) -> str:
    """An estimate at the precision it has: ``40 s``, ``21 min``, ``3.5 h``, ``1,027 h``;
    ``"?"`` when unknown (NaN, infinite or negative)."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 10 else f"{round(hours):,} h"


def seconds_left(done: float, total: float, elapsed: float) -> float:
    """Seconds left if the remaining ``total - done`` units go at the rate so far.

    Args:
        done: units finished (steps, model-steps); ``total``: units of the whole run.
        elapsed: seconds spent on ``done``.

    Returns ``inf`` before any unit is done (no rate yet): :func:`duration` shows ``"?"``.
    """
    if done <= 0 or elapsed <= 0:
        return math.inf
    return elapsed / done * max(total - done, 0.0)


def progress_seconds() -> float:
    """Seconds between plain progress lines: ``$LOSSLAB_PROGRESS_SECONDS``, default 15."""
    text = os.environ.get("LOSSLAB_PROGRESS_SECONDS", "15")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise LosslabError(
            f"LOSSLAB_PROGRESS_SECONDS must be a positive number of seconds, got {text!r}; "
            "set it to e.g. 15 or unset it"
        )
    return value


class Progress:
    """The progress display of a long command.

    Args:
        description: the bar's label (e.g. the study's name, ``"training"``).
        fields: names of the text fields shown after the bar, in order; each
            :meth:`update` passes them all.
        mode: ``"bar"`` (rich), ``"lines"`` (plain lines), ``"quiet"`` (nothing);
            ``"auto"`` (default) picks bar or lines from ``stream.isatty()``.
        stream: where it writes (default ``sys.stderr``).
        counts: show ``done/total`` beside the bar.
        interval: seconds between plain lines (default :func:`progress_seconds`).

    Use it as a context manager; off a terminal it runs a timer thread that it stops on
    exit. :meth:`update` and :meth:`message` may be called from any thread.
    """

    def __init__(self, description: str, fields: Sequence[str] = (), *, mode: Mode = "auto",
                 stream: TextIO | None = None, counts: bool = False,
                 interval: float | None = None) -> None:
        self.stream: TextIO = stream if stream is not None else sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode: Mode = mode
        self.description = description
        self.fields = tuple(fields)
        self.counts = counts
        self.interval = progress_seconds() if interval is None and mode == "lines" else (
            interval or 0.0)
        self._bar: Bar | None = None
        self._task: TaskID | None = None
        self._line: str | None = None
        self._printed = False
        self._lock = threading.Lock()
        self._finished = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.mode == "bar":
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                ProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar

            columns: list[ProgressColumn] = [TextColumn("[bold]{task.description}"),
                                             BarColumn()]
            if self.counts:
                columns.append(MofNCompleteColumn())
            columns += [TextColumn(f"{{task.fields[{f}]}}") for f in self.fields]
            columns += [TextColumn("ETA"), TimeRemainingColumn()]
            bar = Bar(*columns, console=Console(file=self.stream))
            bar.start()
            # Any: rich's keyword arguments are typed as its own; these are its task fields.
            blank: dict[str, Any] = dict.fromkeys(self.fields, "")
            self._task = bar.add_task(self.description, total=None, **blank)
            self._bar = bar
        elif self.mode == "lines":
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._finished.set()
        if self._ticker is not None:
            self._ticker.join()
        if self._bar is not None:
            self._bar.stop()

    def _tick(self) -> None:
        # A line every interval even when no update arrives (a long evaluation, a stack
        # still loading its data), so a log never goes silent.
        while not self._finished.wait(self.interval):
            with self._lock:
                if self._line is not None:
                    self._print(self._line)

    def _print(self, text: str) -> None:
        # Plain print, not rich: off a terminal rich wraps at 80 columns.
        print(text, file=self.stream, flush=True)

    def update(self, done: float, total: float, line: str, *, now: bool = False,
               **fields: str) -> None:
        """Move the bar to ``done`` of ``total``, or set the plain line to ``line``.

        Args:
            done, total: units finished and of the whole run (the bar's position and ETA).
            line: the whole plain line (off a terminal).
            now: print the plain line at once (a unit of note finished, the last step),
                not only at the next interval; the first update always prints.
            fields: the text of every field named at construction (on a terminal).
        """
        if self.mode == "quiet":
            return
        with self._lock:
            if self._bar is not None and self._task is not None:
                texts: dict[str, Any] = fields
                self._bar.update(self._task, total=max(total, 1), completed=done, **texts)
                return
            self._line = line
            if now or not self._printed:
                self._print(line)
                self._printed = True

    def message(self, text: str) -> None:
        """Print ``text`` once, above the bar on a terminal; nothing when quiet."""
        if self.mode == "quiet":
            return
        with self._lock:
            if self._bar is not None:
                self._bar.console.print(text)
            else:
                self._print(text)


@contextlib.contextmanager
def interruptible(keeps: str = "the result so far", unit: str = "step",
                  stream: TextIO | None = None) -> Iterator[threading.Event]:
    """Ctrl-C once: set the yielded event (the work stops after this ``unit`` and keeps
    ``keeps``); Ctrl-C twice: ``KeyboardInterrupt`` at once.

    Must be entered in the main thread (Python delivers signals there). The previous
    SIGINT handler is restored on exit.
    """
    out = stream if stream is not None else sys.stderr
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(f"\ninterrupted: stopping after this {unit} and keeping {keeps} "
              "(Ctrl-C again to abort)", file=out, flush=True)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
