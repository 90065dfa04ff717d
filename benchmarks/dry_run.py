"""How long `losslab run STUDY --scale S --dry-run` takes, for every ready-made study and scale.

Each dry run is a fresh process, timed end to end (interpreter, imports, planning, the FLOP
count and the estimate), as a user waits for it. Goal (issue 20): every dry run in at most
``GOAL`` seconds. One untimed dry run first measures and caches this machine's rates (as
any first use does), so the timed ones read the cache as a user's would. Study stores are
written to a temporary folder (``--out``), so stores under ``results/`` change nothing.
Run by hand (never a test)::

    .venv/bin/python benchmarks/dry_run.py                     # every study, every scale
    .venv/bin/python benchmarks/dry_run.py --only demo --no-write

Writes benchmarks/results/dry_run.json (:mod:`benchmark_results`), shown in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from benchmark_results import load_at_start, record

ROOT = Path(__file__).resolve().parents[1]
GOAL = 10.0
SCALES = ("quick", "medium", "full")


def environment() -> dict[str, str]:
    """This environment with the checkout's sources first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    return env


def studies() -> list[tuple[str, list[str]]]:
    """(name, scales) of every ready-made study, as `losslab list studies` finds them from
    the checkout's root (the first file of a name wins, as `losslab run NAME` picks it)."""
    sys.path.insert(0, str(ROOT / "src"))
    from losslab.catalogue import list_studies

    found: dict[str, list[str]] = {}
    cwd = Path.cwd()
    os.chdir(ROOT)
    try:
        listed = list_studies()
    finally:
        os.chdir(cwd)
    for path, name, _ in listed:
        if name not in found:
            scales = tomllib.loads(path.read_text(encoding="utf-8")).get("scales", {})
            found[name] = list(scales)
    return sorted(found.items())


def timed_dry_run(name: str, scale: str, out: Path) -> float:
    """Wall seconds of one dry run; a failing one stops the benchmark with its output."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "losslab.cli", "run", name, "--scale", scale,
                           "--dry-run", "--device", "cpu", "--out", str(out)],
                          cwd=ROOT, env=environment(), capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"`losslab run {name} --scale {scale} --dry-run` failed "
                         f"({done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", default=[],
                        help="time only this study (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    load = load_at_start()
    listed = [(n, s) for n, s in studies() if not args.only or n in args.only]
    if not listed:
        raise SystemExit(f"no ready-made study named {', '.join(args.only)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        first, scales = listed[0]
        timed_dry_run(first, scales[0], work / "warm-up")
        for name, scales in listed:
            row = {"study": name, **{s: "—" for s in SCALES}}
            for scale in scales:
                seconds = timed_dry_run(name, scale, work / name)
                row[scale] = f"{seconds:.1f}"
                print(f"{name:24s} {scale:8s} {seconds:6.1f} s", flush=True)
            rows.append(row)
    timed = [(float(r[s]), r["study"], s) for r in rows for s in SCALES if r[s] != "—"]
    slowest = max(timed)
    within = slowest[0] <= GOAL
    print(f"slowest: {slowest[1]} {slowest[2]} {slowest[0]:.1f} s "
          f"({'within' if within else 'NOT within'} the goal of {GOAL:g} s)")
    if args.no_write or args.only:
        return
    columns = [{"title": "study", "cell": "`{study}`"},
               *({"title": f"{s} (s)", "cell": "{" + s + "}"} for s in SCALES)]
    record("dry_run", columns, rows, load, goal_seconds=GOAL,
           slowest={"study": slowest[1], "scale": slowest[2], "seconds": slowest[0]},
           source=f"slowest {slowest[1]} {slowest[2]}, {slowest[0]:.1f} s; goal: every dry "
                  f"run at most {GOAL:g} s ({'met' if within else 'NOT met'})")


if __name__ == "__main__":
    main()
