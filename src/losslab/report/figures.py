"""The report's figures: each one a function of tidy DataFrames, returning a Figure.

The DataFrames are those of :class:`losslab.study.StudyResults` (seaborn style: the
figure never reaches back into the trainer):

* ``cells``: one row per cell (``cell_id``, ``condition_id``, ``status``, the axis
  columns ``dataset``, ``model``, ``activation``, ``loss``, ..., ``seed``, final metrics);
* ``curves``: long format ``cell_id, step, metric, value``;
* ``measurements``: long format ``cell_id, step, name, index, value``.

Every figure draws one condition per mark (line, point, bar, square, panel of a
boundary): it is given the cells of one condition but the axes it shows, and the report
makes a figure per combination of the other axes. Means are over the done cells (the
seeds of that condition) with 95 % intervals by :func:`losslab.metrics.stats.t_interval`
kept inside the quantity's range (:func:`value_range`: [0, 1] for accuracies), so every
figure works for a partial study: it draws what has finished. Each returned Figure
carries what it drew: ``fig.figure_data``, one row per replicate value (columns
:data:`DATA_COLUMNS`: ``panel``, ``mark`` (the legend entry or heat-map row), ``x``,
``value``, ``cell_id``, ``condition_id``, ``seed``), and ``fig.figure_summary``, the mean
and interval per ``(panel, mark, x)`` as drawn (None for histograms and boundaries).
Every figure uses :mod:`losslab.report.style` (colour, line style AND marker per series:
readable in grey-scale print). The figures follow the seeds:

1. :func:`loss_shapes` (with :func:`loss_shape_data`): Janocha & Czarnecki 2017, Fig. 1.
2. :func:`learning_curves`: Janocha Figs. 2-3 (top rows).
3. :func:`decision_boundaries`: Janocha Fig. 2 (bottom row).
4. :func:`speed_of_learning`, :func:`metric_against_axis` (accuracy against label-noise
   rate), :func:`measurement_curve` (training accuracy against input-noise eps): Janocha
   Figs. 3-4.
5. :func:`metric_against_axis` (accuracy against eta), :func:`measurement_curve`
   (acc_at against at, top-k against k), :func:`measurement_bars` (super-class accuracy),
   :func:`histograms`, :func:`trajectories` (R1/R2/R_s): Berlyand, Creese & Jabin 2021,
   Figs. 1-11.
6. :func:`trajectories` (per-layer gradient norms) and :func:`learning_curves` with
   ``hue="activation"``: Mendez-Vazquez slides (vanishing gradients).
7. :func:`heat_map`: the final metric over two axes of the grid, CIs in the cells.
"""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from losslab.metrics.stats import t_interval
from losslab.report.style import hatch, new_figure, series_style, style

OUTPUTS = np.linspace(-4.0, 4.0, 161)
NUM_CLASSES = 4
RAW, PROBABILITY = "raw output", "probability"
LEVEL = 0.95
_LABELS = {
    "train_accuracy": "train accuracy",
    "test_accuracy": "test accuracy",
    "dev_accuracy": "dev accuracy",
    "train_loss": "train loss",
    "test_loss": "test loss",
    "dev_loss": "dev loss",
    "train_noisy_accuracy": "train accuracy under input noise",
    "test_noisy_accuracy": "test accuracy under input noise",
    "grad_norm": "gradient norm",
}


def higher_is_better(metric: str) -> bool:
    """Accuracies are better high, losses low (as :mod:`losslab.metrics.stats`)."""
    return not metric.endswith("_loss")


_KINDS = {
    "max_p": "maximal probability",
    "p_correct": "correct-class probability",
    "dp_wrong": "p_c - max p, misclassified samples",
    "top_k": "top-k accuracy",
    "acc_at": "close-enough accuracy acc_at",
    "superclass_accuracy": "super-class accuracy",
}


def label(metric: str) -> str:
    """The axis label of a metric, column or measurement name (``test_top_k`` -> ``test:
    top-k accuracy``)."""
    if metric in _LABELS:
        return _LABELS[metric]
    split, _, kind = metric.partition("_")
    if split in ("train", "dev", "test") and kind in _KINDS:
        return f"{split}: {_KINDS[kind]}"
    return metric.replace("_", " ")


