"""The thread policy of `losslab run` against the obvious settings, idle and under load.

The study is the demo's first stack (src/losslab/studies/demo.toml: the checkerboard, MLP 2-200x5-4,
12 losses x its seeds, Adam, batch 50), shortened to ``--steps`` steps. Each setting is a
fresh `losslab run` process into a new directory, timed end to end (start-up and worker
start included, as a user waits for it):

* ``defaults``: no flags (:mod:`losslab.study.policy` chooses);
* ``1 thread``: ``--executor inprocess --threads 1``;
* ``2 threads``: ``--executor inprocess --threads 2`` (passive OpenMP waiting, as the CLI
  sets it);
* ``2 threads, spinning``: the same with ``OMP_WAIT_POLICY=ACTIVE`` (torch's own default
  before the policy);
* ``2 processes``: ``--executor process --jobs 2 --threads 1``.

Conditions: ``idle`` (whatever else runs on the machine: see ``load_at_start``) and
``loaded``: two busy processes that this script starts and stops (each spins for at most
``--load-seconds``, and both are killed when the script ends, however it ends). Goal: the
defaults within 1.2x of the best setting in both conditions. Run by hand (never a test)::

    .venv/bin/python benchmarks/threads.py                # about 2-3 minutes on 2 cores
    .venv/bin/python benchmarks/threads.py --steps 100    # a quick sanity run

Writes benchmarks/results/threads.json (:mod:`benchmark_results`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from benchmark_results import load_at_start, record

ROOT = Path(__file__).resolve().parents[1]
SETTINGS: list[tuple[str, list[str], dict[str, str]]] = [
    ("defaults", [], {}),
    ("1 thread", ["--executor", "inprocess", "--threads", "1"], {}),
    ("2 threads", ["--executor", "inprocess", "--threads", "2"], {}),
    ("2 threads, spinning", ["--executor", "inprocess", "--threads", "2"],
     {"OMP_WAIT_POLICY": "ACTIVE"}),
    ("2 processes", ["--executor", "process", "--jobs", "2", "--threads", "1"], {}),
]
GOAL = 1.2
BUSY = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def study_text(steps: int) -> str:
    """The demo's first stack (its checkerboard panel) at ``steps`` steps."""
    demo = tomllib.loads((ROOT / "src" / "losslab" / "studies" / "demo.toml").read_text())
    losses = ", ".join(f'"{name}"' for name in demo["losses"])
    hidden = demo["models"][0]["hidden"]
    return f"""
name = "threads"
description = "the demo's first stack: checkerboard, MLP 2-{hidden[0]}x{len(hidden)}-4"
seeds = {demo["seeds"]}
datasets = ["checkerboard"]
models = [{{name = "mlp", hidden = {hidden}}}]
losses = [{losses}]
[train]
optimizer = "adam"
lr = {demo["train"]["lr"]}
batch_size = {demo["train"]["batch_size"]}
steps = {steps}
eval_every = {steps}
"""


def environment(extra: dict[str, str]) -> dict[str, str]:
    """This environment without thread settings (the run's flags decide), plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"),
                                                      env.get("PYTHONPATH")]))
    return {**env, **extra}


def timed_run(study: Path, flags: list[str], extra: dict[str, str], work: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=work))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "losslab.cli", "run", str(study), "--out", str(out),
                    "--device", "cpu", "--quiet", *flags],
                   env=environment(extra), check=True)
    return time.perf_counter() - start


def start_load(processes: int, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=seconds)])
            for _ in range(processes)]


def stop_load(busy: list[subprocess.Popen]) -> None:
    for proc in busy:
        if proc.poll() is None:
            proc.kill()
    for proc in busy:
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="steps per run (default 200)")
    parser.add_argument("--load", type=int, default=2, help="busy processes (default 2)")
    parser.add_argument("--load-seconds", type=float, default=600.0,
                        help="most seconds each busy process spins (default 600)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    # A plain kill (SIGTERM) unwinds like Ctrl-C, so the busy processes die with the script.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    load = load_at_start()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        study = work / "threads.toml"
        study.write_text(study_text(args.steps))
        # One untimed run first: the machine-rate cache and the file system are warm after it.
        timed_run(study, ["--executor", "inprocess", "--threads", "1"], {}, work)
        for condition in ("idle", "loaded"):
            busy = start_load(args.load, args.load_seconds) if condition == "loaded" else []
            try:
                for name, flags, extra in SETTINGS:
                    seconds = timed_run(study, flags, extra, work)
                    rows.append({"condition": condition, "setting": name,
                                 "flags": " ".join(flags) or "(none)", "seconds": seconds})
                    print(f"{condition:7s} {name:22s} {seconds:7.1f} s", flush=True)
            finally:
                stop_load(busy)
    verdicts = {}
    for condition in ("idle", "loaded"):
        mine = [r for r in rows if r["condition"] == condition]
        best = min(r["seconds"] for r in mine)
        for r in mine:
            r["ratio_to_best"] = round(r["seconds"] / best, 2)
            r["seconds"] = round(r["seconds"], 1)
        ratio = next(r["ratio_to_best"] for r in mine if r["setting"] == "defaults")
        verdicts[condition] = ratio
        print(f"{condition}: defaults at {ratio:.2f}x the best setting "
              f"({'within' if ratio <= GOAL else 'NOT within'} the goal of {GOAL}x)")
    if args.no_write:
        return
    columns = [{"title": "condition", "cell": "{condition}"},
               {"title": "setting", "cell": "{setting}"},
               {"title": "seconds", "cell": "{seconds}"},
               {"title": "x best", "cell": "{ratio_to_best}"}]
    record("threads", columns, rows, load, steps=args.steps, busy_processes=args.load,
           goal=GOAL, defaults_vs_best=verdicts,
           study="the demo's first stack (checkerboard, MLP 2-200x5-4, 12 losses x seeds)")


if __name__ == "__main__":
    main()
