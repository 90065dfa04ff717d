"""Build the HTML report of a study: ``build_report(results, out_dir) -> out_dir/index.html``.

``results`` is anything with the interface of :class:`losslab.study.StudyResults`:
``cells()``, ``curves()``, ``measurements()`` (tidy DataFrames), ``axes()``,
``study_text()`` and ``environment()``. The report holds the figures of
:mod:`losslab.report.figures` that the study's data allows (a figure whose data the study
did not record is listed with the reason instead), the tables of
:mod:`losslab.report.tables`, the study file, the environment and the run times.

Figures are cached by content (joblib ``Memory`` style): each figure's file name holds a
hash of its input data and of the report's code, so a rebuild draws only what changed, and
figures that are missing are drawn in parallel. Stale figure files are removed.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from losslab.errors import LosslabError
from losslab.report import figures as F
from losslab.report import tables
from losslab.report.html import render
from losslab.report.style import DPI

FIGURE_DIR = "figures"
# More groups than this per figure kind would bury the page; the rest are named instead.
MAX_PER_KIND = 24
_AXIS_ORDER = ("dataset", "model", "activation", "loss", "optimizer", "lr", "weight_decay",
               "label_noise_rate", "label_noise_kind", "input_noise_eps", "steps")


@dataclass
class FigureJob:
    """One figure to draw: ``draw(*args, **kwargs)`` returns a matplotlib Figure."""

    slug: str
    title: str
    draw: Callable[..., Any]
    args: tuple = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    png: str = ""
    svg: str = ""


@dataclass
class Section:
    """A figure kind of the issue's list: what it answers, its figures, why some are absent."""

    key: str
    title: str
    answers: str
    jobs: list[FigureJob] = field(default_factory=list)
    omitted: list[str] = field(default_factory=list)


# What each figure answers (also the list of docs/report.md).
SECTIONS = {
    "shapes": ("Loss shapes", "How does each loss, and its gradient, respond to the output "
               "of the correct class? (Janocha & Czarnecki, Fig. 1)"),
    "curves": ("Learning curves", "How fast and how far does each loss train, on the "
               "training and the test set? (Janocha Figs. 2-3)"),
    "boundaries": ("Decision boundaries", "What does each loss's classifier look like on "
                   "2-D data? (Janocha Fig. 2)"),
    "speed": ("Speed of learning and noise", "Which losses learn fast, and which stay "
              "accurate under input and label noise? (Janocha Figs. 3-4)"),
    "two_scale": ("Two-scale losses", "Does a second scale help, for which eta, and how "
                  "confident are the predictions? (Berlyand et al. Figs. 1-11)"),
    "activations": ("Activations", "Do gradients vanish in the lower layers, and which "
                    "activation trains best? (Mendez-Vazquez slides)"),
    "heat": ("Heat maps", "How does the final test accuracy vary over two axes of the "
             "grid at once?"),
}


def code_version() -> str:
    """Hash of the report's own source files: a change to a figure redraws it."""
    digest = hashlib.sha256()
    for name in ("figures.py", "style.py"):
        digest.update((Path(__file__).parent / name).read_bytes())
    return digest.hexdigest()[:16]


def _hash_arg(digest: Any, value: Any) -> None:
    if isinstance(value, pd.DataFrame):
        digest.update(json.dumps([str(c) for c in value.columns]).encode())
        digest.update(pd.util.hash_pandas_object(value, index=False).to_numpy().tobytes())
    elif isinstance(value, np.ndarray):
        digest.update(value.tobytes())
    else:
        digest.update(json.dumps(value, sort_keys=True, default=str).encode())


def job_key(job: FigureJob, version: str) -> str:
    """Content hash of a figure: the code version, the function and all its inputs."""
    digest = hashlib.sha256(version.encode())
    digest.update(job.draw.__name__.encode())
    for arg in (*job.args, job.kwargs):
        _hash_arg(digest, arg)
    return digest.hexdigest()[:16]


