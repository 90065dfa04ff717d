"""`make demo`'s time from a warm venv, idle and under load: the README's figure.

The two commands of the Makefile's ``demo`` recipe (read from the Makefile, so the
benchmark times what ``make demo`` runs: ``losslab run`` of the demo study at its quick
scale, then ``losslab report``), each a fresh process as ``make`` starts it, into a fresh
temporary store instead of results/demo. One untimed dry run first, so that the imports
are compiled and cached and the machine-rate cache exists, as in any venv that has run
losslab once ("warm").

Conditions: ``idle`` (whatever else runs on the machine: see ``load_at_start``) and
``loaded``: two busy processes that this script starts and stops (each spins for at most
``--load-seconds``, and both are killed when the script ends, however it ends), as in
``benchmarks/threads.py``. Goals (issue 20): at most 3 minutes idle on 2 cores, at most 2x
that loaded. Run by hand on a quiet machine (never a test)::

    .venv/bin/python benchmarks/demo.py             # about 8 minutes on 2 cores
    .venv/bin/python benchmarks/demo.py --steps 10  # a quick check that it works

``--steps`` shortens every cell (a check of the script, not the demo's time: the table
says so). Writes benchmarks/results/demo.json (:mod:`benchmark_results`), which the
README's ``results:demo`` block shows.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmark_results import load_at_start, record
from threads import environment, start_load, stop_load

ROOT = Path(__file__).resolve().parents[1]
GOAL_IDLE = 180.0  # seconds on 2 idle cores (issue 20)
GOAL_LOADED_FACTOR = 2.0


def demo_recipe(makefile: Path = ROOT / "Makefile") -> list[list[str]]:
    """The commands of the Makefile's ``demo`` target, ``$(PY)`` as this Python."""
    text = makefile.read_text(encoding="utf-8")
    match = re.search(r"^demo:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.MULTILINE)
    if match is None:
        raise SystemExit(f"{makefile} has no demo target with a recipe")
    commands = []
    for line in match.group(1).splitlines():
        line = line.strip().replace("$(PY)", sys.executable)
        if "$(" in line:
            raise SystemExit(f"the demo recipe uses a make variable this script does not "
                             f"know: {line!r}; teach demo_recipe() about it")
        commands.append(shlex.split(line))
    return commands


def _after(command: list[str], flag: str) -> str:
    try:
        return command[command.index(flag) + 1]
    except (ValueError, IndexError):
        raise SystemExit(f"the demo recipe's command {shlex.join(command)!r} has no "
                         f"{flag} argument") from None


def study_file(name: str) -> Path:
    """The study the recipe runs: a path (relative to the repository) or a ready-made
    study's name, found as ``losslab run`` finds it."""
    path = ROOT / name
    if path.is_file():
        return path
    from losslab.catalogue import study_file as ready_made
    from losslab.errors import LosslabError

    try:
        return ready_made(name).resolve()
    except LosslabError as err:
        raise SystemExit(str(err)) from None


def shortened(study: Path, steps: int, folder: Path) -> Path:
    """A copy of ``study`` with every cell cut to ``steps`` steps (one evaluation)."""
    text = study.read_text(encoding="utf-8")
    text, n = re.subn(r"^steps = \d+", f"steps = {steps}", text, flags=re.MULTILINE)
    text = re.sub(r"^eval_every = \d+", f"eval_every = {steps}", text, flags=re.MULTILINE)
    if n != 1:
        raise SystemExit(f"{study} has {n} top-level 'steps = ...' lines; expected one")
    path = folder / study.name
    path.write_text(text, encoding="utf-8")
    return path


def commands_into(recipe: list[list[str]], out: Path, study: Path | None) -> list[list[str]]:
    """The recipe writing into ``out`` instead of its results folder (and running
    ``study`` instead of its own, when given)."""
    run = next(c for c in recipe if "run" in c)
    target = _after(run, "--out")
    own = _after(run, "run")
    swap = {target: str(out)}
    return [[(swap | ({own: str(study)} if study and "run" in command else {})).get(t, t)
             for t in command] for command in recipe]


def timed(command: list[str], log: Path) -> float:
    start = time.perf_counter()
    with log.open("ab") as sink:
        done = subprocess.run(command, cwd=ROOT, env=environment({}), stdout=sink,
                              stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"{shlex.join(command)} failed ({done.returncode}):\n{tail}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None,
                        help="cut every cell to this many steps (a check of the script)")
    parser.add_argument("--load", type=int, default=2, help="busy processes (default 2)")
    parser.add_argument("--load-seconds", type=float, default=900.0,
                        help="most seconds each busy process spins (default 900)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--keep", type=Path, default=None,
                        help="copy the idle run's store here (to publish it with "
                             "`losslab publish`: the demo's results and wall time at once)")
    args = parser.parse_args()
    # A plain kill (SIGTERM) unwinds like Ctrl-C, so the busy processes die with the script.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    recipe = demo_recipe()
    study = study_file(_after(next(c for c in recipe if "run" in c), "run"))
    load = load_at_start()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        log = work / "demo.log"
        short = shortened(study, args.steps, work) if args.steps else None
        warm = commands_into(recipe, work / "warm", short)[0] + ["--dry-run"]
        timed(warm, log)
        for condition in ("idle", "loaded"):
            busy = start_load(args.load, args.load_seconds) if condition == "loaded" else []
            try:
                commands = commands_into(recipe, work / condition, short)
                seconds = [timed(command, log) for command in commands]
            finally:
                stop_load(busy)
            total = sum(seconds)
            goal = GOAL_IDLE * (GOAL_LOADED_FACTOR if condition == "loaded" else 1.0)
            rows.append({
                "condition": condition if condition == "idle"
                else f"loaded ({args.load} busy processes)",
                "setting": f"{args.steps} steps per cell (a check, not the demo)"
                if args.steps else "the demo as `make demo` runs it",
                "run": round(seconds[0], 1), "report": round(sum(seconds[1:]), 1),
                "total": round(total, 1), "minutes": f"{int(total // 60)} min {total % 60:.0f} s",
                "goal": f"{goal / 60:g} min",
                # a shortened demo says nothing about the goal
                "met": "n/a" if args.steps else "yes" if total <= goal else "no",
            })
            if condition == "idle" and args.keep is not None:
                shutil.copytree(work / condition, args.keep, dirs_exist_ok=False)
            print(f"{condition:7s} run {seconds[0]:6.1f} s  report {sum(seconds[1:]):5.1f} s  "
                  f"total {total:6.1f} s (goal {goal:.0f} s)", flush=True)
    if args.no_write:
        return
    columns = [{"title": "condition", "cell": "{condition}"},
               {"title": "what ran", "cell": "{setting}"},
               {"title": "`losslab run` s", "cell": "{run}"},
               {"title": "`losslab report` s", "cell": "{report}"},
               {"title": "`make demo`", "cell": "{minutes}"},
               {"title": "goal", "cell": "{goal}"},
               {"title": "met", "cell": "{met}"}]
    record("demo", columns, rows, load, steps=args.steps, busy_processes=args.load,
           commands=[shlex.join(c).replace(sys.executable, "$(PY)") for c in recipe],
           study=str(study.relative_to(ROOT)) if study.is_relative_to(ROOT) else str(study))


if __name__ == "__main__":
    main()
