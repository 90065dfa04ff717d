"""The one verdict rule of REPRODUCTION.md: from an effect's 95 % interval to a word.

Every study claim (:mod:`losslab.reproduce.claims`) is measured as one or more *parts*; each
part is an effect with a 95 % interval over seeds, computed by :func:`effect_interval`:

* paired (the same seeds under both conditions, the usual design): the Student-t interval
  of the per-seed differences (:func:`losslab.metrics.stats.t_interval`, cut to the range a
  difference can take);
* unpaired: the difference of the two means with Welch's interval;
* one condition against a fixed value: the Student-t interval of its mean.

:func:`verdict` turns one part's interval into a verdict, :func:`combine` the parts of a
conjunction into the claim's. :data:`RULE` states the rule in words; REPRODUCTION.md and the
README print it from here, so the rule is written once.

Seed: the ReScience C practice of stating, for each claim, what was measured and by which
rule it is judged (Janocha & Czarnecki 2017 and Berlyand et al. 2021 compare losses over
seeds; their claims are what is judged).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from scipy import stats

from losslab.errors import LosslabError
from losslab.metrics.stats import t_interval

REPRODUCED = "reproduced"
SMALLER = "smaller than claimed"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
BY_TEST = "verified by test"
VERDICTS = (REPRODUCED, SMALLER, CONTRADICTED, INCONCLUSIVE, NOT_RUN, BY_TEST)

#: The fewest seeds a study verdict may rest on; fewer is "not run".
MIN_SEEDS = 5
CONFIDENCE = 0.95

Direction = Literal["greater", "less", "within"]

RULE = f"""\
Each study claim is measured as one or more comparisons (a claim about several losses is
their conjunction). For each comparison the effect is computed per seed and its
{CONFIDENCE:.0%} interval over the seeds is:

- **paired** (both conditions ran the same seeds, which the engine gives the same initial
  weights and batches): the Student-t interval of the per-seed differences, cut to the
  range a difference can take (±100 points for accuracies);
- **unpaired**: the difference of the two means with Welch's interval;
- **one condition against the paper's number**: the Student-t interval of its mean.

The verdict of a comparison follows from where that interval lies:

