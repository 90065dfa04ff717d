"""From committed results to each claim's effects, intervals and verdict.

A comparison (:class:`~losslab.reproduce.claims.Comparison`) selects, among the finished
cells of one study and scale, the cells of its claimed condition (``where`` and
``treatment``) and of the condition it is compared with (``where`` and ``control``): one
cell per seed each, else the filters are ambiguous and the claims file must name more axes.
Each cell gives one value (a final metric, a curve value or a measurement); accuracies are
turned into percent. The effect and its interval come from
:func:`~losslab.reproduce.verdict.effect_interval`, the verdict from
:func:`~losslab.reproduce.verdict.verdict`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from losslab.errors import LosslabError
from losslab.reproduce.claims import Claim, Comparison
from losslab.reproduce.verdict import (
    BY_TEST,
    MIN_SEEDS,
    NOT_RUN,
    combine,
    effect_interval,
    verdict,
)

USABLE = ("done", "diverged")


@dataclass
class PartResult:
    """One comparison's outcome. ``effect``, ``low``, ``high`` are in ``unit``."""

    label: str
    study: str
    scale: str
    datasets: list[str]
    n: int
    effect: float
    low: float
    high: float
    verdict: str
    unit: str
    reason: str = ""
    difference: bool = True


@dataclass
class ClaimResult:
    """A claim's verdict, its parts and the part that decides the verdict."""

    claim: Claim
    verdict: str
    parts: list[PartResult] = field(default_factory=list)
    missing_tests: list[str] = field(default_factory=list)

    @property
    def deciding(self) -> PartResult | None:
        """The part shown in the claim's row: the first whose verdict is the claim's."""
        for part in self.parts:
            if part.verdict == self.verdict:
                return part
        return self.parts[0] if self.parts else None

    @property
    def stand_in(self) -> str | None:
        """The dataset(s) that ran in place of the paper's, if any."""
        want = self.claim.dataset
        if want is None:
            return None
        ran = sorted({d for p in self.parts for d in p.datasets})
        return ", ".join(ran) if ran and want not in ran else None


class Results:
    """The committed results under ``root`` (``root/<study>/<scale>/``), read once each."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self._cache: dict[tuple[str, str], Any] = {}

    def directory(self, study: str, scale: str) -> Path:
        return self.root / study / scale

    def get(self, study: str, scale: str) -> _Frames | None:
        key = (study, scale)
        if key not in self._cache:
            from losslab.study.compact import is_compact

            where = self.directory(study, scale)
            self._cache[key] = _Frames(where) if is_compact(where) else None
        return self._cache[key]

    def available(self) -> list[tuple[str, str]]:
        """(study, scale) of every compact directory under the root, sorted."""
        from losslab.study.compact import is_compact

        if not self.root.is_dir():
            return []
        return sorted((d.parent.name, d.name) for d in self.root.glob("*/*") if is_compact(d))


class _Frames:
    """cells / curves / measurements of one compact directory, loaded on first use."""

    def __init__(self, directory: Path):
        from losslab.study.results import load

        self.directory = directory
        self.results = load(directory)
        cells = self.results.cells()
        self.cells = cells[cells["status"].isin(USABLE)].reset_index(drop=True)
        self._curves: dict[Any, pd.DataFrame] | None = None
        self._measurements: dict[Any, pd.DataFrame] | None = None

    def curves(self, cell_id: str) -> pd.DataFrame:
        if self._curves is None:
            self._curves = dict(tuple(self.results.curves().groupby("cell_id", sort=False)))
        return self._curves.get(cell_id, _EMPTY_CURVES)

    def measurements(self, cell_id: str) -> pd.DataFrame:
        if self._measurements is None:
            frame = self.results.measurements()
            self._measurements = dict(tuple(frame.groupby("cell_id", sort=False)))
        return self._measurements.get(cell_id, _EMPTY_MEASUREMENTS)


_EMPTY_CURVES = pd.DataFrame(columns=["cell_id", "step", "metric", "value"])
_EMPTY_MEASUREMENTS = pd.DataFrame(columns=["cell_id", "step", "name", "index", "value"])


def is_percent(part: Comparison) -> bool:
    """Whether the part's values are accuracies (shown and claimed in percent)."""
    if part.log10_ratio:
        return False
    return part.metric.endswith(("accuracy", "_top_k", "_acc_at"))


