"""The claims file: the committed one is valid and complete; bad entries are refused with
the claim and the field named; list filters expand into conjunctions; named tests exist."""

from __future__ import annotations

import copy
import re
import tomllib
from pathlib import Path

import pytest

from losslab.errors import LosslabError
from losslab.reproduce.claims import load_claims, missing_tests, parse_claims

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "src" / "losslab" / "studies" / "claims.toml"
GOOD = {
    "sources": {"paper": {"title": "A paper"}},
    "claims": [{
        "id": "X1", "source": "paper", "section": "§1", "statement": "a beats b",
        "paper": "+2 points", "study": "demo", "scale": "medium",
        "compare": [{"metric": "test_accuracy", "treatment": {"loss": ["a", "c"]},
                     "control": {"loss": "b"}, "direction": "greater", "size": 2.0}],
    }],
}


def test_committed_claims_file_is_valid_and_complete():
    claims = load_claims(CLAIMS).claims
    ids = [c.id for c in claims]
    expected = ([f"J{i}" for i in range(1, 26)] + [f"B{i}" for i in range(1, 19)]
                + [f"D{i}" for i in range(1, 10)] + [f"A{i}" for i in range(1, 10)]
                + [f"R{i}" for i in range(1, 6)])
    assert ids == expected
    for claim in claims:
        assert missing_tests(claim, ROOT) == [], claim.id


def test_committed_claims_name_existing_studies_and_scales():
    for claim in load_claims(CLAIMS).claims:
        for part in claim.parts():
            path = ROOT / "src" / "losslab" / "studies" / f"{part.study}.toml"
            assert path.exists(), (claim.id, part.study)
            doc = tomllib.loads(path.read_text())
            # medium scales are being added study by study; any other scale must exist
            assert part.scale == "medium" or part.scale in doc.get("scales", {}), claim.id


def test_list_filters_expand_into_one_comparison_each():
    claims = parse_claims(GOOD)
    parts = claims.claims[0].parts()
    assert [p.treatment["loss"] for p in parts] == ["a", "c"]
    assert all(p.study == "demo" and p.scale == "medium" for p in parts)


def _bad(path: list, value) -> dict:
    doc = copy.deepcopy(GOOD)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


@pytest.mark.parametrize(("path", "value", "message"), [
    (["claims", 0, "compare", 0, "direction"], "bigger", r"claim X1 .*direction"),
    (["claims", 0, "compare", 0, "size"], -1.0, r"claim X1 .*size must be a positive"),
    (["claims", 0, "compare", 0, "target"], [0.0, 1.0], r"claim X1 .*target belongs"),
    (["claims", 0, "compare", 0, "colour"], "red", r"claim X1 .*colour.*unknown field"),
    (["claims", 0, "statement"], KeyError, r"claim X1 .*statement.*required"),
    (["claims", 0, "source"], "other", r"claim X1: source 'other'"),
    (["claims", 0, "id"], "x-1", r"claim x-1 .*id"),
    (["claims", 0, "tests"], ["tests/t.py::test_a"], r"claim X1 .*exactly one of"),
    (["claims", 0, "scale"], KeyError, r"claim X1 .*needs a study and a scale"),
    (["claims", 0, "compare", 0, "treatment"], {}, r"claim X1 .*treatment must name"),
    (["claims", 0, "compare", 0, "index"], "1", r"claim X1 .*index"),
])
def test_bad_entries_name_the_claim_and_the_field(path, value, message):
    with pytest.raises(LosslabError, match=message):
        parse_claims(_bad(path, value))


def test_within_needs_an_ordered_target():
    doc = _bad(["claims", 0, "compare", 0, "direction"], "within")
    del doc["claims"][0]["compare"][0]["size"]
    with pytest.raises(LosslabError, match="needs target"):
        parse_claims(doc)
    doc["claims"][0]["compare"][0]["target"] = [1.0, 0.0]
    with pytest.raises(LosslabError, match="low < high"):
        parse_claims(doc)


def test_duplicate_ids_and_bad_test_names_are_refused():
    doc = copy.deepcopy(GOOD)
    doc["claims"].append(copy.deepcopy(doc["claims"][0]))
    with pytest.raises(LosslabError, match="X1 appears twice"):
        parse_claims(doc)
    doc = copy.deepcopy(GOOD)
    claim = doc["claims"][0]
    del claim["compare"]
    claim["tests"] = ["test_a"]
    with pytest.raises(LosslabError, match=re.escape("tests/FILE.py::test_function")):
        parse_claims(doc)


def test_missing_tests_finds_renamed_functions(tmp_path):
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_here():\n    pass\n")
    doc = copy.deepcopy(GOOD)
    claim = doc["claims"][0]
    del claim["compare"]
    claim["tests"] = ["tests/test_x.py::test_here", "tests/test_x.py::test_gone",
                      "tests/test_nofile.py::test_here"]
    parsed = parse_claims(doc).claims[0]
    assert missing_tests(parsed, tmp_path) == ["tests/test_x.py::test_gone",
                                               "tests/test_nofile.py::test_here"]


def test_unreadable_file(tmp_path):
    bad = tmp_path / "claims.toml"
    bad.write_text("claims = [")
    with pytest.raises(LosslabError, match="not valid TOML"):
        load_claims(bad)
    with pytest.raises(LosslabError, match="cannot read"):
        load_claims(tmp_path / "absent.toml")