#: The columns of a figure's ``figure_data`` (see the module docstring).
DATA_COLUMNS = ("panel", "mark", "x", "value", "cell_id", "condition_id", "seed")
_RAN = ("done", "diverged")


def value_range(name: str) -> tuple[float, float] | None:
    """The range a plotted quantity can take: the ``bounds`` of its 95 % intervals.

    Accuracies, shares and probabilities (``*_accuracy``, top-k, acc_at, max_p, p_correct)
    lie in [0, 1], ``dp_wrong`` (p_c - max p) in [-1, 0], gradient norms and the scales R
    in [0, inf); losses have no range (Tanimoto's and Cauchy-Schwarz's are negative).
    """
    if name in ("grad_norm", "loss_scale"):
        return (0.0, math.inf)
    _, _, kind = name.partition("_")
    if kind == "dp_wrong":
        return (-1.0, 0.0)
    if name.endswith("accuracy") or kind in ("max_p", "p_correct", "top_k", "acc_at"):
        return (0.0, 1.0)
    return None


def aggregate(frame: pd.DataFrame, by: list[str], value: str = "value",
              bounds: tuple[float, float] | None = None) -> pd.DataFrame:
    """Mean and 95 % :func:`~losslab.metrics.stats.t_interval` of ``value`` per group.

    ``frame`` holds one row per replicate (seed); NaN values are left out. Returns the
    ``by`` columns, ``mean``, ``low``, ``high`` (NaN for one replicate; inside ``bounds``)
    and ``n``.
    """
    rows = []
    data = frame.dropna(subset=[value])
    for key, group in data.groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        mean, low, high = t_interval(group[value].to_numpy(dtype=np.float64), LEVEL, bounds)
        rows.append({**dict(zip(by, key, strict=True)), "mean": mean, "low": low,
                     "high": high, "n": len(group)})
    return pd.DataFrame(rows, columns=[*by, "mean", "low", "high", "n"])


def _tidy(frame: pd.DataFrame, panel: Any, mark: Any, x: Any, value: Any) -> pd.DataFrame:
    """The ``figure_data`` rows of ``frame``: one per replicate value drawn."""
    out = pd.DataFrame({"panel": panel, "mark": mark, "x": x, "value": value},
                       index=frame.index)
    for column in ("cell_id", "condition_id", "seed"):
        out[column] = frame[column] if column in frame.columns else np.nan
    return out.reset_index(drop=True)


def _summary(data: pd.DataFrame, bounds: Callable[[Any], Any]) -> pd.DataFrame:
    """Per (panel, mark, x) of ``figure_data``: mean and interval within ``bounds(panel)``."""
    parts = [aggregate(part, ["panel", "mark", "x"], bounds=bounds(panel))
             for panel, part in data.groupby("panel", sort=False)]
    columns = ["panel", "mark", "x", "mean", "low", "high", "n"]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def _keep(fig: Figure, data: pd.DataFrame, summary: pd.DataFrame | None = None) -> Figure:
    # The report's own attributes on matplotlib's Figure, which declares no such names.
    vars(fig).update(figure_data=data, figure_summary=summary)
    return fig


def _levels(series: pd.Series) -> list:
    """Distinct values in order of first appearance (the study file's order)."""
    return list(dict.fromkeys(series.tolist()))