def _draw(job: FigureJob, folder: str) -> None:
    fig = job.draw(*job.args, **job.kwargs)
    fig.savefig(Path(folder) / job.png, dpi=DPI)
    # the constrained layout computed for the PNG is in figure fractions and holds for the
    # SVG too: not redoing it saves about a third of the drawing time
    fig.set_layout_engine("none")
    fig.savefig(Path(folder) / job.svg)


def _split_names(kind: str) -> list[str]:
    """The measurement row names of one kind, one per split (``train_top_k``, ...)."""
    return [f"{split}_{kind}" for split in ("train", "dev", "test")]


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() else "-" for ch in text.lower())
    return "-".join(part for part in keep.split("-") if part)[:60] or "figure"


def _axes(results: Any, cells: pd.DataFrame) -> list[str]:
    axes = [a for a in results.axes() if a in cells.columns and a != "seed"]
    return sorted(axes, key=lambda a: _AXIS_ORDER.index(a) if a in _AXIS_ORDER else 99)


def _groups(cells: pd.DataFrame, keys: list[str]) -> Iterator[tuple[str, pd.DataFrame]]:
    """(title, sub-frame) per combination of ``keys``; one untitled group without keys."""
    if not keys:
        yield "", cells
        return
    for key, part in cells.groupby(keys, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        yield " / ".join(f"{k} {v}" for k, v in zip(keys, key, strict=True)), part


def _add_grouped(section: Section, cells: pd.DataFrame, keys: list[str], title: str,
                 make: Callable[[pd.DataFrame], FigureJob | str | None]) -> None:
    """One figure per combination of ``keys`` (the axes the figure does not show), so no
    mark of it mixes conditions; ``make`` returns the job, or why there is none."""
    groups = list(_groups(cells, keys))
    for name, part in groups[:MAX_PER_KIND]:
        job = make(part)
        full = f"{title}: {name}" if name else title
        if isinstance(job, str):
            section.omitted.append(f"{full}: {job}")
        elif job is not None:
            job.title = full
            job.slug = _slug(f"{section.key}-{title}-{name}")
            section.jobs.append(job)
    if len(groups) > MAX_PER_KIND:
        section.omitted.append(
            f"{title}: {len(groups) - MAX_PER_KIND} more groups not drawn (the page shows "
            f"the first {MAX_PER_KIND}); the tables below cover all of them")


def _one_value(values: pd.Series, what: str) -> str | None:
    """Why a figure with ``values`` on its x axis is not drawn, or None when it is."""
    distinct = _levels(values.dropna())
    if len(distinct) > 1:
        return None
    shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in distinct)
    return (f"not drawn: one {what} ({shown or 'none'}) on the x axis; its numbers are in "
            "the Final metrics table")


def with_clean_baseline(cells: pd.DataFrame) -> pd.DataFrame:
    """``cells`` with the noise-free cells counted as the start of every noise kind.

    A clean training set is the same whatever the kind of noise not applied to it, so a
    study records its rate-0 cells under one kind (e.g. ``symmetric``, or it excludes
    ``pairflip`` at rate 0). For figures per noise kind, each kind that has noisy cells
    but no clean ones gets a copy of the clean cells of the first kind that has them (the
    same ``cell_id`` and ``condition_id``: the same trained models).
    """
    if not {"label_noise_rate", "label_noise_kind"} <= set(cells.columns):
        return cells
    rate = pd.to_numeric(cells["label_noise_rate"], errors="coerce")
    clean = cells[rate == 0]
    if clean.empty:
        return cells
    have = _levels(clean["label_noise_kind"])
    source = clean[clean["label_noise_kind"] == have[0]]
    copies = [source.assign(label_noise_kind=kind)
              for kind in _levels(cells.loc[rate > 0, "label_noise_kind"]) if kind not in have]
    return pd.concat([cells, *copies], ignore_index=True) if copies else cells


def _levels(series: pd.Series) -> list:
    return list(dict.fromkeys(series.tolist()))


def _ids(frame: pd.DataFrame, *columns: str) -> list[str]:
    """``columns`` and the cell identifiers the figures record in their ``figure_data``."""
    wanted = ("cell_id", "condition_id", "seed", "status", *columns)
    return [c for c in dict.fromkeys(wanted) if c in frame.columns]