def part_label(part: Comparison) -> str:
    """``loss=expectation vs loss=log (train_accuracy; dataset=spirals)``, or the given one."""
    if part.label:
        return part.label

    def text(filters: dict[str, Any]) -> str:
        return ", ".join(f"{k}={v}" for k, v in filters.items())

    what = part.metric
    if part.source == "curve":
        what += " (mean over the curve)" if part.reduce == "mean" else f" at step {part.step}"
        if part.minus_step is not None:
            what += f" minus step {part.minus_step}"
    elif part.source == "measurement":
        what += f"[{part.index}]"
        if part.minus_index is not None:
            what = (f"log10 {what} / [{part.minus_index}]" if part.log10_ratio
                    else f"{what} − [{part.minus_index}]")
    side = text(part.treatment) + (f" − {text(part.control)}" if part.control else "")
    if part.control and len(part.treatment) == 1 and part.treatment.keys() == part.control.keys():
        key = next(iter(part.treatment))
        side = f"{key} {part.treatment[key]} − {part.control[key]}"
    return f"{side}: {what}" + (f" ({text(part.where)})" if part.where else "")


def _select(cells: pd.DataFrame, filters: dict[str, Any], claim: Claim,
            what: str) -> pd.DataFrame:
    frame = cells
    for key, value in filters.items():
        if key not in frame.columns:
            raise LosslabError(f"claim {claim.id}: {what} filters on {key!r}, which is not a "
                               f"column of the cells; columns: {', '.join(cells.columns)}")
        column = frame[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            keep = column.astype(str) == str(value)
        else:
            numbers = pd.to_numeric(column, errors="coerce")
            keep = np.isclose(numbers.astype(float), float(value), rtol=1e-12, atol=0.0)
        if not keep.any():
            values = ", ".join(sorted({str(v) for v in cells[key].unique()}))
            raise LosslabError(f"claim {claim.id}: {what} asks for {key} = {value!r}, which "
                               f"no cell has; values present: {values}")
        frame = frame[keep]
    return frame


def _per_seed(frame: pd.DataFrame, claim: Claim, what: str) -> pd.DataFrame:
    counts = frame["seed"].value_counts()
    if (counts > 1).any():
        seed = counts.index[counts > 1][0]
        rows = frame[frame["seed"] == seed]
        varying = [c for c in ("dataset", "model", "activation", "loss", "lr", "weight_decay",
                               "label_noise_rate", "label_noise_kind", "input_noise_eps",
                               "steps") if c in rows.columns and rows[c].nunique() > 1]
        raise LosslabError(f"claim {claim.id}: {what} matches {len(rows)} cells of seed "
                           f"{seed} (they differ in {', '.join(varying) or 'other axes'}); "
                           "name those axes in where, treatment or control")
    return frame.set_index("seed")


def _at_step(frame: pd.DataFrame, step: int | str, claim: Claim, what: str) -> float:
    if frame.empty:
        return math.nan
    steps = frame["step"].astype(int)
    if step == "last":
        chosen = steps.max()
    elif step == "first":
        chosen = steps.min()
    else:
        chosen = int(step)
        if not (steps == chosen).any():
            raise LosslabError(f"claim {claim.id}: {what} has no value at step {chosen}; "
                               f"recorded steps: {sorted(set(steps))}")
    return float(frame.loc[steps == chosen, "value"].iloc[0])


def _value(frames: _Frames, row: pd.Series, part: Comparison, claim: Claim) -> float:
    if part.source == "final":
        if part.metric not in row.index:
            raise LosslabError(f"claim {claim.id}: {part.metric!r} is not a final metric of "
                               "the cells (train_accuracy, test_accuracy, ...)")
        return float(row[part.metric])
    if part.source == "curve":
        curves = frames.curves(row["cell_id"])
        curve = curves[curves["metric"] == part.metric]
        if part.reduce == "mean":
            return float(curve["value"].mean()) if not curve.empty else math.nan
        value = _at_step(curve, part.step, claim, f"curve {part.metric}")
        if part.minus_step is not None:
            value -= _at_step(curve, part.minus_step, claim, f"curve {part.metric}")
        return value
    rows = frames.measurements(row["cell_id"])
    rows = rows[rows["name"] == part.metric]
    if rows.empty:
        return math.nan

    def one(index: str | None, step: int | str) -> float:
        indices = [i for i in dict.fromkeys(rows["index"]) if i != "total"]
        if index == "@first" and indices:
            index = indices[0]
        elif index == "@last" and indices:
            index = indices[-1]
        chosen = rows[rows["index"] == (index or "")]
        if chosen.empty:
            raise LosslabError(f"claim {claim.id}: measurement {part.metric!r} has no index "
                               f"{index!r}; indices: {', '.join(map(str, indices))}")
        return _at_step(chosen, step, claim, f"measurement {part.metric}[{index}]")

    value = one(part.index, part.step)
    if part.minus_step is not None:
        value -= one(part.index, part.minus_step)
    if part.minus_index is not None:
        other = one(part.minus_index, part.step)
        value = math.log10(value / other) if part.log10_ratio else value - other
    return value


def measure_part(results: Results, claim: Claim, part: Comparison) -> PartResult:
    """One comparison of ``claim`` measured on the committed results."""
    unit = "points" if is_percent(part) else ""
    label = part_label(part)
    assert part.study is not None and part.scale is not None
    frames = results.get(part.study, part.scale)
    if frames is None:
        return PartResult(label, part.study, part.scale, [], 0, math.nan, math.nan, math.nan,
                          NOT_RUN, unit, "no committed results",
                          _is_difference(part))
    base = _select(frames.cells, part.where, claim, "where")
    treated = _per_seed(_select(base, part.treatment, claim, "treatment"), claim, "treatment")
    scale = 100.0 if unit else 1.0

    def values(frame: pd.DataFrame) -> pd.Series:
        return pd.Series({seed: _value(frames, row, part, claim) * scale
                          for seed, row in frame.iterrows()}, dtype=float)

    t_values = values(treated).dropna()
    datasets = set(treated["dataset"].astype(str))
    difference = _is_difference(part)
    bounds = ((-100.0, 100.0) if difference else (0.0, 100.0)) if unit else None
    if part.control is None:
        effect, low, high, n = effect_interval(t_values.to_numpy(), bounds=bounds)
        if part.direction != "within":
            effect, low, high = effect - part.null, low - part.null, high - part.null
    else:
        controls = _per_seed(_select(base, part.control, claim, "control"), claim, "control")
        datasets |= set(controls["dataset"].astype(str))
        c_values = values(controls).dropna()
        if part.paired:
            seeds = t_values.index.intersection(c_values.index)
            t_arr, c_arr = t_values[seeds].to_numpy(), c_values[seeds].to_numpy()
        else:
            t_arr, c_arr = t_values.to_numpy(), c_values.to_numpy()
        effect, low, high, n = effect_interval(t_arr, c_arr, part.paired, bounds)
    word = verdict(low, high, n, part.direction, part.size, part.target)
    reason = f"{n} seeds, fewer than {MIN_SEEDS}" if word == NOT_RUN else ""
    return PartResult(label, part.study, part.scale, sorted(datasets), n, effect, low, high,
                      word, unit, reason, difference)


def _is_difference(part: Comparison) -> bool:
    """Whether the part's effect is a difference (else a value compared with the paper's)."""
    return (part.control is not None or part.minus_index is not None
            or part.minus_step is not None or (part.direction != "within" and part.null != 0))


def judge(claim: Claim, results: Results, root: Path) -> ClaimResult:
    """The claim's verdict by the rule: tests for theorem claims, parts for study claims."""
    from losslab.reproduce.claims import missing_tests

    if claim.kind == "test":
        gone = missing_tests(claim, root)
        return ClaimResult(claim, BY_TEST, missing_tests=gone)
    if claim.kind == "unmeasured":
        return ClaimResult(claim, NOT_RUN)
    parts = [measure_part(results, claim, part) for part in claim.parts()]
    return ClaimResult(claim, combine([p.verdict for p in parts]), parts)
