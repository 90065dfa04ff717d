"""The study verbs of the ``losslab`` command line: run, status, export, report.

Thin: each verb calls :mod:`losslab.study` and prints. Registered into
``losslab.cli:app`` by :func:`register`.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from losslab.console import Progress, duration, interruptible, rough_duration, seconds_left
from losslab.errors import LosslabError

if TYPE_CHECKING:
    import pandas as pd

    from losslab.study.runner import RunEvents
    from losslab.study.spec import Study

_RUN_HELP = """Run a study: every cell of the grid in STUDY.toml (or in the ready-made study
of that name: losslab list studies) that is not stored yet.

Cells that differ only in loss, seed, lr or weight decay train as one stack. Results go to
DIR/study.sqlite (default DIR: results/<study name>); rerunning skips stored cells, and a
killed run continues where it stopped. Ctrl-C stops at the next step boundary.

Examples:

  losslab run demo --scale quick

  losslab run my.toml --out results/my --dry-run

  losslab run my.toml --executor process --jobs 2

  losslab run my.toml --executor ray --address auto
"""


class _Display:
    """``losslab run``'s view of the events of :func:`~losslab.study.runner.run_study`,
    shown by :class:`losslab.console.Progress`: on a terminal a bar that moves with the
    steps of the stacks in flight; otherwise a line when a stack ends and one every
    :func:`~losslab.console.progress_seconds` while stacks train; nothing with --quiet."""

    def __init__(self, quiet: bool, name: str) -> None:
        self.progress = Progress(name, ("cells", "rate", "steps"),
                                 mode="quiet" if quiet else "auto")
        self.last_cells = ""
        self.seen_messages = 0

    def __enter__(self) -> _Display:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def update(self, ev: RunEvents) -> None:
        for message in ev.messages[self.seen_messages :]:
            self.progress.message(message)
        self.seen_messages = len(ev.messages)
        steps = ev.model_steps_done + ev.model_steps_live
        elapsed = time.perf_counter() - ev.started
        rate = f"{steps / elapsed if elapsed > 0 else 0.0:,.0f} model-steps/s"
        cells = f"{ev.done}/{ev.total} cells" + (f", {ev.failed} failed" if ev.failed else "")
        live = sorted(ev.stacks_live.values(), key=lambda s: -s[0])
        running = ", ".join(f"{step}/{total}" for step, total in live[:4])
        running = (f"step {running}" if len(live) == 1 else
                   f"steps {running}" + (" ..." if len(live) > 4 else "") if live else "")
        # Each kind of stack at its own rate once one has trained; before that, the
        # model-steps left at the rate so far.
        left = ev.seconds_left
        if not math.isfinite(left):
            left = seconds_left(steps, ev.model_steps_total, elapsed)
        eta = duration(left)
        line = "  ".join(p for p in (cells, rate, running, f"ETA {eta}") if p)
        # Off a terminal a line per finished stack, the timer's lines in between.
        self.progress.update(steps, ev.model_steps_total, line, now=cells != self.last_cells,
                             cells=cells, rate=rate, steps=running)
        self.last_cells = cells


def run(
    study_file: str = typer.Argument(
        ..., help="the study file (TOML), or a ready-made study's name (losslab list studies)"
    ),
    out: str = typer.Option(None, "--out", help="study directory (default results/<name>)"),
    scale: str = typer.Option(None, "--scale",
                              help="a [scales.NAME] table of the file, e.g. quick"),
    executor: str = typer.Option(
        "auto", "--executor",
        help="auto (chosen from the plan and the cores), inprocess, process or ray"),
    jobs: int = typer.Option(None, "--jobs", min=1,
                             help="worker processes / local Ray CPUs (default: one per core)"),
    threads: int = typer.Option(None, "--threads", min=1,
                                help="torch threads per worker (default 1 on CPU)"),
    address: str = typer.Option(None, "--address", help="Ray cluster address (ray only)"),
    device: str = typer.Option("auto", "--device", help="auto (CUDA if present), cpu, cuda"),
    max_stack: int = typer.Option(64, "--max-stack", min=1, help="most models per stack"),
    checkpoint_every: float = typer.Option(
        300.0, "--checkpoint-every", min=0.0,
        help="seconds between checkpoints of a running stack (resumed after a kill)"),
    checkpoint_dir: str = typer.Option(
        None, "--checkpoint-dir",
        help="where checkpoints go (default DIR/checkpoints; on a cluster: shared storage)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="print cells, stacks, time; run nothing"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
) -> None:
    import os
    import sys

    if "torch" not in sys.modules:
        # OpenMP reads this once, when torch loads it: idle threads then sleep instead of
        # spinning, which costs 5-10x on a busy machine when a run uses several threads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from losslab.catalogue import resolve_study
    from losslab.study.runner import run_study
    from losslab.study.spec import load_study

    study = load_study(resolve_study(study_file), scale)
    if dry_run:
        _dry_run(study, out, device, max_stack, executor, jobs, threads)
        return
    started = time.perf_counter()
    with interruptible("the cells stored so far") as stop, _Display(quiet, study.name) as display:
        events = run_study(study, out, executor=executor, jobs=jobs, threads=threads,
                           address=address,
                           device=device, max_stack=max_stack, on_update=display.update,
                           stop=stop, checkpoint_every=checkpoint_every,
                           checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None)
    from losslab.study.runner import default_out

    where = out if out is not None else default_out(study)
    seconds = time.perf_counter() - started
    trained = events.trained
    if stop.is_set():
        typer.echo(f"interrupted: {events.done}/{events.total} cells stored in {where}; "
                   "run the same command again to continue", err=True)
        raise typer.Exit(130)
    if not quiet:
        line = (f"{study.name}: {events.done}/{events.total} cells stored in {where} "
                f"({trained} trained now in {duration(seconds)}")
        line += f", {events.failed} failed" if events.failed else ""
        line += f", {events.held} left to another run" if events.held else ""
        typer.echo(line + ")")


run.__doc__ = _RUN_HELP


def _dry_run(study: Study, out: str | None, device: str, max_stack: int, executor: str = "auto",
             jobs: int | None = None, threads: int | None = None) -> None:
    """Plan and estimate from the datasets' shapes and a cached machine rate: nothing is
    loaded, downloaded or trained, so it takes seconds whatever the study."""
    from losslab.study.executors import DataCache
    from losslab.study.forecast import forecast
    from losslab.study.runner import default_out
    from losslab.study.store import read_meta, store_path

    cache = DataCache()
    told = forecast(study, cache, device=device, executor=executor, jobs=jobs,
                    threads=threads, max_stack=max_stack)
    plan, policy = told.plan, told.policy
    for note in study.notes:
        typer.echo(note)
    where = out if out is not None else default_out(study)
    stored = 0
    if read_meta(where) is not None:
        from losslab.study.results import load

        frame = load(where, all_cells=True).cells()
        ids = {c.cell_id for c in plan.cells}
        stored = int(frame[frame["cell_id"].isin(ids) & frame["status"].isin(
            ["done", "diverged"])].shape[0])
    typer.echo(f"study {study.name}" + (f" (scale {study.scale})" if study.scale else "")
               + f": {len(plan.cells)} cells ({plan.excluded} excluded), "
               f"{len(plan.groups)} stacks, {stored} already stored in {store_path(where)}")
    typer.echo(f"varying axes: {', '.join(plan.varying) or 'none'}")
    missing: dict[str, str] = {}
    for group in plan.groups:
        info = cache.describe(group.config["dataset"])
        if info.missing is not None:
            missing.setdefault(info.name, info.missing)
    for why in missing.values():
        typer.echo(f"data missing: {why}")
    for group, estimate in zip(plan.groups, told.seconds, strict=True):
        first = group.cells[0].axes
        losses = len({c.axes["loss"] for c in group.cells})
        seeds = len({c.axes["seed"] for c in group.cells})
        typer.echo(
            f"  stack {group.stack_id}: {len(group.cells)} models ({losses} losses x {seeds} "
            f"seeds), {first['dataset']} / {first['model']} / {first['activation']}, "
            f"{first['steps']} steps, ~{rough_duration(estimate)}"
        )
    if study.spec.tune is not None:
        tune = study.spec.tune
        typer.echo(
            f"  [tune] {tune.method}: {told.tuning_models} tuning models first "
            f"(seeds {tune.seeds}, dev split), ~{rough_duration(told.tuning_seconds)}"
        )
    threads_text = "torch's default threads" if policy.threads is None else (
        f"{policy.threads} thread{'s' if policy.threads > 1 else ''}")
    typer.echo(f"parallelism: {policy.executor}, {policy.jobs or 'all'} worker(s) x "
               f"{threads_text} ({policy.why})")
    typer.echo(f"estimated time (this machine when idle): ~{rough_duration(told.total)}")
    if missing:
        typer.echo(f"the run stops before training until the data of {', '.join(missing)} "
                   "is there (see above)")


def status(
    directory: str = typer.Argument(..., help="a study directory"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object"),
) -> None:
    """Count the cells of a study directory by status.

    Example: losslab status results/demo --json
    """
    from losslab.study.results import load

    res = load(directory)
    counts = res.status_counts()
    if as_json:
        typer.echo(json.dumps({"study": res.meta().get("study_name"), **counts}))
        return
    parts = ", ".join(f"{counts[s]} {s}" for s in ("done", "diverged", "failed", "running",
                                                    "interrupted", "pending"))
    typer.echo(f"{res.meta().get('study_name')}: {counts['total']} cells: {parts}")
    if counts["failed"]:
        frame = res.cells()
        for _, row in frame[frame["status"] == "failed"].head(5).iterrows():
            typer.echo(f"  failed {row['cell_id']} ({row['condition']}, seed {row['seed']}): "
                       f"{row['error']}")


def export(
    directory: str = typer.Argument(..., help="a study directory"),
    fmt: str = typer.Option("csv", "--format", help="csv or parquet"),
    table: str = typer.Option("cells", "--table", help="cells, curves or measurements"),
    out: str = typer.Option(None, "--out", help="output file (default DIR/<table>.<format>)"),
) -> None:
    """Write a table of the study (cells, curves, measurements) as CSV or Parquet.

    Example: losslab export results/demo --format parquet --table curves
    """
    from losslab.study.results import load

    if fmt not in ("csv", "parquet"):
        raise LosslabError(f"--format must be csv or parquet, got {fmt!r}")
    if table not in ("cells", "curves", "measurements"):
        raise LosslabError(f"--table must be cells, curves or measurements, got {table!r}")
    frame = getattr(load(directory), table)()
    target = out or Path(directory) / f"{table}.{fmt}"
    try:
        if fmt == "csv":
            frame.to_csv(target, index=False)
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise LosslabError(
                    "--format parquet needs pyarrow: pip install 'losslab[parquet]'"
                ) from None
            frame.to_parquet(target, index=False)
    except OSError as err:
        raise LosslabError(
            f"cannot write {target} ({err.strerror}); choose another --out"
        ) from None
    typer.echo(f"wrote {len(frame)} rows to {target}")


def report(
    directory: str = typer.Argument(..., help="a study directory"),
    reference: str = typer.Option(None, help="the loss the others are compared with "
                                  "(default: log if the study has it, else its first loss)"),
    metric: str = typer.Option("test_accuracy", help="the final metric compared"),
    text: bool = typer.Option(
        False, "--text", help="print the tables in the terminal instead of writing the page"
    ),
    out: str = typer.Option(
        None, "--out", help="folder of the page (default DIR/report); e.g. for a study "
        "directory that cannot be written"),
) -> None:
    """Write the study's HTML report to DIR/report/index.html (or --out) and print its path.

    The page (figures, tables, the study file, the environment) opens offline in any
    browser; partial studies get a report that says what is missing. With --text, print
    the mean final metrics of every condition over its seeds, then the statistics:
    t intervals, ranks, paired tests against a reference loss with their verdicts, the
    bias/variance diagnosis and the settings [tune] chose.

    Example: losslab report results/demo --reference log --metric test_accuracy
    """
    from losslab.study.results import load

    results = load(directory)
    if not text:
        from losslab.report import build_report

        target = Path(out) if out is not None else Path(directory) / "report"
        try:
            typer.echo(build_report(results, target, reference=reference, metric=metric))
        except OSError as err:
            raise LosslabError(
                f"cannot write the report to {target} ({err.strerror}); pass --out with a "
                "folder that can be written"
            ) from None
        return
    from rich.console import Console
    from rich.table import Table

    frame = results.cells()
    done = frame[frame["status"].isin(["done", "diverged"])]
    table = Table(title=f"{directory}: mean ± sd over seeds (done cells)")
    for name in ("condition", "seeds", "test acc", "train acc", "test loss", "diverged"):
        table.add_column(name, justify="left" if name == "condition" else "right")
    order = frame.drop_duplicates("condition_id")["condition_id"]
    for condition_id in order:
        rows = done[done["condition_id"] == condition_id]
        label = frame.loc[frame["condition_id"] == condition_id, "condition"].iloc[0]
        if rows.empty:
            table.add_row(label, "0", "-", "-", "-", "-")
            continue
        table.add_row(
            label,
            str(len(rows)),
            _mean_sd(rows["test_accuracy"], percent=True),
            _mean_sd(rows["train_accuracy"], percent=True),
            _mean_sd(rows["test_loss"]),
            str(int((rows["status"] == "diverged").sum())),
        )
    console = Console(width=200)
    console.print(table)
    from losslab.study.stats import statistics_tables

    for extra in statistics_tables(results, reference, metric):
        console.print(extra)


def _mean_sd(values: pd.Series, percent: bool = False) -> str:
    values = values.dropna()
    if values.empty:
        return "-"
    scale = 100.0 if percent else 1.0
    mean = values.mean() * scale
    sd = values.std(ddof=1) * scale if len(values) > 1 else 0.0
    return f"{mean:.2f} ± {sd:.2f}" if percent else f"{mean:.4f} ± {sd:.4f}"


def register(app: typer.Typer) -> None:
    """Add the study verbs to the ``losslab`` app."""
    app.command("run", help=_RUN_HELP)(run)
    app.command("status")(status)
    app.command("export")(export)
    app.command("report")(report)
