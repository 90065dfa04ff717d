"""The verdict rule on constructed intervals: every placement of an interval's two ends
relative to zero and to the claimed size, both directions, ranges, conjunctions, seeds."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from losslab.errors import LosslabError
from losslab.reproduce.verdict import (
    BY_TEST,
    CONTRADICTED,
    INCONCLUSIVE,
    MIN_SEEDS,
    NOT_RUN,
    REPRODUCED,
    SMALLER,
    combine,
    effect_interval,
    verdict,
)

SIZE = 2.0
# Points on the line for the ends of an interval, named by where they lie (claim: > 0,
# claimed size 2): below zero, at zero, between zero and the size, at the size, beyond.
POINTS = {"neg": -1.0, "zero": 0.0, "mid": 1.0, "size": SIZE, "big": 3.0}
ORDER = list(POINTS)

# Written as a table, not derived from the code: (low at, high at) -> verdict with a
# claimed size, and without one.
WITH_SIZE = {
    ("neg", "neg"): CONTRADICTED, ("neg", "zero"): CONTRADICTED, ("neg", "mid"): CONTRADICTED,
    ("neg", "size"): INCONCLUSIVE, ("neg", "big"): INCONCLUSIVE,
    ("zero", "zero"): CONTRADICTED, ("zero", "mid"): CONTRADICTED,
    ("zero", "size"): INCONCLUSIVE, ("zero", "big"): INCONCLUSIVE,
    ("mid", "mid"): SMALLER, ("mid", "size"): REPRODUCED, ("mid", "big"): REPRODUCED,
    ("size", "size"): REPRODUCED, ("size", "big"): REPRODUCED, ("big", "big"): REPRODUCED,
}
WITHOUT_SIZE = {
    ("neg", "neg"): CONTRADICTED, ("neg", "zero"): INCONCLUSIVE, ("neg", "mid"): INCONCLUSIVE,
    ("neg", "size"): INCONCLUSIVE, ("neg", "big"): INCONCLUSIVE,
    ("zero", "zero"): INCONCLUSIVE, ("zero", "mid"): INCONCLUSIVE,
    ("zero", "size"): INCONCLUSIVE, ("zero", "big"): INCONCLUSIVE,
    ("mid", "mid"): REPRODUCED, ("mid", "size"): REPRODUCED, ("mid", "big"): REPRODUCED,
    ("size", "size"): REPRODUCED, ("size", "big"): REPRODUCED, ("big", "big"): REPRODUCED,
}
PAIRS = [(a, b) for a, b in itertools.combinations_with_replacement(ORDER, 2)]


def test_tables_cover_every_placement():
    assert set(WITH_SIZE) == set(PAIRS) == set(WITHOUT_SIZE)


@pytest.mark.parametrize("ends", PAIRS)
@pytest.mark.parametrize("sized", [True, False])
def test_greater(ends, sized):
    low, high = POINTS[ends[0]], POINTS[ends[1]]
    expected = (WITH_SIZE if sized else WITHOUT_SIZE)[ends]
    assert verdict(low, high, MIN_SEEDS, "greater", SIZE if sized else None) == expected


@pytest.mark.parametrize("ends", PAIRS)
@pytest.mark.parametrize("sized", [True, False])
def test_less_is_greater_mirrored(ends, sized):
    low, high = -POINTS[ends[1]], -POINTS[ends[0]]
    expected = (WITH_SIZE if sized else WITHOUT_SIZE)[ends]
    assert verdict(low, high, MIN_SEEDS, "less", SIZE if sized else None) == expected


RANGE = (-1.0, 1.0)
# (low, high) -> verdict for the range [-1, 1]: inside, outside, straddling an end.
WITHIN = [
    ((-1.0, 1.0), REPRODUCED), ((-0.5, 0.5), REPRODUCED), ((0.0, 0.0), REPRODUCED),
    ((-1.5, 0.5), INCONCLUSIVE), ((0.5, 1.5), INCONCLUSIVE), ((-2.0, 2.0), INCONCLUSIVE),
    ((1.5, 2.0), CONTRADICTED), ((-3.0, -1.5), CONTRADICTED), ((1.0, 2.0), INCONCLUSIVE),
]


@pytest.mark.parametrize(("interval", "expected"), WITHIN)
def test_within(interval, expected):
    assert verdict(*interval, MIN_SEEDS, "within", target=RANGE) == expected


@pytest.mark.parametrize(("interval", "expected"), [
    ((-0.5, 3.0), REPRODUCED), ((-1.5, 3.0), INCONCLUSIVE), ((-3.0, -2.0), CONTRADICTED)])
def test_within_half_open_range(interval, expected):
    assert verdict(*interval, MIN_SEEDS, "within", target=(-1.0, math.inf)) == expected


@pytest.mark.parametrize("direction", ["greater", "less", "within"])
def test_fewer_than_min_seeds_or_no_interval_is_not_run(direction):
    target = RANGE if direction == "within" else None
    assert verdict(1.0, 2.0, MIN_SEEDS - 1, direction, target=target) == NOT_RUN
    assert verdict(math.nan, math.nan, 10, direction, target=target) == NOT_RUN


def test_bad_arguments_raise():
    with pytest.raises(LosslabError, match="direction"):
        verdict(0, 1, 5, "bigger")
    with pytest.raises(LosslabError, match="low > high"):
        verdict(2, 1, 5, "greater")
    with pytest.raises(LosslabError, match="target"):
        verdict(0, 1, 5, "within")
    with pytest.raises(LosslabError, match="target"):
        verdict(0, 1, 5, "greater", target=RANGE)
    with pytest.raises(LosslabError, match="size"):
        verdict(0, 1, 5, "greater", size=-1.0)


@pytest.mark.parametrize(("parts", "expected"), [
    ([REPRODUCED, REPRODUCED], REPRODUCED),
    ([REPRODUCED, SMALLER], SMALLER),
    ([SMALLER, INCONCLUSIVE], INCONCLUSIVE),
    ([INCONCLUSIVE, CONTRADICTED, REPRODUCED], CONTRADICTED),
    ([CONTRADICTED, NOT_RUN], NOT_RUN),
    ([REPRODUCED], REPRODUCED),
])
def test_combine(parts, expected):
    assert combine(parts) == expected


def test_combine_refuses_nothing_and_test_verdicts():
    with pytest.raises(LosslabError):
        combine([])
    with pytest.raises(LosslabError):
        combine([BY_TEST])


def test_paired_interval_is_the_t_interval_of_differences():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=7), rng.normal(size=7)
    d = a - b
    half = stats.t.ppf(0.975, 6) * d.std(ddof=1) / np.sqrt(7)
    effect, low, high, n = effect_interval(a, b, paired=True)
    # float64 sums of 7 numbers of order 1: agreement to a few ulps; 1e-12 is far above.
    assert n == 7 and effect == pytest.approx(d.mean(), abs=1e-12)
    assert (low, high) == pytest.approx((d.mean() - half, d.mean() + half), abs=1e-12)


def test_paired_interval_is_cut_to_bounds():
    effect, low, high, _ = effect_interval([99.0, 100.0, 90.0], [0.0, 0.0, 0.0],
                                           bounds=(-100.0, 100.0))
    assert high == 100.0 and low < effect


def test_welch_interval_matches_scipy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(1.0, 1.0, size=6), rng.normal(0.0, 2.0, size=9)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    effect, low, high, n = effect_interval(a, b, paired=False)
    # Same formula evaluated in another order: agreement far inside 1e-10.
    assert n == 6 and effect == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-10)


def test_one_condition_interval_and_small_n():
    effect, low, high, n = effect_interval([0.5])
    assert (effect, n) == (0.5, 1) and math.isnan(low) and math.isnan(high)
    with pytest.raises(LosslabError, match="equal lengths"):
        effect_interval([1.0, 2.0], [1.0])
