"""One number, one place: benchmark results files and the README tables drawn from them.

Each benchmark writes what it measured to ``benchmarks/results/NAME.json``::

    {"benchmark": "engine", "measured_at": "2026-12-04T10:00:00Z", "load_at_start": 0.4,
     "machine": "...", "commit": "...", "columns": [{"title": "figure", "cell": "{figure}"},
     ...], "rows": [{...}, ...]}

(the format of ``threads.json`` too; without ``columns`` every row key is a column). A
markdown file shows a result file's table between ``<!-- results:NAME -->`` and
``<!-- /results:NAME -->``; :func:`update_documents` rewrites those blocks from the files
and ``tests/test_benchmark_results.py`` fails when a block differs from its file.

``.venv/bin/python benchmarks/benchmark_results.py`` rewrites the blocks;
``--check`` only lists the differences (exit 1).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
BLOCK = re.compile(r"(<!-- results:(?P<name>[a-z0-9_-]+) -->\n)(?P<body>.*?)(<!-- /results:"
                   r"(?P=name) -->)", re.DOTALL)


def documents(root: Path = ROOT) -> list[Path]:
    """The markdown files that may show results: README.md and docs/**/*.md."""
    found = [root / "README.md"] if (root / "README.md").exists() else []
    return found + sorted((root / "docs").rglob("*.md")) if (root / "docs").is_dir() else found


def load_at_start() -> float | None:
    """The 1-minute load average now (call it before measuring)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def record(name: str, columns: list[dict[str, str]], rows: list[dict[str, Any]],
           load: float | None, **extra: Any) -> Path:
    """Write ``results/NAME.json`` (with the machine, commit and time) and redraw the
    README blocks that show it; returns the file's path."""
    from losslab.study.store import machine, source_commit

    document = {
        "benchmark": name,
        "measured_at": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_at_start": None if load is None else round(load, 2),
        "machine": machine(),
        "commit": source_commit(),
        **extra,
        "columns": columns,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    update_documents()
    print(f"wrote {path} and the README tables that show it", file=sys.stderr)
    return path


def read(name: str, results: Path = RESULTS) -> dict[str, Any]:
    path = results / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise SystemExit(f"no result file {path} ({err.strerror}); run the benchmark") from None


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def render(document: dict[str, Any], name: str) -> str:
    """The markdown table of a result file and a line saying where and when it was made."""
    rows = document.get("rows", [])
    columns = document.get("columns") or [{"title": k, "cell": "{" + k + "}"}
                                          for k in dict.fromkeys(k for r in rows for k in r)]
    lines = ["| " + " | ".join(_cell(c["title"]) for c in columns) + " |",
             "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c["cell"].format(**row)) for c in columns) + " |")
    where = [f"measured {document['measured_at']}"] if document.get("measured_at") else []
    if document.get("machine"):
        where.append(f"on {document['machine']}")
    load = document.get("load_at_start")
    if isinstance(load, (int, float)):
        where.append(f"load average {load:g} at the start")
    elif load:
        where.append(f"load average {load}")
    if document.get("source"):
        where.append(document["source"])
    lines += ["", f"From `benchmarks/results/{name}.json`: {', '.join(where)}."]
    return "\n".join(lines) + "\n"


def update_documents(check: bool = False, root: Path = ROOT,
                     results: Path = RESULTS) -> list[str]:
    """Redraw every results block (or, with ``check``, only list those that differ)."""
    differences = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")

        def replace(match: re.Match[str], path: Path = path) -> str:
            name = match.group("name")
            body = render(read(name, results), name)
            if body != match.group("body"):
                differences.append(f"{path.relative_to(root)}: the {name} table differs from "
                                   f"benchmarks/results/{name}.json")
            return match.group(1) + body + match.group(4)

        new = BLOCK.sub(replace, text)
        if not check and new != text:
            path.write_text(new, encoding="utf-8")
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list differences, exit 1")
    args = parser.parse_args()
    differences = update_documents(check=args.check)
    for line in differences:
        print(line)
    if args.check and differences:
        sys.exit(1)


if __name__ == "__main__":
    main()
