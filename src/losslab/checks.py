"""Validation of user arguments, shared by every losslab package (never imports torch/numpy).

Each helper returns the value in its canonical Python type or raises
:class:`~losslab.errors.LosslabError` with a message that names the argument, the bad
value and what is allowed::

    check_int("batch_size", 0, minimum=1)     # batch_size must be an integer >= 1, got 0
    check_real("lr", -1.0, low=0.0, low_open=True)
        # lr must be finite and > 0, i.e. lie in (0, inf); got -1.0
    check_choice("optimizer", "ADAM", ("sgd", "adam"), normalise=True)   # 'adam'

Integers are :class:`numbers.Integral` and reals :class:`numbers.Real` (so NumPy scalars
pass); ``bool`` is refused by both.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, overload

from losslab.errors import LosslabError

__all__ = ["check_choice", "check_int", "check_real", "check_seed_list"]


@overload
def check_int(
    name: str, value: Any, minimum: int | None = None, *, allow_none: Literal[False] = False
) -> int: ...


@overload
def check_int(
    name: str, value: Any, minimum: int | None = None, *, allow_none: bool
) -> int | None: ...


def check_int(
    name: str, value: Any, minimum: int | None = None, *, allow_none: bool = False
) -> int | None:
    """``value`` as an ``int`` (>= ``minimum`` when given); ``None`` passes if ``allow_none``."""
    if value is None and allow_none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or (minimum is not None and value < minimum)
    ):
        bound = f" >= {minimum}" if minimum is not None else ""
        extra = " (or None)" if allow_none else ""
        raise LosslabError(f"{name} must be an integer{bound}{extra}, got {value!r}")
    return int(value)


def _interval(low: float, high: float, low_open: bool, high_open: bool, allow_inf: bool) -> str:
    left = "(" if low_open or low == -math.inf else "["
    right = "]" if (high == math.inf and allow_inf) or (high < math.inf and not high_open) else ")"
    return f"{left}{low:g}, {high:g}{right}"


def check_real(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allow_inf: bool = False,
) -> float:
    """``value`` as a ``float`` inside the interval from ``low`` to ``high``.

    Args:
        name: how the message names the argument, e.g. ``"lr"`` or ``"q (gce loss)"``.
        value: a real number (``numbers.Real``, not ``bool``). NaN is always refused.
        low, high: the bounds; ``low_open`` / ``high_open`` exclude them.
        allow_inf: accept ``+inf`` (only where ``high`` is ``inf``); otherwise the value
            must be finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise LosslabError(f"{name} must be a real number, got {value!r}")
    x = float(value)
    bad = (
        math.isnan(x)
        or (math.isinf(x) and not (allow_inf and x > 0))
        or x < low
        or x > high
        or (low_open and x == low)
        or (high_open and x == high)
    )
    if bad:
        rules = [] if allow_inf else ["finite"]
        if low > -math.inf:
            rules.append(f"> {low:g}" if low_open else f">= {low:g}")
        if high < math.inf:
            rules.append(f"< {high:g}" if high_open else f"<= {high:g}")
        interval = _interval(low, high, low_open, high_open, allow_inf)
        raise LosslabError(
            f"{name} must be {' and '.join(rules)}, i.e. lie in {interval}; got {value!r}"
            if rules
            else f"{name} must lie in {interval}; got {value!r}"
        )
    return x


def check_choice(name: str, value: Any, choices: Sequence[str], *, normalise: bool = False) -> str:
    """``value`` if it is one of ``choices``, else a LosslabError listing them.

    With ``normalise``, a string is first stripped, lower-cased and has ``-`` replaced by
    ``_`` (``" Inverse-Time"`` -> ``"inverse_time"``), and the normalised form is returned.
    """
    key = value
    if normalise and isinstance(value, str):
        key = value.strip().lower().replace("-", "_")
    if not isinstance(key, str) or key not in choices:
        raise LosslabError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return key


def check_seed_list(what: str, seeds: list[int], example: str) -> list[int]:
    """``seeds`` if it holds at least one seed and they are distinct integers >= 0.

    Args:
        what: how the message names one seed, e.g. ``"tuning seed"``.
        seeds: the list of a study file (its items are already integers).
        example: a valid list shown when it is empty, e.g. ``"[0, 1, 2]"``.
    """
    if not seeds:
        raise LosslabError(f"give at least one {what}, e.g. seeds = {example}")
    if min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise LosslabError(f"{what}s must be distinct integers >= 0")
    return seeds
