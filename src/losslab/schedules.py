"""Learning-rate schedules of the lecture notes (2018, section 7.3), shared by both engines.

Every schedule has ONE signature, ``schedule(lr0, epoch, decay_rate) -> lr``: the initial
rate :math:`\\alpha_0`, the number of completed epochs :math:`e = 0, 1, \\dots` and the
decay :math:`d`. The torch trainer (:class:`losslab.train.TrainConfig`) and the NumPy
engine (:func:`losslab.npnet.fit`) both call :func:`learning_rate`, so the same settings
give the same sequence of rates. Plain Python floats: no torch, no NumPy.

========================  =========================================  ===============
name                      :math:`\\alpha(e)`                           default ``d``
========================  =========================================  ===============
``"constant"``            :math:`\\alpha_0`                            (unused)
``"inverse_time"``        :math:`\\alpha_0 / (1 + d e)`                1
``"exponential"``         :math:`\\alpha_0 d^e`                        0.95 (the notes')
``"inverse_sqrt"``        :math:`\\alpha_0 d / \\sqrt{\\max(e, 1)}`      1
========================  =========================================  ===============

``inverse_sqrt`` is infinite at :math:`e = 0` as printed, so the first epoch uses
:math:`e = 1`, i.e. :math:`\\alpha_0 d`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from losslab.checks import check_int, check_real
from losslab.registry import lookup

Schedule = Callable[[float, int, float], float]


def constant(lr0: float, epoch: int, decay_rate: float) -> float:
    """:math:`\\alpha = \\alpha_0` (``epoch`` and ``decay_rate`` are ignored)."""
    return lr0


def inverse_time(lr0: float, epoch: int, decay_rate: float) -> float:
    """:math:`\\alpha = \\alpha_0 / (1 + d\\, e)`."""
    return lr0 / (1.0 + decay_rate * epoch)


def exponential(lr0: float, epoch: int, decay_rate: float) -> float:
    """:math:`\\alpha = \\alpha_0\\, d^{e}` (the notes print d = 0.95)."""
    return lr0 * decay_rate**epoch


def inverse_sqrt(lr0: float, epoch: int, decay_rate: float) -> float:
    """:math:`\\alpha = \\alpha_0\\, d / \\sqrt{\\max(e, 1)}`."""
    return lr0 * decay_rate / math.sqrt(max(epoch, 1))


#: name -> schedule; a new entry is a new schedule for both engines.
SCHEDULES: dict[str, Schedule] = {
    "constant": constant,
    "inverse_time": inverse_time,
    "exponential": exponential,
    "inverse_sqrt": inverse_sqrt,
}

#: d of each schedule when none is given.
DEFAULT_DECAY_RATE: dict[str, float] = {
    "constant": 1.0,
    "inverse_time": 1.0,
    "exponential": 0.95,
    "inverse_sqrt": 1.0,
}


def learning_rate(name: str, lr0: float, epoch: int, decay_rate: float | None = None) -> float:
    """The rate of schedule ``name`` after ``epoch`` completed epochs.

    Args:
        name: a key of :data:`SCHEDULES` (case-insensitive, ``-`` read as ``_``).
        lr0: the initial rate, > 0.
        epoch: completed epochs, >= 0.
        decay_rate: d > 0 (default ``None``: :data:`DEFAULT_DECAY_RATE` of the schedule).

    Example:
        >>> learning_rate("inverse_time", 0.2, 3, decay_rate=0.5)
        0.08
    """
    schedule = lookup(SCHEDULES, name, "learning-rate schedule")
    lr0 = check_real("lr0", lr0, 0.0, low_open=True)
    epoch = check_int("epoch", epoch, 0)
    if decay_rate is None:
        decay_rate = lookup(DEFAULT_DECAY_RATE, name, "learning-rate schedule")
    decay_rate = check_real("decay_rate", decay_rate, 0.0, low_open=True)
    return schedule(lr0, epoch, decay_rate)
