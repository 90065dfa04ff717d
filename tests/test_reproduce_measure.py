"""How a comparison reads its per-seed values: final metrics, curve values and means,
measurements at an index (first / last layer, differences, log-ratios), paired or not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from losslab.errors import LosslabError
from losslab.reproduce.claims import parse_claims
from losslab.reproduce.measure import measure_part

SEEDS = range(6)
LOSSES = ("log", "hinge")


def _cells() -> pd.DataFrame:
    rows = []
    for loss in LOSSES:
        for seed in SEEDS:
            rows.append({"cell_id": f"{loss}-{seed}", "loss": loss, "seed": seed,
                         "dataset": "digits", "model": "mlp[8x1]", "status": "done",
                         "train_accuracy": 0.5 + 0.01 * seed + (0.1 if loss == "log" else 0),
                         "test_accuracy": 0.4 + 0.02 * seed})
    return pd.DataFrame(rows)


class _Frames:
    def __init__(self):
        self.cells = _cells()

    def curves(self, cell_id):
        seed = int(cell_id.split("-")[1])
        return pd.DataFrame({"cell_id": cell_id, "step": [10, 20, 30],
                             "metric": "test_accuracy",
                             "value": [0.1, 0.2 + 0.01 * seed, 0.6]})

    def measurements(self, cell_id):
        seed = int(cell_id.split("-")[1])
        index = ["0", "2", "4", "total"]
        return pd.DataFrame({"cell_id": cell_id, "step": 30, "name": "grad_norm",
                             "index": index, "value": [10.0 ** -seed, 0.5, 1.0, 2.0]})


class _Results:
    def get(self, study, scale):
        return _Frames() if (study, scale) == ("s", "medium") else None


def _part(**compare):
    doc = {"sources": {"p": {"title": "P"}}, "claims": [{
        "id": "X1", "source": "p", "section": "§", "statement": "s", "paper": "p",
        "study": "s", "scale": "medium", "compare": [compare]}]}
    claim = parse_claims(doc).claims[0]
    return claim, claim.parts()[0]


def test_paired_final_metric_in_points():
    claim, part = _part(metric="train_accuracy", treatment={"loss": "log"},
                        control={"loss": "hinge"}, direction="greater", size=5.0)
    result = measure_part(_Results(), claim, part)
    # every seed differs by exactly 10 points: a degenerate interval at +10
    assert result.n == 6 and result.unit == "points"
    assert (result.effect, result.low, result.high) == pytest.approx((10.0, 10.0, 10.0))
    assert result.verdict == "reproduced" and result.datasets == ["digits"]


def test_unpaired_uses_welch():
    claim, part = _part(metric="test_accuracy", treatment={"loss": "log"},
                        control={"loss": "hinge"}, paired=False, direction="within",
                        target=[-1.0, 1.0])
    result = measure_part(_Results(), claim, part)
    values = np.array([40 + 2 * s for s in SEEDS], dtype=float)
    ci = stats.ttest_ind(values, values, equal_var=False).confidence_interval(0.95)
    # the same values on both sides: effect 0, Welch half-width from scipy (1e-9: same
    # formula, another evaluation order)
    assert result.effect == pytest.approx(0.0, abs=1e-12)
    assert (result.low, result.high) == pytest.approx((ci.low, ci.high), abs=1e-9)
    assert result.verdict == "inconclusive"


def test_curve_value_minus_step_and_mean():
    claim, part = _part(source="curve", metric="test_accuracy", step=30, minus_step=20,
                        treatment={"loss": "log"}, direction="greater")
    result = measure_part(_Results(), claim, part)
    expected = np.array([60 - (20 + s) for s in SEEDS], dtype=float)
    assert result.effect == pytest.approx(expected.mean())
    claim, part = _part(source="curve", metric="test_accuracy", reduce="mean",
                        treatment={"loss": "log"}, direction="within", target=[0.0, 100.0])
    result = measure_part(_Results(), claim, part)
    means = [(10 + 20 + s + 60) / 3 for s in SEEDS]
    assert result.effect == pytest.approx(np.mean(means))


def test_measurement_first_over_last_layer_log_ratio():
    claim, part = _part(source="measurement", metric="grad_norm", index="@first",
                        minus_index="@last", log10_ratio=True, treatment={"loss": "log"},
                        direction="less")
    result = measure_part(_Results(), claim, part)
    # log10(10^-seed / 1.0) = -seed; "total" is not a layer
    assert result.unit == "" and result.effect == pytest.approx(-np.mean(list(SEEDS)))
    assert result.verdict == "reproduced"


def test_too_few_seeds_no_results_and_ambiguous_filters():
    class Few(_Results):
        def get(self, study, scale):
            frames = _Frames()
            frames.cells = frames.cells[frames.cells["seed"] < 4]
            return frames

    claim, part = _part(metric="train_accuracy", treatment={"loss": "log"},
                        control={"loss": "hinge"}, direction="greater")
    few = measure_part(Few(), claim, part)
    assert few.verdict == "not run" and few.n == 4 and "fewer than 5" in few.reason
    missing = measure_part(type("R", (), {"get": lambda self, a, b: None})(), claim, part)
    assert missing.verdict == "not run" and math.isnan(missing.effect)
    claim, part = _part(metric="train_accuracy", treatment={"dataset": "digits"},
                        direction="greater")
    with pytest.raises(LosslabError, match="matches 2 cells of seed 0 .*differ in loss"):
        measure_part(_Results(), claim, part)
    claim, part = _part(source="measurement", metric="grad_norm", index="9",
                        treatment={"loss": "log"}, direction="greater")
    with pytest.raises(LosslabError, match="no index '9'"):
        measure_part(_Results(), claim, part)