def _line(
    ax: Axes,
    x: pd.Series,
    mean: pd.Series,
    low: pd.Series,
    high: pd.Series,
    i: int,
    name: str,
    n_points: int | None = None,
) -> None:
    kw = series_style(i)
    # A marker at every point of a long curve hides the curve; ~8 per line is enough.
    every = max(1, len(x) // 8) if n_points is None else n_points
    ax.plot(x, mean, label=name, markevery=every, **kw)
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    if np.isfinite(low).any():
        ax.fill_between(x, low, high, color=kw["color"], alpha=0.15, linewidth=0)


def _draw_lines(
    ax: Axes, summary: pd.DataFrame, panel: Any, levels: list, n_points: int | None = None
) -> None:
    """One line per mark level of ``panel``, in the study's order (a level keeps its style)."""
    part = summary[summary["panel"] == panel]
    for i, level in enumerate(levels):
        s = part[part["mark"] == level].sort_values("x")
        if len(s):
            _line(ax, s["x"].astype(float), s["mean"], s["low"], s["high"], i, str(level),
                  n_points)


def _legend(fig: Figure, axes: np.ndarray, n: int, title: str | None = None) -> None:
    """The figure's legend below its panels, in as many columns (at most 4) as its width holds.

    The constrained layout makes room below the panels for an "outside" legend but never
    narrows it: four columns of long names (``regularised_expectation``, ``cauchy_schwarz``)
    are wider than a one-panel figure and the savefig would cut them off.
    """
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if not handles:
        return
    for ncols in range(min(n, 4), 0, -1):
        legend = fig.legend(handles, labels, loc="outside lower center", ncols=ncols,
                            frameon=False, title=title)
        if ncols == 1 or legend.get_window_extent().width <= fig.bbox.width:
            return
        legend.remove()


# --- 1. loss shapes --------------------------------------------------------------------


def loss_shape_data(
    losses: Sequence[tuple[str, str, dict[str, Any]]],
    outputs: np.ndarray = OUTPUTS,
    num_classes: int = NUM_CLASSES,
) -> pd.DataFrame:
    r"""Each loss and its derivative with respect to the output on a positive sample.

    The sample has label 0 and logits :math:`(o, 0, \dots, 0)`, so the output o of the
    correct class moves while the others stay at 0 (for softmax
    :math:`p_c = e^o / (e^o + C - 1)`). Values and :math:`\partial \ell / \partial o` come
    from the loss module itself by autograd in float64, so a user-registered loss is drawn
    like the built-in ones. Two-scale losses are attached to a constant scale R = 1
    (R1 = 1, R2 = 10), which shows their jump at the threshold eta. A loss is put in the
    "probability" panel when it is a :class:`~losslab.losses.ProbabilityLoss` or does
    not change when the same constant is added to every logit (softmax is shift
    invariant), else in the "raw output" panel. Seed: Janocha & Czarnecki 2017, section 2,
    Fig. 1 and Proposition 2.

    Args:
        losses: ``(label, registry name, keyword arguments)`` per loss.
        outputs: the K outputs o, shape (K,).
        num_classes: C >= 2 (default 4).

    Returns:
        Long DataFrame, columns ``loss``, ``kind`` (``"raw output"`` or ``"probability"``),
        ``output``, ``value``, ``derivative``; K rows per loss.
    """
    import torch

    from losslab.losses import ProbabilityLoss, get_loss

    logits = torch.zeros(len(outputs), num_classes, dtype=torch.float64)
    logits[:, 0] = torch.as_tensor(outputs, dtype=torch.float64)
    labels = torch.zeros(len(outputs), dtype=torch.int64)
    frames = []
    for name_label, name, kwargs in losses:
        loss = get_loss(name, reduction="none", **kwargs).double()
        if getattr(loss, "requires_scale", False):
            loss.attach(1.0)
        o = logits.clone().requires_grad_(True)
        values = loss(o, labels)
        # The samples are independent, so the gradient of the sum holds each d loss_i / d o_i.
        (grad,) = torch.autograd.grad(values.sum(), o)
        with torch.no_grad():
            shifted = loss(logits + 1.75, labels)
            invariant = torch.allclose(shifted, values.detach(), rtol=1e-9, atol=1e-12)
        kind = PROBABILITY if isinstance(loss, ProbabilityLoss) or invariant else RAW
        frames.append(pd.DataFrame({
            "loss": name_label, "kind": kind, "output": outputs,
            "value": values.detach().numpy(), "derivative": grad[:, 0].numpy(),
        }))
    return pd.concat(frames, ignore_index=True)


def loss_shapes(data: pd.DataFrame) -> Figure:
    """Janocha & Czarnecki's Fig. 1: value (top) and derivative (bottom) of each loss.

    Args:
        data: the DataFrame of :func:`loss_shape_data`.

    Returns:
        A 2 x k figure, one column per kind present (raw output, probability); symlog y
        axes fit the quadratic and cubic losses next to the bounded ones.
    """
    kinds = [k for k in (RAW, PROBABILITY) if k in set(data["kind"])]
    # a loss keeps its study-order style in both panels and in the other figures
    order = _levels(data["loss"])
    with style():
        fig, axes = new_figure(2, len(kinds), width=5.2, height=3.3, sharex=True)
        for col, kind in enumerate(kinds):
            part = data[data["kind"] == kind]
            for name in _levels(part["loss"]):
                curve = part[part["loss"] == name]
                for row, column in enumerate(("value", "derivative")):
                    axes[row, col].plot(curve["output"], curve[column], label=name,
                                        markevery=20, **series_style(order.index(name)))
            axes[0, col].set_title(f"losses on the {kind}")
            axes[0, col].set_ylabel("loss on a positive sample")
            axes[1, col].set_ylabel("d loss / d output (autograd)")
            axes[1, col].set_xlabel("output o of the correct class (other outputs 0)")
            for row, column in enumerate(("value", "derivative")):
                # symlog only when L2 or the cubed hinge would flatten the bounded losses
                if part[column].abs().max() > 10:
                    axes[row, col].set_yscale("symlog", linthresh=1.0)
                    axes[row, col].yaxis.set_major_formatter(ScalarFormatter())
                axes[row, col].axvline(0.0, color="grey", linewidth=0.5)
            axes[0, col].legend(ncols=2, fontsize=7)
    return fig


# --- 2 / 6. learning curves ------------------------------------------------------------


def learning_curves(
    cells: pd.DataFrame,
    curves: pd.DataFrame,
    metrics: Sequence[str] = ("train_accuracy", "test_accuracy"),
    hue: str = "loss",
) -> Figure:
    """Learning curves: metric against step, mean and 95 % band over seeds, a line per hue.

    Janocha & Czarnecki 2017, Figs. 2-3 (top rows).

    Args:
        cells: the cells of one condition but ``hue`` (e.g. one dataset x model x noise),
            any status; the rows with status "done" or "diverged" are drawn (a diverged
            curve ends early).
        curves: long ``cell_id, step, metric, value`` rows (any superset).
        metrics: one panel per metric that has data.
        hue: the cells' column that tells the lines apart (``"loss"``, ``"activation"``).
    """
    use = cells[cells["status"].isin(_RAN)]
    use = use[[c for c in dict.fromkeys(("cell_id", "condition_id", "seed", hue))
               if c in use.columns]]
    joined = curves[curves["metric"].isin(metrics)].merge(use, on="cell_id")
    shown = [m for m in metrics if m in set(joined["metric"])]
    levels = _levels(use[hue])
    data = _tidy(joined, joined["metric"], joined[hue], joined["step"], joined["value"])
    summary = _summary(data, value_range)
    with style():
        fig, axes = new_figure(1, max(1, len(shown)), width=4.6, height=3.4, sharey=True)
        for ax, metric in zip(axes.flat, shown, strict=False):
            _draw_lines(ax, summary, metric, levels)
            ax.set_title(label(metric))
            ax.set_xlabel("step")
        axes[0, 0].set_ylabel("mean over seeds, 95 % band")
        _legend(fig, axes, len(levels))
    return _keep(fig, data, summary)


# --- 3. decision boundaries ------------------------------------------------------------


def decision_boundaries(
    cells: pd.DataFrame, measurements: pd.DataFrame, points: pd.DataFrame
) -> Figure:
    """Predicted class over the input plane, one panel per loss, training points on top.

    Janocha & Czarnecki 2017, Fig. 2 (bottom row).

    Args:
        cells: the done cells of one 2-D dataset x model; the lowest seed of each loss
            is drawn.
        measurements: the ``decision_boundary`` rows of
            :class:`losslab.metrics.measurements.DecisionBoundary`: ``boundary`` with index
            ``"i,j"`` (row i along the second feature, column j along the first) and value
            the predicted class, and ``boundary_extent`` (``x_min``, ``x_max``, ``y_min``,
            ``y_max``).
        points: training points, columns ``x0``, ``x1``, ``label``.
    """
    done = cells[cells["status"] == "done"].sort_values("seed", kind="stable")
    grid = measurements[measurements["name"] == "boundary"]
    first = done[done["cell_id"].isin(set(grid["cell_id"]))].drop_duplicates("loss")
    ncols = min(4, max(1, len(first)))
    nrows = -(-len(first) // ncols)
    classes = int(max(points["label"].max(), grid["value"].max())) + 1
    # each region in its class's colour, lightened: the points on top keep their contrast
    regions = ListedColormap([series_style(c)["color"] for c in range(classes)])
    with style():
        fig, axes = new_figure(max(1, nrows), ncols, width=2.8, height=2.8, sharex=True,
                               sharey=True)
        for ax in axes.flat[len(first):]:
            ax.set_visible(False)
        for ax, row in zip(axes.flat, first.itertuples(), strict=False):
            mine = measurements[measurements["cell_id"] == row.cell_id]
            cls = mine[mine["name"] == "boundary"]
            ij = cls["index"].str.split(",", n=1, expand=True).astype(int).to_numpy()
            image = np.full((ij[:, 0].max() + 1, ij[:, 1].max() + 1), np.nan)
            image[ij[:, 0], ij[:, 1]] = cls["value"].to_numpy()
            extent = mine[mine["name"] == "boundary_extent"].set_index("index")["value"]
            ax.imshow(image, origin="lower", cmap=regions, vmin=-0.5, vmax=classes - 0.5,
                      alpha=0.3, interpolation="nearest", aspect="auto",
                      extent=[extent[k] for k in ("x_min", "x_max", "y_min", "y_max")])
            for c in range(classes):
                p = points[points["label"] == c]
                kw = series_style(c)
                ax.scatter(p["x0"], p["x1"], s=6, marker=kw["marker"], color=kw["color"],
                           linewidths=0)
            ax.set_title(str(row.loss))
            ax.grid(False)
    return _keep(fig, _tidy(first, first["loss"], first["loss"], 0.0, np.nan))


# --- 4. speed of learning, noise -------------------------------------------------------


def speed_data(cells: pd.DataFrame, curves: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Each done cell's speed of learning: its mean ``metric`` over the window.

    The window runs from 10 % of the cell's last recorded step to that step, the share of
    Janocha & Czarnecki's 10k-100k of 100k iterations (section 3, Fig. 3); the mean is
    exact over the linearly interpolated curve (:func:`losslab.metrics.speed_of_learning`).

    Returns:
        Columns ``cell_id``, ``value``, ``loss`` (and ``condition_id``, ``seed`` when the
        cells have them); cells whose curve has fewer than two points are left out.
    """
    from losslab.metrics import speed_of_learning as sol

    done = cells[cells["status"] == "done"]
    done = done[[c for c in ("cell_id", "loss", "condition_id", "seed") if c in done.columns]]
    data = curves[curves["metric"] == metric].dropna(subset=["value"])
    rows = []
    for cell_id, c in data[data["cell_id"].isin(set(done["cell_id"]))].groupby("cell_id"):
        c = c.sort_values("step")
        steps = c["step"].to_numpy()
        if len(steps) < 2:
            continue
        hi = int(steps[-1])
        lo = min(max(int(steps[0]), int(round(0.1 * hi))), hi)
        rows.append({"cell_id": cell_id, "value": float(sol(steps, c["value"].to_numpy(),
                                                            window=(lo, hi)))})
    return pd.DataFrame(rows, columns=["cell_id", "value"]).merge(done, on="cell_id")


def speed_of_learning(
    cells: pd.DataFrame,
    curves: pd.DataFrame,
    metrics: Sequence[str] = ("train_accuracy", "test_accuracy"),
) -> Figure:
    """Speed of learning per loss (mean and 95 % CI over seeds), one panel per metric.

    Janocha & Czarnecki 2017, Fig. 3 (bottom left); the window is :func:`speed_data`'s.
    ``cells`` are those of one condition but the loss.
    """
    levels = _levels(cells["loss"])
    y = np.arange(len(levels))
    parts = []
    for metric in metrics:
        s = speed_data(cells, curves, metric)
        parts.append(_tidy(s, metric, s["loss"], 0.0, s["value"]))
    data = pd.concat(parts, ignore_index=True)
    summary = _summary(data, value_range)
    with style():
        fig, axes = new_figure(1, len(metrics), width=4.0, height=1.3 + 0.3 * len(levels),
                               sharey=True)
        for ax, metric in zip(axes.flat, metrics, strict=True):
            # the study's loss order, so that a loss keeps its style in every figure
            s = summary[summary["panel"] == metric].set_index("mark").reindex(levels)
            for i, (mean, low, high) in enumerate(zip(s["mean"], s["low"], s["high"],
                                                      strict=True)):
                kw = series_style(i)
                err = [[mean - low], [high - mean]] if np.isfinite(low) else None
                ax.errorbar(mean, y[i], xerr=err, fmt=kw["marker"], color=kw["color"],
                            capsize=3)
            ax.set_yticks(y, [str(v) for v in levels])
            ax.set_xlabel(f"mean {label(metric)} over the run's last 90 %")
            ax.set_title(f"speed of learning: {label(metric)}")
        axes[0, 0].invert_yaxis()
    return _keep(fig, data, summary)


def metric_against_axis(
    cells: pd.DataFrame, x: str, metric: str = "test_accuracy", hue: str = "loss",
    log_x: bool = False,
) -> Figure:
    """A final metric against a numeric axis (mean and 95 % CI over seeds), a line per hue.

    Test accuracy against the label-noise rate is Janocha & Czarnecki 2017, Fig. 4
    (right); against eta it is Berlyand, Creese & Jabin 2021, Figs. 10-11.

    Args:
        cells: the done cells of one condition but ``x`` and ``hue``; ``x`` is a numeric
            column of them.
        x: the column on the x axis (``"label_noise_rate"``, ``"eta"``, ...).
        metric: the final-metric column on the y axis.
        hue: the column that tells the lines apart.
        log_x: a logarithmic x axis (for eta).
    """
    done = cells[cells["status"] == "done"]
    data = _tidy(done, "", done[hue], done[x].astype(float), done[metric])
    summary = _summary(data, lambda _: value_range(metric))
    levels = _levels(done[hue])
    with style():
        fig, axes = new_figure(1, 1, width=5.6, height=3.6)
        ax = axes[0, 0]
        _draw_lines(ax, summary, "", levels, 1)
        if log_x:
            ax.set_xscale("log")
        ax.set_xlabel(label(x))
        ax.set_ylabel(f"{label(metric)} (mean, 95 % CI)")
        _legend(fig, axes, len(levels))
    return _keep(fig, data, summary)


# --- 5 / 6. measurements ----------------------------------------------------------------


def _final_rows(cells: pd.DataFrame, measurements: pd.DataFrame,
                names: Sequence[str], hue: str = "loss") -> pd.DataFrame:
    """The last-step rows of the measurements ``names`` of the done cells, with ``hue``
    (and the cells' ``condition_id`` and ``seed`` when present)."""
    m = measurements[measurements["name"].isin(names)]
    m = m[m["step"] == m.groupby("cell_id")["step"].transform("max")]
    done = cells[cells["status"] == "done"]
    keep = [c for c in dict.fromkeys(("cell_id", hue, "condition_id", "seed"))
            if c in done.columns]
    return m.merge(done[keep], on="cell_id")


def _panels(names: Sequence[str], present: set) -> list[str]:
    return [n for n in names if n in present]


def measurement_curve(
    cells: pd.DataFrame, measurements: pd.DataFrame, names: Sequence[str], xlabel: str,
    hue: str = "loss", log_x: bool = False,
) -> Figure:
    """Final measurements whose index is a number (eps, at, k) against that number.

    One panel per measurement name present (e.g. ``train_acc_at`` and ``test_acc_at``:
    train left, test right, as in the seeds), a line per loss, mean and 95 % CI over
    seeds. Training accuracy against input-noise eps (``train_noisy_accuracy``) is
    Janocha & Czarnecki 2017, Fig. 4 (left); acc_at against at and top-k against k are
    Berlyand, Creese & Jabin 2021, Figs. 2-3 and 7.

    Args:
        cells, measurements: as in the module docstring; the cells of one condition but
            ``hue``.
        names: the measurement row names, one panel each; their index parses as a float.
        xlabel: the x axis label.
        hue: the cells' column that tells the lines apart.
        log_x: logarithmic x axis.
    """
    rows = _final_rows(cells, measurements, names, hue)
    shown = _panels(names, set(rows["name"]))
    levels = _levels(rows[hue])
    data = _tidy(rows, rows["name"], rows[hue], rows["index"].astype(float), rows["value"])
    summary = _summary(data, value_range)
    with style():
        fig, axes = new_figure(1, len(shown), width=4.4, height=3.4, sharey=True)
        for ax, name in zip(axes.flat, shown, strict=True):
            _draw_lines(ax, summary, name, levels, 1)
            if log_x:
                ax.set_xscale("log")
            ax.set_xlabel(xlabel)
            ax.set_title(label(name))
        axes[0, 0].set_ylabel("mean over seeds, 95 % CI")
        _legend(fig, axes, len(levels))
    return _keep(fig, data, summary)


def measurement_bars(
    cells: pd.DataFrame, measurements: pd.DataFrame, names: Sequence[str]
) -> Figure:
    """A final scalar measurement per loss: bars per measurement name, 95 % CI whiskers.

    Super-class accuracy (``train_superclass_accuracy``, ``test_superclass_accuracy``) is
    Berlyand, Creese & Jabin 2021, Fig. 7. ``cells`` are those of one condition but the
    loss.
    """
    rows = _final_rows(cells, measurements, names)
    groups, losses = _panels(names, set(rows["name"])), _levels(rows["loss"])
    data = _tidy(rows, "", rows["loss"], rows["name"], rows["value"])
    summary = pd.concat([aggregate(data[data["x"] == name], ["panel", "mark", "x"],
                                   bounds=value_range(name)) for name in groups],
                        ignore_index=True)
    width = 0.8 / max(1, len(losses))
    with style():
        fig, axes = new_figure(1, 1, width=max(4.0, 1.6 * len(groups) * len(losses) ** 0.5),
                               height=3.4)
        ax = axes[0, 0]
        for i, loss in enumerate(losses):
            part = summary[summary["mark"] == loss].set_index("x").reindex(groups)
            xs = np.arange(len(groups)) + (i - (len(losses) - 1) / 2) * width
            err = np.nan_to_num(np.vstack([part["mean"] - part["low"],
                                           part["high"] - part["mean"]]))
            ax.bar(xs, part["mean"], width, yerr=err, capsize=2,
                   color=series_style(i)["color"], hatch=hatch(i), edgecolor="black",
                   linewidth=0.5, label=str(loss))
        ax.set_xticks(np.arange(len(groups)), [label(g) for g in groups])
        ax.set_ylabel("mean over seeds, 95 % CI")
        _legend(fig, axes, len(losses))
    return _keep(fig, data, summary)


def histograms(cells: pd.DataFrame, measurements: pd.DataFrame, names: Sequence[str]) -> Figure:
    """Probability histograms, counts summed over seeds, shown as shares; a panel per name.

    The rows of :class:`losslab.metrics.measurements.Histograms`: ``<split>_max_p``
    (maximal probability), ``<split>_p_correct`` (correct-class probability),
    ``<split>_dp_wrong`` (p_c - max p on misclassified samples), index the bin's left
    edge, value its count. Berlyand, Creese & Jabin 2021, Figs. 4-6. ``cells`` are those
    of one condition but the loss.
    """
    rows = _final_rows(cells, measurements, names)
    rows = rows.assign(edge=rows["index"].astype(float))
    shown, losses = _panels(names, set(rows["name"])), _levels(rows["loss"])
    data = _tidy(rows, rows["name"], rows["loss"], rows["edge"], rows["value"])
    with style():
        fig, axes = new_figure(1, len(shown), width=4.2, height=3.2)
        for ax, name in zip(axes.flat, shown, strict=True):
            total = rows[rows["name"] == name].groupby(["loss", "edge"], sort=False)[
                "value"].sum().reset_index()
            for i, loss in enumerate(losses):
                h = total[total["loss"] == loss].sort_values("edge")
                if h.empty:
                    continue
                width = np.diff(h["edge"]).min() if len(h) > 1 else 1.0
                share = h["value"] / max(h["value"].sum(), 1)
                kw = series_style(i)
                ax.step(np.append(h["edge"], h["edge"].iloc[-1] + width),
                        np.append(share, share.iloc[-1]), where="post", color=kw["color"],
                        linestyle=kw["linestyle"], label=str(loss))
            ax.set_title(label(name))
            ax.set_ylabel("share of samples")
        _legend(fig, axes, len(losses))
    return _keep(fig, data)


def trajectories(
    cells: pd.DataFrame, measurements: pd.DataFrame, name: str, panel: str, ylabel: str,
    log_y: bool = False, legend: str | None = None,
) -> Figure:
    """A per-step measurement, a line per index (layer, scale), a panel per ``panel`` level.

    Mean and 95 % band over seeds. Per-layer gradient norms (``name="grad_norm"``,
    ``panel="activation"``) show vanishing gradients (Mendez-Vazquez slides); the
    trainable scales R1, R2, R_s (``"loss_scale"``, ``panel="loss"``) follow Berlyand,
    Creese & Jabin 2021, section 2.3. ``cells`` are those of one condition but ``panel``.
    """
    m = measurements[measurements["name"] == name]
    ran = cells[cells["status"].isin(_RAN)]
    m = m.merge(ran[[c for c in dict.fromkeys(("cell_id", panel, "condition_id", "seed"))
                     if c in ran.columns]], on="cell_id")
    panels, indices = _levels(m[panel]), _levels(m["index"])
    data = _tidy(m, m[panel], m["index"], m["step"], m["value"])
    summary = _summary(data, lambda _: value_range(name))
    ncols = min(3, len(panels))
    nrows = -(-len(panels) // ncols)
    with style():
        fig, axes = new_figure(nrows, ncols, width=4.2, height=3.0, sharey=True)
        for ax in axes.flat[len(panels):]:
            ax.set_visible(False)
        for ax, level in zip(axes.flat, panels, strict=False):
            _draw_lines(ax, summary, level, indices)
            ax.set_title(str(level))
            ax.set_xlabel("step")
            if log_y:
                ax.set_yscale("log")
        axes[0, 0].set_ylabel(ylabel)
        _legend(fig, axes, len(indices), legend)
    return _keep(fig, data, summary)


# --- 7. heat map --------------------------------------------------------------------------


def heat_map(cells: pd.DataFrame, rows: str, cols: str, metric: str = "test_accuracy") -> Figure:
    """The final ``metric`` over two axes: mean over seeds and its 95 % CI in each square.

    ``cells`` are the done cells of one condition but ``rows`` and ``cols`` (the report
    draws one heat map per combination of the other axes), so each square is one
    condition; each shows ``mean`` and ``[low, high]``, the
    :func:`~losslab.metrics.stats.t_interval` inside the metric's range (n = 1: no CI).
    The grey scale runs from worst (light) to best (dark) whatever the metric's sense.
    """
    done = cells[cells["status"] == "done"]
    data = _tidy(done, "", done[rows], done[cols], done[metric])
    summary = _summary(data, lambda _: value_range(metric))
    r_levels, c_levels = _levels(done[rows]), _levels(done[cols])
    cell = summary.set_index(["mark", "x"])
    with style():
        fig, axes = new_figure(1, 1, width=max(4.2, 1.6 + 1.2 * len(c_levels)),
                               height=1.6 + 0.6 * len(r_levels))
        ax = axes[0, 0]
        values = np.full((len(r_levels), len(c_levels)), np.nan)
        for (i, r), (j, c) in itertools.product(enumerate(r_levels), enumerate(c_levels)):
            if (r, c) in cell.index:
                values[i, j] = cell.loc[(r, c), "mean"]
        shade = values if higher_is_better(metric) else -values
        finite = shade[np.isfinite(shade)]
        lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
        ax.imshow(shade, cmap="Greys", vmin=lo - 0.35 * (hi - lo or 1), vmax=hi,
                  aspect="auto")
        ax.grid(False)
        for (i, j), v in np.ndenumerate(values):
            if not np.isfinite(v):
                ax.text(j, i, "-", ha="center", va="center")
                continue
            s = cell.loc[(r_levels[i], c_levels[j])]
            text = f"{v:.3f}" + (f"\n[{s['low']:.3f}, {s['high']:.3f}]"
                                 if np.isfinite(s["low"]) else "")
            dark = (shade[i, j] - lo) > 0.6 * (hi - lo)
            ax.text(j, i, text, ha="center", va="center", fontsize=7,
                    color="white" if dark else "black")
        ax.set_xticks(range(len(c_levels)), [str(c) for c in c_levels], rotation=30,
                      ha="right")
        ax.set_yticks(range(len(r_levels)), [str(r) for r in r_levels])
        ax.set_xlabel(label(cols))
        ax.set_ylabel(label(rows))
        # a figure-wide title, wrapped: an axes title over a narrow map was clipped
        fig.suptitle(textwrap.fill(f"{label(metric)}: mean over seeds [95 % CI]", 36),
                     fontsize=9)
    return _keep(fig, data, summary)
