"""``losslab train``'s view of a run, on the shared toolkit of :mod:`losslab.console`.

* :class:`ProgressDisplay`: the ``progress=`` callable of :func:`~losslab.train.train`,
  shown by :class:`losslab.console.Progress` (steps, loss and accuracy at the last
  evaluation, time left).
* :func:`estimate_seconds`: a rough duration of a run before it starts, from its FLOPs
  (6 x parameters x batch per step: forward 2, backward 4) at the speed of a matmul
  measured on this machine.
"""

from __future__ import annotations

import time
from typing import Any, TextIO

import torch

from losslab.console import Mode, Progress, duration, seconds_left


def _metrics(info: dict[str, Any]) -> str:
    last = info.get("last_eval") or {}
    if not last:
        return "loss -  accuracy -"
    loss = last.get("train_loss", float("nan"))
    if loss != loss:
        loss = last.get("train_batch_loss", float("nan"))
    acc = last.get("test_accuracy", float("nan"))
    if acc != acc:
        acc = last.get("dev_accuracy", float("nan"))
    return f"loss {loss:.4f}  accuracy {acc:.4f}"


class ProgressDisplay:
    """The ``progress`` callable of a command-line run.

    Args:
        mode: as :class:`losslab.console.Progress` (``"auto"``, ``"bar"``, ``"lines"``,
            ``"quiet"``).
        stream: where it writes (default ``sys.stderr``).
    """

    def __init__(self, mode: Mode = "auto", stream: TextIO | None = None) -> None:
        self.progress = Progress("training", ("metrics",), mode=mode, stream=stream,
                                 counts=True)
        self.mode = self.progress.mode

    def __enter__(self) -> ProgressDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def __call__(self, info: dict[str, Any]) -> None:
        """Show ``info`` (``step``, ``steps``, ``last_eval``, ``elapsed``)."""
        step, steps, elapsed = info["step"], info["steps"], info["elapsed"]
        metrics = _metrics(info)
        line = (f"step {step}/{steps}  {metrics}  elapsed {duration(elapsed)}"
                f"  left ~{duration(seconds_left(step, steps, elapsed))}")
        self.progress.update(step, steps, line, now=step >= steps, metrics=metrics)


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
