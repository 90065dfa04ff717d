"""The claims file: every claim of the seed documents, as data
(``src/losslab/studies/claims.toml``, shipped in the package).

::

    [sources.janocha2017]
    title = 'Janocha & Czarnecki 2017, "On loss functions for deep neural networks ..."'

    [[claims]]
    id = "B4"
    source = "berlyand2021"
    section = "§3.3, Fig. 9"
    statement = "eta = 0.01 gains ~7.1 points of training accuracy over the baseline"
    paper = "+7.1 points (MNIST, 30 seeds)"
    dataset = "mnist"                 # the paper's; another one that ran is a stand-in
    figure = "accuracy against eta"   # the report figure that shows it
    study = "twoscale-mnist"
    scale = "medium"
    [[claims.compare]]
    metric = "train_accuracy"
    treatment = {loss = "two_scale(eta=0.01)"}
    control = {loss = "two_scale(baseline=True)"}
    direction = "greater"
    size = 7.1

A claim is one of three kinds: measured by a study (``compare``: one or more comparisons,
their conjunction), verified by tests (``tests``: ``path::function`` names that must exist),
or not measurable yet (``unmeasured``: why). A filter value that is a list (``loss =
["l1", "tanimoto"]``) makes one comparison per value: a conjunction written once.

Each comparison reads one per-seed value from every cell of a condition:
``source = "final"`` (a column of the cells table, e.g. ``test_accuracy``), ``"curve"``
(a learning curve at ``step``, or its mean over the steps with ``reduce = "mean"``: the
speed of learning of Janocha & Czarnecki §3) or ``"measurement"`` (a measurement's value
at ``index`` and ``step``; ``minus_index`` / ``minus_step`` subtract another value of the
same cell, ``log10_ratio`` takes the log-ratio instead). Accuracies are in percent, so
sizes, margins and ranges are percentage points.
"""

from __future__ import annotations

import ast
import itertools
import math
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from losslab.catalogue import CLAIMS_FILE
from losslab.errors import LosslabError

__all__ = ["CLAIMS_FILE", "Claim", "ClaimsFile", "Comparison", "load_claims", "missing_tests",
           "parse_claims"]
Scalar = str | int | float | bool
Filter = dict[str, Scalar | list[Scalar]]


class Comparison(BaseModel):
    """One measured effect: a condition against another (or against a fixed value)."""

    model_config = ConfigDict(extra="forbid")

    label: str | None = None
    study: str | None = None
    scale: str | None = None
    source: Literal["final", "curve", "measurement"] = "final"
    metric: str
    index: str | None = None
    minus_index: str | None = None
    log10_ratio: bool = False
    step: int | Literal["first", "last"] = "last"
    minus_step: int | Literal["first", "last"] | None = None
    reduce: Literal["value", "mean"] = "value"
    where: Filter = Field(default_factory=dict)
    treatment: Filter
    control: Filter | None = None
    paired: bool = True
    direction: Literal["greater", "less", "within"]
    size: float | None = None
    target: tuple[float, float] | None = None
    null: float = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> Comparison:
        if self.direction == "within":
            if self.target is None:
                raise ValueError("direction 'within' needs target = [low, high] (use -inf or "
                                 "inf for an open end)")
            if not self.target[0] < self.target[1]:
                raise ValueError(f"target must be [low, high] with low < high, got "
                                 f"{list(self.target)}")
            if self.size is not None:
                raise ValueError("size belongs to greater/less comparisons; a 'within' "
                                 "comparison states its range with target")
        else:
            if self.target is not None:
                raise ValueError("target belongs to 'within' comparisons; a greater/less "
                                 "comparison states its claimed size with size")
            if self.size is not None and not (self.size > 0 and math.isfinite(self.size)):
                raise ValueError(f"size must be a positive number (the direction gives its "
                                 f"sign), got {self.size}")
        if self.source == "final" and any(
            v is not None for v in (self.index, self.minus_index, self.minus_step)
        ):
            raise ValueError("index, minus_index and minus_step need source = 'curve' or "
                             "'measurement'")
        if self.source != "measurement" and (self.index is not None or self.log10_ratio):
            raise ValueError("index and log10_ratio belong to source = 'measurement'")
        if self.log10_ratio and self.minus_index is None:
            raise ValueError("log10_ratio needs minus_index (the denominator)")
        if self.reduce == "mean" and self.source != "curve":
            raise ValueError("reduce = 'mean' (speed of learning) needs source = 'curve'")
        if not self.treatment:
            raise ValueError("treatment must name the claimed condition, e.g. "
                             "{loss = \"two_scale(eta=0.01)\"}")
        if self.control is not None and not self.control:
            raise ValueError("control is empty; leave it out for a one-condition claim")
        return self

    def expand(self) -> list[Comparison]:
        """One comparison per combination of the list values of the filters."""
        slots = []
        for part in ("where", "treatment", "control"):
            for key, value in (getattr(self, part) or {}).items():
                if isinstance(value, list):
                    if not value:
                        raise LosslabError(f"{part}.{key} is an empty list")
                    slots.append((part, key, value))
        if not slots:
            return [self]
        out = []
        for choice in itertools.product(*(values for _, _, values in slots)):
            update: dict[str, dict[str, Any]] = {}
            for (part, key, _), value in zip(slots, choice, strict=True):
                update.setdefault(part, dict(getattr(self, part)))[key] = value
            out.append(self.model_copy(update=update))
        return out