def loss_specs(cells: pd.DataFrame) -> list[tuple[str, str, dict[str, Any]]]:
    """(display label, registry name, keyword arguments) of each loss of the study.

    The keyword arguments are read from each cell's resolved configuration (JSON): its
    ``loss_kwargs`` (or the options beside ``name`` in a ``loss`` table).
    """
    specs: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for row in cells.drop_duplicates("loss").itertuples():
        kwargs: dict[str, Any] = {}
        try:
            config = json.loads(row.config) if isinstance(row.config, str) else {}
        except ValueError:
            config = {}
        loss = config.get("loss")
        if isinstance(loss, dict):
            # the figure sets its own reduction; the rest are the loss's own options
            kwargs = {k: v for k, v in loss.items() if k not in ("name", "reduction")}
        elif isinstance(config.get("loss_kwargs"), dict):
            kwargs = dict(config["loss_kwargs"])
        specs[str(row.loss)] = (str(row.loss), str(row.loss_name), kwargs)
    return list(specs.values())


def plan(results: Any) -> tuple[list[Section], dict[str, Any]]:
    """The report's sections (figure jobs and omissions) and the data they came from.

    Every figure shows one condition per mark: the axes of the study that a figure does
    not show (say the dataset and the noise rate for learning curves, which show the
    loss) become separate figures, one per combination; the settings ``[tune]`` chose
    per loss go with the loss. A figure whose x axis would hold a single value is not
    drawn (the tables hold its numbers), and noise-free cells start every noise kind's
    curve (:func:`with_clean_baseline`).
    """
    cells, curves, meas = results.cells(), results.curves(), results.measurements()
    axes = _axes(results, cells)
    tuned = set(results.tuned()) if hasattr(results, "tuned") else set()
    ran = cells[cells["status"].isin(("done", "diverged"))]
    done = cells[cells["status"] == "done"]
    names = set(meas["name"]) if len(meas) else set()
    sections = {key: Section(key, *text) for key, text in SECTIONS.items()}

    def facets(*shown: str) -> list[str]:
        return [a for a in axes if a not in shown and a not in tuned]

    not_loss = facets("loss")

    # 1. loss shapes
    s = sections["shapes"]
    try:
        shapes = F.loss_shape_data(loss_specs(cells))
        s.jobs.append(FigureJob("shapes", "Each loss and its derivative", F.loss_shapes,
                                (shapes,)))
    except (LosslabError, TypeError, RuntimeError) as err:
        s.omitted.append(f"loss shapes: a loss could not be evaluated on its own ({err})")

    # 2. learning curves
    s = sections["curves"]
    if ran.empty or curves.empty:
        s.omitted.append("learning curves: no cell has finished yet")
    else:
        _add_grouped(s, ran, not_loss, "Learning curves",
                     lambda part: FigureJob("", "", F.learning_curves,
                                            (part[_ids(part, "loss")], curves[curves[
                                                "cell_id"].isin(set(part["cell_id"]))])))

    # 3. decision boundaries
    s = sections["boundaries"]
    if "boundary" not in names:
        s.omitted.append("decision boundaries: the study did not record them "
                         "([measure] decision_boundary = true, 2-D datasets only)")
    else:
        _plan_boundaries(s, done, meas, not_loss)

    # 4. speed of learning, noise
    s = sections["speed"]
    if done.empty:
        s.omitted.append("speed of learning: no cell has finished yet")
    else:
        _add_grouped(s, done, not_loss, "Speed of learning",
                     lambda part: FigureJob("", "", F.speed_of_learning, (
                         part[_ids(part, "loss")],
                         curves[curves["cell_id"].isin(set(part["cell_id"]))])))
    if "label_noise_rate" in axes:
        _add_grouped(s, with_clean_baseline(done), facets("loss", "label_noise_rate"),
                     "Test accuracy against label-noise rate",
                     lambda part: _one_value(part["label_noise_rate"], "label-noise rate")
                     or FigureJob("", "", F.metric_against_axis, (
                         part[_ids(part, "loss", "label_noise_rate", "test_accuracy")],
                         "label_noise_rate")))
    else:
        s.omitted.append("accuracy against label noise: the study has one label-noise "
                         "rate (make [noise] label_noise_rate a list)")
    noisy = [n for n in _split_names("noisy_accuracy") if n in names]
    if noisy:
        rows = meas[meas["name"].isin(noisy)]
        _add_grouped(s, done, not_loss, "Accuracy against input-noise eps",
                     lambda part: _measured(part, rows, "input-noise eps")
                     or FigureJob("", "", F.measurement_curve,
                                  (part[_ids(part, "loss")], _of(rows, part)),
                                  {"names": noisy, "xlabel": "input noise eps (variance)"}))
    else:
        s.omitted.append("accuracy against input noise: the study did not record it "
                         "([measure] noise_robustness = true)")

    _plan_two_scale(sections["two_scale"], done, meas, names, not_loss)
    _plan_activations(sections["activations"], ran, curves, meas, names, facets)

    # 7. heat maps
    s = sections["heat"]
    free = [a for a in axes if a not in tuned]
    pairs = [("loss", a) for a in not_loss] if "loss" in free else (
        [(free[0], a) for a in free[1:]])
    if not pairs:
        s.omitted.append("heat maps: they need two axes with more than one value; this "
                         f"study varies {', '.join(axes) or 'none'}")
    for rows_axis, cols_axis in pairs[:4]:
        data = with_clean_baseline(done) if cols_axis == "label_noise_rate" else done

        def heat_map(
            part: pd.DataFrame, r: str = rows_axis, c: str = cols_axis
        ) -> FigureJob | str | None:
            return _one_value(part[c], F.label(c)) or (
                FigureJob("", "", F.heat_map, (part[_ids(part, r, c, "test_accuracy")], r, c)))

        _add_grouped(s, data, facets(rows_axis, cols_axis),
                     f"Test accuracy over {rows_axis} x {cols_axis}", heat_map)
    return list(sections.values()), {"cells": cells, "axes": axes}


