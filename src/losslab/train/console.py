"""What a long training run shows and how it stops, for the command line.

* :class:`ProgressDisplay`: a rich progress bar (steps, loss and accuracy at the last
  evaluation, time left) when stderr is a terminal, a plain line every few seconds when
  it is not (logs, CI), nothing when quiet. It is the ``progress=`` callable of
  :func:`~losslab.train.train`.
* :func:`interruptible`: the first Ctrl-C (SIGINT) sets a ``threading.Event`` that the
  trainer reads at every step boundary (``stop=``), so the run ends cleanly with the
  result so far marked interrupted; a second Ctrl-C aborts at once.
* :func:`estimate_seconds`: a rough duration of a run before it starts, from its FLOPs
  (6 x parameters x batch per step: forward 2, backward 4) at the speed of a matmul
  measured on this machine.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

# Plain (non-terminal) progress lines are printed at most this often (seconds).
PLAIN_INTERVAL = 10.0


def format_seconds(seconds: float) -> str:
    """``93`` -> ``"1.6 min"``: the unit a person reads best."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _metrics(info: dict[str, Any]) -> str:
    last = info.get("last_eval") or {}
    loss = last.get("train_loss", float("nan"))
    if loss != loss:
        loss = last.get("train_batch_loss", float("nan"))
    acc = last.get("test_accuracy", float("nan"))
    if acc != acc:
        acc = last.get("dev_accuracy", float("nan"))
    if not last:
        return "loss -  accuracy -"
    return f"loss {loss:.4f}  accuracy {acc:.4f}"


class ProgressDisplay:
    """The ``progress`` callable of a command-line run.

    Args:
        mode: ``"bar"`` (rich, for a terminal), ``"lines"`` (plain lines on ``stream``)
            or ``"quiet"`` (nothing); ``"auto"`` picks bar or lines from ``stream.isatty()``.
        stream: where it writes (default ``sys.stderr``).
    """

    def __init__(self, mode: str = "auto", stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self.stream.isatty() else "lines"
        self.mode = mode
        self._bar: Progress | None = None
        self._task: Any = None
        self._last_line = -float("inf")

    def __enter__(self) -> ProgressDisplay:
        if self.mode == "bar":
            self._bar = Progress(
                TextColumn("training"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[metrics]}"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)

    def __call__(self, info: dict[str, Any]) -> None:
        """Show ``info`` (``step``, ``steps``, ``last_eval``, ``elapsed``)."""
        if self.mode == "bar" and self._bar is not None:
            if self._task is None:
                self._task = self._bar.add_task("train", total=info["steps"], metrics="")
            self._bar.update(self._task, completed=info["step"], metrics=_metrics(info))
        elif self.mode == "lines":
            now = time.monotonic()
            if now - self._last_line < PLAIN_INTERVAL and info["step"] < info["steps"]:
                return
            self._last_line = now
            step, steps, elapsed = info["step"], info["steps"], info["elapsed"]
            left = elapsed / step * (steps - step) if step else float("nan")
            print(
                f"step {step}/{steps}  {_metrics(info)}  elapsed {format_seconds(elapsed)}"
                f"  left ~{format_seconds(left) if left == left else '?'}",
                file=self.stream,
                flush=True,
            )


@contextlib.contextmanager
def interruptible(stream: TextIO | None = None) -> Iterator[threading.Event]:
    """Ctrl-C once: set the yielded event (stop at the next step); twice: abort.

    Must be entered in the main thread (Python delivers signals there). The previous
    SIGINT handler is restored on exit.
    """
    stream = stream or sys.stderr
    stop = threading.Event()

    def handler(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print(
            "\ninterrupted: stopping after this step and keeping the result so far "
            "(Ctrl-C again to abort)",
            file=stream,
            flush=True,
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def estimate_seconds(
    parameters: int, batch_size: int, steps: int, eval_samples: int, evaluations: int
) -> float:
    """Rough seconds of a run: its FLOPs at the speed of a 512^3 matmul measured now.

    Args:
        parameters: trainable parameters of the model.
        batch_size: N; ``steps``: optimizer steps.
        eval_samples: samples of every evaluation (all splits); ``evaluations``: how many.

    Small models run far below matmul speed (per-op overheads), so a floor of 0.2 ms per
    step is added; the figure is meant to tell minutes from hours, not to be exact.
    """
    a = torch.randn(512, 512)
    a @ a
    start = time.perf_counter()
    for _ in range(3):
        a @ a
    flops = 3 * 2 * 512**3 / max(time.perf_counter() - start, 1e-9)
    work = 6 * parameters * batch_size * steps + 2 * parameters * eval_samples * evaluations
    return work / flops + 2e-4 * steps