class Claim(BaseModel):
    """One claim of a seed document and how losslab judges it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Z][0-9]+$")
    source: str
    section: str
    statement: str
    paper: str
    dataset: str | None = None
    figure: str = ""
    study: str | None = None
    scale: str | None = None
    tests: list[str] = Field(default_factory=list)
    compare: list[Comparison] = Field(default_factory=list)
    unmeasured: str | None = None
    note: str = ""

    @model_validator(mode="after")
    def _one_kind(self) -> Claim:
        kinds = [k for k, v in (("compare", self.compare), ("tests", self.tests),
                                ("unmeasured", self.unmeasured)) if v]
        if len(kinds) != 1:
            raise ValueError("give exactly one of compare (a study measures it), tests (the "
                             "test suite verifies it) or unmeasured (why it is not measured "
                             f"yet); got {', '.join(kinds) or 'none'}")
        for test in self.tests:
            path, sep, name = test.partition("::")
            if not sep or not path.endswith(".py") or not name.isidentifier():
                raise ValueError(f"tests: {test!r} must read 'tests/FILE.py::test_function'")
        for i, comparison in enumerate(self.compare):
            if (comparison.study or self.study) is None or (
                comparison.scale or self.scale
            ) is None:
                raise ValueError(f"compare[{i}] needs a study and a scale (on the claim or "
                                 "the comparison)")
        return self

    @property
    def kind(self) -> str:
        """``"study"``, ``"test"`` or ``"unmeasured"``."""
        return "study" if self.compare else "test" if self.tests else "unmeasured"

    def parts(self) -> list[Comparison]:
        """The claim's comparisons, list filters expanded, study and scale filled in."""
        out = []
        for comparison in self.compare:
            for part in comparison.expand():
                out.append(part.model_copy(update={"study": part.study or self.study,
                                                   "scale": part.scale or self.scale}))
        return out


class Source(BaseModel):
    """A seed document: its title as the tables head it."""

    model_config = ConfigDict(extra="forbid")
    title: str


class ClaimsFile(BaseModel):
    """The whole file: the seed documents in order, then the claims."""

    model_config = ConfigDict(extra="forbid")
    sources: dict[str, Source]
    claims: list[Claim]


def _where(loc: tuple[Any, ...], doc: dict[str, Any]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    if len(loc) >= 2 and loc[0] == "claims" and isinstance(loc[1], int):
        try:
            claim_id = doc["claims"][loc[1]].get("id", "?")
        except (IndexError, AttributeError, KeyError):
            claim_id = "?"
        text = f"claim {claim_id} ({text})"
    return text


def parse_claims(doc: dict[str, Any], path: str | Path = CLAIMS_FILE) -> ClaimsFile:
    """Validate a parsed claims document; errors name the claim and the field."""
    try:
        claims = ClaimsFile.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        where = _where(tuple(first["loc"]), doc)
        if first["type"] == "extra_forbidden":
            raise LosslabError(f"{path}: {where}: unknown field; remove it or fix its name"
                               ) from None
        if first["type"] == "missing":
            raise LosslabError(f"{path}: {where}: required field missing; add it") from None
        message = first["msg"].removeprefix("Value error, ")
        raise LosslabError(f"{path}: {where}: {message}") from None
    seen: set[str] = set()
    for claim in claims.claims:
        if claim.id in seen:
            raise LosslabError(f"{path}: claim {claim.id} appears twice; ids must be unique")
        seen.add(claim.id)
        if claim.source not in claims.sources:
            raise LosslabError(f"{path}: claim {claim.id}: source {claim.source!r} is not "
                               f"one of the [sources] ({', '.join(claims.sources)})")
        for i, comparison in enumerate(claim.compare):
            try:
                comparison.expand()
            except LosslabError as err:
                raise LosslabError(f"{path}: claim {claim.id}: compare[{i}]: {err}") from None
    return claims


def load_claims(path: str | Path) -> ClaimsFile:
    """Read and validate the claims file (see the module docstring for its format)."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise LosslabError(f"cannot read the claims file {path} ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise LosslabError(f"{path} is not valid TOML ({err})") from None
    return parse_claims(doc, path)


def missing_tests(claim: Claim, root: Path) -> list[str]:
    """The tests a claim names that no longer exist under ``root`` (the checkout).

    A test exists when its file parses and defines a function of that name at module
    level (parametrised tests included): cheap, nothing is imported or run.
    """
    missing = []
    for test in claim.tests:
        path, _, name = test.partition("::")
        file = root / path
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"))
        except (OSError, SyntaxError):
            missing.append(test)
            continue
        names = {n.name for n in tree.body
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        if name not in names:
            missing.append(test)
    return missing