def _of(rows: pd.DataFrame, part: pd.DataFrame) -> pd.DataFrame:
    """The measurement ``rows`` of the cells of ``part``."""
    return rows[rows["cell_id"].isin(set(part["cell_id"]))]


def _measured(part: pd.DataFrame, rows: pd.DataFrame, what: str) -> str | None:
    """Why a measurement curve of ``part`` is not drawn (no rows, one x value), or None."""
    mine = _of(rows, part)
    if mine.empty:
        return "not recorded for these cells"
    return _one_value(mine["index"].astype(float), what)


def _plan_boundaries(
    s: Section, done: pd.DataFrame, meas: pd.DataFrame, keys: list[str]
) -> None:
    from losslab.data import load_dataset

    boundary = meas[meas["name"].isin(("boundary", "boundary_extent"))]
    for name, part in list(_groups(done, keys))[:MAX_PER_KIND]:
        cells_with = part[part["cell_id"].isin(set(boundary["cell_id"]))]
        if cells_with.empty:
            continue
        row = cells_with.iloc[0]
        try:
            config = json.loads(row["config"])
            options = config.get("dataset", {})
            options = {k: v for k, v in options.items() if k != "name"} if isinstance(
                options, dict) else {}
            data = load_dataset(row["dataset"], **options)
        except (LosslabError, ValueError, TypeError, KeyError) as err:
            s.omitted.append(f"decision boundaries {name}: training points unavailable ({err})")
            continue
        points = pd.DataFrame({"x0": data.x_train[:, 0], "x1": data.x_train[:, 1],
                               "label": data.y_train})
        s.jobs.append(FigureJob(
            _slug(f"boundaries-{name}"), f"Decision boundaries: {name}" if name else
            "Decision boundaries", F.decision_boundaries,
            (cells_with[_ids(cells_with, "loss")],
             boundary[boundary["cell_id"].isin(set(cells_with["cell_id"]))], points)))


