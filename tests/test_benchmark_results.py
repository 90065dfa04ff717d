"""One number, one place: the measured tables of the README and the docs pages are drawn
from the result files the benchmarks write (benchmarks/results/*.json), and the benchmarks
state one goal each."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"


def _module():
    spec = importlib.util.spec_from_file_location("benchmark_results",
                                                  BENCHMARKS / "benchmark_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


br = _module()


def test_readme_shows_what_the_result_files_hold():
    assert br.update_documents(check=True) == []


def test_every_result_file_is_shown_and_every_table_has_a_file():
    shown = {m.group("name") for doc in br.documents()
             for m in br.BLOCK.finditer(doc.read_text(encoding="utf-8"))}
    files = {p.stem for p in (BENCHMARKS / "results").glob("*.json")}
    # threads.json (the thread-policy benchmark) may not be shown in a table yet
    assert shown <= files and files - shown <= {"threads"}
    assert {"acceptance", "losses", "engine", "study_speed", "npnet_speed",
            "report_speed"} <= shown
    for name in files:
        document = json.loads((BENCHMARKS / "results" / f"{name}.json").read_text())
        assert document["benchmark"] == name and document["rows"], name
        assert "measured_at" in document and "load_at_start" in document, name


def test_an_edited_number_is_found(tmp_path):
    (tmp_path / "results").mkdir()
    for file in (BENCHMARKS / "results").glob("*.json"):
        shutil.copy(file, tmp_path / "results" / file.name)
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    # Change the first bold figure of the engine table, whatever was measured last.
    block = next(m for m in br.BLOCK.finditer(page) if m.group("name") == "engine")
    figure = re.search(r"\*\*(\d+)\.(\d+)x\*\*", block.group("body"))
    edited = f"**{figure.group(1)}.{(int(figure.group(2)) + 1) % 100:02d}x**"
    start = block.start("body") + figure.start()
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "performance.md").write_text(
        page[:start] + edited + page[start + len(figure.group(0)):])
    differences = br.update_documents(check=True, root=tmp_path, results=tmp_path / "results")
    assert differences == ["docs/performance.md: the engine table differs from "
                           "benchmarks/results/engine.json"]
    br.update_documents(root=tmp_path, results=tmp_path / "results")
    assert (tmp_path / "docs" / "performance.md").read_text() == page


def _goals(path: Path) -> dict:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and node.targets[0].id == "GOALS":
            return ast.literal_eval(node.value)
    raise AssertionError(f"no GOALS in {path}")


def test_engine_goals_are_stated_once():
    goals = _goals(BENCHMARKS / "engine.py")
    shown = {row["goal"] for row in json.loads(
        (BENCHMARKS / "results" / "engine.json").read_text())["rows"]}
    assert {f">= {v:g}" for v in goals.values()} <= shown
    for script in ("engine.py", "stack_speed.py"):
        text = (BENCHMARKS / script).read_text()
        # a goal written as a number in prose would be a second place for it
        assert not re.search(r"goal[^\n]*>= ?\d", text), script
        assert not re.search(r"at least \d+x", text), script
