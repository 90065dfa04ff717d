"""Direct tests of the shared argument checks in losslab.checks."""

from __future__ import annotations

import fractions
import math
import subprocess
import sys

import numpy as np
import pytest

from losslab.checks import check_choice, check_int, check_real
from losslab.errors import LosslabError


def test_check_int_accepts_integers_and_numpy_integers():
    assert check_int("n", 3) == 3
    out = check_int("n", np.int64(5), minimum=1)
    assert out == 5 and type(out) is int
    assert check_int("n", -7) == -7  # no minimum
    assert check_int("n", 0, minimum=0) == 0
    assert check_int("n", None, 1, allow_none=True) is None


@pytest.mark.parametrize("bad", [True, False, 1.0, "3", None, np.float64(2.0)])
def test_check_int_rejects_non_integers(bad):
    with pytest.raises(LosslabError, match=r"^batch_size must be an integer >= 1, got "):
        check_int("batch_size", bad, 1)


def test_check_int_message_names_argument_value_and_bound():
    with pytest.raises(LosslabError, match=r"steps must be an integer >= 1 \(or None\), got 0"):
        check_int("steps", 0, 1, allow_none=True)
    with pytest.raises(LosslabError, match=r"^k must be an integer, got 'a'$"):
        check_int("k", "a")


def test_check_real_accepts_reals_and_returns_float():
    assert check_real("x", 2) == 2.0 and type(check_real("x", 2)) is float
    assert type(check_real("x", np.float32(0.5), 0.0, 1.0)) is float
    assert check_real("x", fractions.Fraction(1, 4), 0.0, 1.0) == 0.25
    assert check_real("x", 0.0, 0.0, 1.0, high_open=True) == 0.0
    assert check_real("x", 1.0, 0.0, 1.0) == 1.0
    assert check_real("x", math.inf, 0.0, low_open=True, allow_inf=True) == math.inf


@pytest.mark.parametrize("bad", [True, "0.5", None, [1.0], 1j])
def test_check_real_rejects_non_reals(bad):
    with pytest.raises(LosslabError, match=r"^lr must be a real number, got "):
        check_real("lr", bad, 0.0, low_open=True)


@pytest.mark.parametrize(
    ("value", "kwargs", "match"),
    [
        (
            0.0,
            {"low": 0.0, "low_open": True},
            r"lr must be finite and > 0, i\.e\. lie in \(0, inf\); got 0\.0",
        ),
        (-1, {"low": 0.0}, r"lr must be finite and >= 0, i\.e\. lie in \[0, inf\); got -1$"),
        (
            1.0,
            {"low": 0.0, "high": 1.0, "high_open": True},
            r">= 0 and < 1, i\.e\. lie in \[0, 1\); got 1\.0",
        ),
        (1.5, {"low": 0.0, "high": 1.0}, r"lie in \[0, 1\]; got 1\.5"),
        (math.nan, {}, r"lr must be finite, i\.e\. lie in \(-inf, inf\); got nan"),
        (math.inf, {"low": 0.0}, r"finite and >= 0.*got inf"),
        (
            -math.inf,
            {"low": 0.0, "allow_inf": True},
            r"lr must be >= 0, i\.e\. lie in \[0, inf\]; got -inf",
        ),
        (math.nan, {"low": 0.0, "allow_inf": True}, r"lie in \[0, inf\]; got nan"),
    ],
)
def test_check_real_range_messages(value, kwargs, match):
    with pytest.raises(LosslabError, match=match):
        check_real("lr", value, **kwargs)


def test_check_real_inf_only_where_allowed_and_high_is_inf():
    with pytest.raises(LosslabError, match="got inf"):
        check_real("x", math.inf, 0.0, 1.0, allow_inf=True)


def test_check_choice_strict_and_normalised():
    assert check_choice("reduction", "sum", ("mean", "sum")) == "sum"
    with pytest.raises(LosslabError, match=r"reduction must be one of 'mean', 'sum'; got 'SUM'"):
        check_choice("reduction", "SUM", ("mean", "sum"))
    assert check_choice("lr_decay", " Inverse-Time", ("inverse_time",), normalise=True) == (
        "inverse_time"
    )
    for bad in (None, 3, "cosine"):
        with pytest.raises(LosslabError, match=r"lr_decay must be one of 'inverse_time'; got "):
            check_choice("lr_decay", bad, ("inverse_time",), normalise=True)


def test_checks_module_is_torch_and_numpy_free():
    code = (
        "import sys, losslab.checks; "
        "assert 'torch' not in sys.modules and 'numpy' not in sys.modules, sorted(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