def _eta(config: str) -> float:
    try:
        loss = json.loads(config).get("loss", {})
        kwargs = loss if isinstance(loss, dict) else json.loads(config).get("loss_kwargs", {})
        return float(kwargs.get("eta", 1.0))
    except (ValueError, TypeError, AttributeError):
        return float("nan")


def _plan_two_scale(
    s: Section, done: pd.DataFrame, meas: pd.DataFrame, names: set[str], not_loss: list[str]
) -> None:
    two = done[done["loss_name"].astype(str).str.startswith("two_scale")]
    if two.empty:
        s.omitted.append("two-scale figures: the study has no two-scale loss")
        return
    etas = two.assign(eta=[_eta(c) for c in two["config"]])
    if etas["eta"].nunique() > 1:
        _add_grouped(s, etas, not_loss, "Test accuracy against eta",
                     lambda part: _one_value(part["eta"], "eta") or FigureJob(
                         "", "", F.metric_against_axis,
                         (part[_ids(part, "loss_name", "eta", "test_accuracy")], "eta"),
                         {"hue": "loss_name", "log_x": True}))
    else:
        s.omitted.append("accuracy against eta: the study has one eta per two-scale loss")
    for key, title, xlabel in (
        ("acc_at", "Close-enough accuracy against at", "at"),
        ("top_k", "Top-k accuracy against k", "k"),
    ):
        shown = [n for n in _split_names(key) if n in names]
        if shown:
            rows = meas[meas["name"].isin(shown)]

            def curve(
                part: pd.DataFrame,
                rows: pd.DataFrame = rows,
                shown: list[str] = shown,
                xlabel: str = xlabel,
            ) -> FigureJob | str | None:
                return _measured(part, rows, xlabel) or FigureJob(
                    "", "", F.measurement_curve,
                    (part[_ids(part, "loss")], _of(rows, part)),
                    {"names": shown, "xlabel": xlabel})

            _add_grouped(s, done, not_loss, title, curve)
        else:
            s.omitted.append(f"{title.lower()}: not recorded ([measure] {key} = true)")
    shown = [n for n in _split_names("superclass_accuracy") if n in names]
    if shown:
        rows = meas[meas["name"].isin(shown)]
        _add_grouped(s, done, not_loss, "Super-class accuracy",
                     lambda part: None if _of(rows, part).empty else FigureJob(
                         "", "", F.measurement_bars, (part[_ids(part, "loss")],
                                                      _of(rows, part)), {"names": shown}))
    else:
        s.omitted.append("super-class accuracy: not recorded ([measure] superclass = true, "
                         "data with coarse labels such as CIFAR-100)")
    shown = [n for kind in ("max_p", "p_correct", "dp_wrong") for n in _split_names(kind)
             if n in names]
    if shown:
        rows = meas[meas["name"].isin(shown)]
        _add_grouped(s, done, not_loss, "Probability histograms",
                     lambda part: None if _of(rows, part).empty else FigureJob(
                         "", "", F.histograms, (part[_ids(part, "loss")], _of(rows, part)),
                         {"names": shown}))
    else:
        s.omitted.append("probability histograms: not recorded ([measure] histograms = true)")
    if "loss_scale" in names:
        rows = meas[meas["name"] == "loss_scale"]
        _add_grouped(s, done, not_loss, "Trainable scales R1, R2, R_s",
                     lambda part: None if _of(rows, part).empty else FigureJob(
                         "", "", F.trajectories, (part[_ids(part, "loss")], _of(rows, part)),
                         {"name": "loss_scale", "panel": "loss", "ylabel": "scale",
                          "log_y": True, "legend": "trainable scale"}))
    else:
        s.omitted.append("scale trajectories: not recorded ([measure] loss_scales = true)")