- **{REPRODUCED}**: the interval lies on the claimed side of zero and not wholly below the
  claimed size (where the paper gives one); for a "no difference" or "about X" claim, it
  lies inside the claimed range (±margin, or the paper's range);
- **{SMALLER}**: on the claimed side of zero, but wholly below the claimed size;
- **{CONTRADICTED}**: on the other side of zero; or containing zero but wholly below the
  claimed size; for a range claim, wholly outside the range;
- **{INCONCLUSIVE}**: none of these (it contains zero, and the claimed size if any; or it
  straddles an end of the range);
- **{NOT_RUN}**: no committed results, or fewer than {MIN_SEEDS} seeds;
- **{BY_TEST}**: a theorem or identity, checked by the named tests of the test suite (the
  check fails when one of them is gone).

A conjunction is {REPRODUCED} when every part is; {NOT_RUN} when any part is;
otherwise {CONTRADICTED} when any part is, else {INCONCLUSIVE} when any part is, else
{SMALLER}. Sizes, margins and ranges are in the unit shown: percentage points for
accuracies. A claim measured on a stand-in dataset (Fashion-MNIST where the paper used
MNIST) keeps its verdict and says so in its row.
"""


def verdict(low: float, high: float, n: int, direction: Direction,
            size: float | None = None,
            target: tuple[float, float] | None = None) -> str:
    """The verdict of one comparison from its interval ``[low, high]`` over ``n`` seeds.

    Args:
        low, high: the effect's interval (low <= high), in the claim's unit.
        n: seeds behind the interval (pairs for a paired effect).
        direction: ``"greater"`` (the claim: effect > 0), ``"less"`` (effect < 0), or
            ``"within"`` (the claim: the effect lies inside ``target``).
        size: the claimed size, > 0, in the claimed direction (optional; directional only).
        target: ``(a, b)`` with a < b, either end may be infinite (``"within"`` only).

    Returns:
        One of :data:`VERDICTS` but :data:`BY_TEST`.
    """
    if direction not in ("greater", "less", "within"):
        raise LosslabError(f"direction must be greater, less or within, got {direction!r}")
    if n < MIN_SEEDS or not (math.isfinite(low) and math.isfinite(high)):
        return NOT_RUN
    if low > high:
        raise LosslabError(f"interval [{low}, {high}] has low > high")
    if direction == "within":
        if target is None or not target[0] < target[1]:
            raise LosslabError(f"a 'within' comparison needs target = [a, b] with a < b, "
                               f"got {target!r}")
        a, b = target
        if a <= low and high <= b:
            return REPRODUCED
        if high < a or low > b:
            return CONTRADICTED
        return INCONCLUSIVE
    if target is not None:
        raise LosslabError("target belongs to 'within' comparisons; give size instead")
    if size is not None and not size > 0:
        raise LosslabError(f"size must be > 0 (its sign is the direction), got {size!r}")
    # Orient so that the claimed side is positive.
    lo, hi = (low, high) if direction == "greater" else (-high, -low)
    below_size = size is not None and hi < size
    if lo > 0:
        return SMALLER if below_size else REPRODUCED
    if hi < 0:
        return CONTRADICTED
    return CONTRADICTED if below_size else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """The verdict of a conjunction of comparisons (see :data:`RULE`)."""
    if not verdicts:
        raise LosslabError("a claim needs at least one comparison")
    unknown = [v for v in verdicts if v not in VERDICTS or v == BY_TEST]
    if unknown:
        raise LosslabError(f"not a comparison verdict: {unknown[0]!r}")
    for word in (NOT_RUN, CONTRADICTED, INCONCLUSIVE, SMALLER):
        if word in verdicts:
            return word
    return REPRODUCED


def effect_interval(treatment: Sequence[float], control: Sequence[float] | None = None,
                    paired: bool = True, bounds: tuple[float, float] | None = None,
                    confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """The effect, its interval and its n.

    Args:
        treatment: (n,) per-seed values of the claimed condition.
        control: (n,) per-seed values of the condition it is compared with, aligned with
            ``treatment`` by seed when ``paired``; None for a one-condition effect (the
            mean of ``treatment``).
        paired: difference per seed (True) or difference of means with Welch's interval.
        bounds: the range the effect can take, e.g. (-100, 100) for a difference of
            accuracies in points; applied to paired and one-condition intervals.
        confidence: the interval's level (default 0.95).

    Returns:
        ``(effect, low, high, n)``; n is the number of pairs (paired), the smaller group
        (unpaired) or the number of values; the interval is NaN when n < 2.
    """
    t = np.asarray(treatment, dtype=np.float64)
    if control is None:
        mean, low, high = t_interval(t, confidence, bounds)
        return mean, low, high, int(t.size)
    c = np.asarray(control, dtype=np.float64)
    if paired:
        if t.shape != c.shape:
            raise LosslabError(f"paired values need equal lengths, got {t.size} and {c.size}")
        mean, low, high = t_interval(t - c, confidence, bounds)
        return mean, low, high, int(t.size)
    n = int(min(t.size, c.size))
    effect = float(t.mean() - c.mean()) if t.size and c.size else math.nan
    if n < 2:
        return effect, math.nan, math.nan, n
    vt, vc = t.var(ddof=1) / t.size, c.var(ddof=1) / c.size
    se = math.sqrt(vt + vc)
    if se == 0.0:
        return effect, effect, effect, n
    df = (vt + vc) ** 2 / (vt**2 / (t.size - 1) + vc**2 / (c.size - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
    low, high = effect - half, effect + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return effect, low, high, n