def _plan_activations(
    s: Section,
    ran: pd.DataFrame,
    curves: pd.DataFrame,
    meas: pd.DataFrame,
    names: set[str],
    facets: Callable[..., list[str]],
) -> None:
    activation = "activation" in facets()
    panel = "activation" if activation else "loss"
    if "grad_norm" in names:
        rows = meas[meas["name"] == "grad_norm"]
        _add_grouped(s, ran, facets(panel), "Per-layer gradient norms",
                     lambda part: None if _of(rows, part).empty else FigureJob(
                         "", "", F.trajectories, (part[_ids(part, panel)], _of(rows, part)),
                         {"name": "grad_norm", "panel": panel, "ylabel": "gradient norm",
                          "log_y": True, "legend": "layer (module name)"}))
    else:
        s.omitted.append("gradient norms: not recorded ([measure] grad_norms = true)")
    if activation and not ran.empty:
        _add_grouped(s, ran, facets("activation"), "Learning curves per activation",
                     lambda part: FigureJob("", "", F.learning_curves, (
                         part[_ids(part, "activation")],
                         curves[curves["cell_id"].isin(set(part["cell_id"]))]),
                         {"hue": "activation"}))
    else:
        s.omitted.append("learning curves per activation: the study has one activation")


def draw_all(jobs: list[FigureJob], folder: Path, workers: int | None = None) -> int:
    """Name each job by its content hash and draw those whose files are missing.

    Returns the number of figures drawn. Files of ``folder`` that no job names are removed.
    """
    version = code_version()
    for job in jobs:
        key = job_key(job, version)
        job.png, job.svg = f"{job.slug}-{key}.png", f"{job.slug}-{key}.svg"
    todo = [j for j in jobs if not ((folder / j.png).exists() and (folder / j.svg).exists())]
    workers = min(len(todo), workers or os.cpu_count() or 1)
    if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
        # fork: the children start at once with the modules loaded (spawn re-imports
        # torch, seconds per child). They draw with matplotlib and pandas only, never with
        # torch, whose thread pool a forked child could not use.
        context = multiprocessing.get_context("fork")
        with cf.ProcessPoolExecutor(workers, mp_context=context) as pool:
            for future in [pool.submit(_draw, job, str(folder)) for job in todo]:
                future.result()
    else:
        for job in todo:
            _draw(job, str(folder))
    keep = {j.png for j in jobs} | {j.svg for j in jobs}
    for path in folder.iterdir():
        if path.suffix in (".png", ".svg") and path.name not in keep:
            path.unlink()
    return len(todo)


def build_report(results: Any, out_dir: str | os.PathLike, *, reference: str | None = None,
                 metric: str | None = None, workers: int | None = None) -> Path:
    """Write the study's report: ``out_dir/index.html`` with figures in ``out_dir/figures``.

    Args:
        results: a :class:`losslab.study.StudyResults` (or anything with its methods:
            ``cells``, ``curves``, ``measurements``, ``axes``, ``tuned``, ``tuning``,
            ``study_text``, ``environment``).
        out_dir: the report's folder (created if missing; its ``figures`` folder is owned
            by the report, old figures there are replaced).
        reference: the loss the paired tests compare with (default: log loss when the
            study has it, else its first loss).
        metric: the final metric ranked and compared (default: test accuracy, else dev,
            else train accuracy).
        workers: processes drawing figures (default: one per CPU core).

    Returns:
        The path of ``index.html``.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise LosslabError(f"report folder {out} exists and is not a folder; choose another")
    folder = out / FIGURE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    sections, data = plan(results)
    # the tables first: a bad reference or metric is reported before any drawing
    context = tables.context(results, data["cells"], data["axes"], reference, metric)
    drawn = draw_all([j for s in sections for j in s.jobs], folder, workers)
    context["sections"] = [
        {"key": s.key, "title": s.title, "answers": s.answers, "omitted": s.omitted,
         "figures": [{"title": j.title, "png": f"{FIGURE_DIR}/{j.png}",
                      "svg": f"{FIGURE_DIR}/{j.svg}"} for j in s.jobs]}
        for s in sections
    ]
    context["build"] = {"figures": sum(len(s.jobs) for s in sections), "drawn": drawn,
                        "seconds": time.perf_counter() - started}
    index = out / "index.html"
    index.write_text(render(context), encoding="utf-8")
    return index
