"""Report figures: the loss shapes against closed forms and finite differences, and the
data each figure draws against NumPy recomputations from a real tiny study."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy import stats as sps

from losslab.losses import LOSSES
from losslab.losses.two_scale import TWO_SCALE_LOSSES
from losslab.report import figures as F
from losslab.report.style import series_style

U64 = 2.0**-53  # float64 unit roundoff: the shapes are computed in float64 by autograd
# The log-softmax chain (shift, exp, sum, log) rounds each value a few times at the scale
# of max(|o|, log C) <= 4.4 here; relative to the smallest value compared (0.29) and on
# both sides: 2 * 4 u * 4.4 / 0.29 ~ 1.3e-14; 4x margin.
SHAPE_RTOL = 5e-14
# A mean over the seeds of positive values (accuracies, shares) is within (n + 1) u
# relative of exact in any summation order (n <= 3 seeds in these studies); both sides,
# 2x margin.
SEED_MEAN_RTOL = 2 * 2 * 4 * U64


def _shapes(outputs, names=None):
    names = names or list(LOSSES)
    data = F.loss_shape_data([(n, n, {}) for n in names], np.asarray(outputs, dtype=float))
    return {n: g for n, g in data.groupby("loss")}


def test_loss_shapes_match_closed_forms():
    o = np.array([-3.0, -0.5, 0.7, 2.0])
    shapes = _shapes(o, ["log", "expectation", "l2", "hinge"])
    p_c = np.exp(o) / (np.exp(o) + 3)  # softmax of (o, 0, 0, 0), class 0
    # float64 throughout: a few ulps of the exp/log chain (SHAPE_RTOL)
    np.testing.assert_allclose(shapes["log"]["value"], -np.log(p_c), rtol=SHAPE_RTOL)
    np.testing.assert_allclose(shapes["log"]["derivative"], p_c - 1, rtol=SHAPE_RTOL)
    np.testing.assert_allclose(shapes["expectation"]["value"], 2 - 2 * p_c, rtol=SHAPE_RTOL)
    np.testing.assert_allclose(shapes["expectation"]["derivative"], -2 * p_c * (1 - p_c),
                               rtol=SHAPE_RTOL)
    # l2 on logits (o, 0, 0, 0) with target (1, 0, 0, 0): (1 - o)^2, a subtraction and a
    # square (2 u) on each side: 4 u = 4.4e-16 relative
    np.testing.assert_allclose(shapes["l2"]["value"], (1 - o) ** 2, rtol=1e-15)
    np.testing.assert_allclose(shapes["l2"]["derivative"], 2 * (o - 1), rtol=1e-15)
    # hinge: max(0, 1/2 - o) for the correct class + 3 * max(0, 1/2 + 0) for the others;
    # two roundings a side as for l2, and a derivative of exactly -1 or 0
    np.testing.assert_allclose(shapes["hinge"]["value"], np.maximum(0, 0.5 - o) + 1.5,
                               rtol=1e-15)
    np.testing.assert_array_equal(shapes["hinge"]["derivative"], np.where(o < 0.5, -1.0, 0.0))


def test_panels_put_probability_losses_apart_from_raw_output_losses():
    data = F.loss_shape_data([(n, n, {}) for n in LOSSES], np.array([0.3]))
    kind = dict(zip(data["loss"], data["kind"], strict=True))
    assert {n for n, k in kind.items() if k == F.RAW} == {
        "l1", "l2", "hinge", "squared_hinge", "cubed_hinge"}
    assert kind["log"] == kind["two_scale"] == kind["alpha"] == F.PROBABILITY


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_derivative_matches_finite_differences(name):
    # away from the hinges' kinks (o = 1/2) and, for two-scale at R = 1, from eta = 1
    o = np.array([-2.3, -0.4, 0.3, 1.7, 3.1])
    h = 1e-6
    d = _shapes(o, [name])[name]["derivative"].to_numpy()
    up = _shapes(o + h, [name])[name]["value"].to_numpy()
    down = _shapes(o - h, [name])[name]["value"].to_numpy()
    # Central difference: each value is within ~16 u |f| of exact (the loss's float64 chain),
    # so rounding adds <= 16 u max|f| / h; truncation is h^2 |f'''| / 6, and at scales <= 10
    # (two-scale's R2) |f'''| <= 10^3 for these losses: <= 2e-10. 2x margin on the sum.
    rounding = 16 * U64 * np.max(np.maximum(np.abs(up), np.abs(down))) / h
    np.testing.assert_allclose(d, (up - down) / (2 * h), rtol=0, atol=2 * (rounding + 2e-10))


def test_two_scale_switches_scale_at_eta():
    # at R = 1: R1 = 1 below eta (plain log loss), R2 = 10 above it (log loss of 10 o)
    o = np.array([0.5, 1.5])
    v = _shapes(o, ["two_scale"])["two_scale"]["value"].to_numpy()
    assert v[0] == pytest.approx(-np.log(np.exp(0.5) / (np.exp(0.5) + 3)), rel=SHAPE_RTOL)
    # v[1] = log(1 + 3 e^-15) ~ 9.2e-7: log-softmax shifts by the max 15 and takes the log
    # of 1 + 9.2e-7 (absolute error ~2 u); the reference's log of p ~ 1 likewise: 4 u /
    # 9.2e-7 ~ 5e-10 relative; 2x margin
    assert v[1] == pytest.approx(-np.log(np.exp(15.0) / (np.exp(15.0) + 3)), rel=1e-9)
    assert set(TWO_SCALE_LOSSES) <= set(LOSSES)


def test_loss_shapes_figure_has_a_line_per_loss_and_both_panels():
    data = F.loss_shape_data([(n, n, {}) for n in LOSSES])
    fig = F.loss_shapes(data)
    axes = fig.axes
    assert len(axes) == 4
    raw = data[data["kind"] == F.RAW]["loss"].nunique()
    prob = data[data["kind"] == F.PROBABILITY]["loss"].nunique()
    assert sorted(len(ax.get_lines()) for ax in axes) == sorted([raw + 1, raw + 1, prob + 1,
                                                                 prob + 1])  # +1: the o = 0 rule


def test_series_styles_differ_without_colour():
    pairs = {(series_style(i)["linestyle"], series_style(i)["marker"]) for i in range(20)}
    assert len(pairs) == 20


@functools.lru_cache(maxsize=1)
def _study():
    from report_results import tiny_results

    return tiny_results()


@pytest.mark.slow
def test_learning_curves_draw_the_seed_mean_and_t_band():
    r = _study()
    cells, curves = r.cells(), r.curves()
    part = cells[cells["label_noise_rate"] == 0.0]
    fig = F.learning_curves(part, curves)
    assert isinstance(fig, Figure)
    ax = fig.axes[1]  # test accuracy
    assert ax.get_title() == "test accuracy"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == set(part["loss"])
    for loss, line in lines.items():
        ids = part[part["loss"] == loss]["cell_id"]
        c = curves[(curves["metric"] == "test_accuracy") & curves["cell_id"].isin(ids)]
        table = c.pivot(index="step", columns="cell_id", values="value")
        np.testing.assert_array_equal(line.get_xdata(), table.index.to_numpy())  # steps
        np.testing.assert_allclose(line.get_ydata(), table.mean(axis=1), rtol=SEED_MEAN_RTOL)
    # the band: mean +/- t_{0.975, n-1} s / sqrt(n) over the 2 seeds, cut to [0, 1]
    band = ax.collections[0].get_paths()[0].vertices
    ids = part[part["loss"] == part["loss"].iloc[0]]["cell_id"]
    c = curves[(curves["metric"] == "test_accuracy") & curves["cell_id"].isin(ids)]
    table = c.pivot(index="step", columns="cell_id", values="value")
    half = sps.t.ppf(0.975, 1) * table.std(axis=1, ddof=1) / np.sqrt(2)
    top = table.mean(axis=1) + half
    # t_{0.975, 1} = 12.7 times a std of 2 seeds (a few u relative each way, ~20 u after
    # the quantile and sqrt(2)) on a top of order 1: 20 u 12.7 ~ 3e-14; 3x margin
    assert np.max(band[:, 1]) == pytest.approx(min(top.max(), 1.0), rel=1e-13)
    assert band[:, 1].min() >= 0.0


@pytest.mark.slow
def test_heat_map_shows_each_condition_mean_and_bounded_t_interval():
    cells = _study().cells()  # one dataset and model: a square is one condition
    fig = F.heat_map(cells, "loss", "label_noise_rate")
    texts = [t.get_text() for t in fig.axes[0].texts]
    for (loss, rate), g in cells.groupby(["loss", "label_noise_rate"]):
        x = g["test_accuracy"].to_numpy()
        low, high = np.clip(sps.t.interval(0.95, len(x) - 1, loc=x.mean(),
                                           scale=sps.sem(x)), 0, 1)
        assert f"{x.mean():.3f}\n[{low:.3f}, {high:.3f}]" in texts, (loss, rate)


@pytest.mark.slow
def test_measurement_figures_draw_the_recorded_values():
    r = _study()
    cells, meas = r.cells(), r.measurements()
    fig = F.measurement_curve(cells, meas, ["train_top_k", "test_top_k"], "k")
    (ax,) = fig.axes  # only the test split was recorded
    assert ax.get_title() == "test: top-k accuracy"
    for line in ax.get_lines():
        ids = cells[cells["loss"] == line.get_label()]["cell_id"]
        m = meas[(meas["name"] == "test_top_k") & meas["cell_id"].isin(ids)]
        expected = m.assign(k=m["index"].astype(float)).groupby("k")["value"].mean()
        np.testing.assert_array_equal(line.get_xdata(), expected.index)  # the k values
        np.testing.assert_allclose(line.get_ydata(), expected.to_numpy(), rtol=SEED_MEAN_RTOL)
    # top-k with k = C = 4 classes counts every sample: exactly 1
    assert all(line.get_ydata()[-1] == 1.0 for line in ax.get_lines())
    fig = F.trajectories(cells, meas, "loss_scale", "loss", "scale", log_y=True)
    (ax,) = [a for a in fig.axes if a.get_visible()]
    assert {line.get_label() for line in ax.get_lines()} == {"R1", "R2"}
    points = pd.DataFrame({"x0": [0.0, 0.5], "x1": [0.1, -0.2], "label": [0, 3]})
    part = cells[cells["label_noise_rate"] == 0.0]
    fig = F.decision_boundaries(part, meas, points)
    shown = [a for a in fig.axes if a.get_visible()]
    assert [a.get_title() for a in shown] == list(dict.fromkeys(part["loss"]))
    # the image is the seed-0 cell's grid: row i along x1, column j along x0
    first = part.sort_values("seed", kind="stable").iloc[0]
    rows = meas[(meas["cell_id"] == first["cell_id"]) & (meas["name"] == "boundary")]
    ij = rows["index"].str.split(",", expand=True).astype(int)
    expected = np.zeros((21, 21))
    expected[ij[0], ij[1]] = rows["value"]
    np.testing.assert_array_equal(shown[0].get_images()[0].get_array(), expected)
    assert shown[0].get_images()[0].get_extent() == [-1.1, 1.1, -1.1, 1.1]
    fig = F.histograms(cells, meas, ["test_max_p"])
    for line in fig.axes[0].get_lines():
        ids = cells[cells["loss"] == line.get_label()]["cell_id"]
        counts = meas[(meas["name"] == "test_max_p") & meas["cell_id"].isin(ids)]
        total = counts.groupby("index", sort=False)["value"].sum().to_numpy()
        # drawn as shares of the summed counts, the last bin repeated to close the step;
        # integer counts sum exactly, so each share is one correctly rounded division
        np.testing.assert_allclose(line.get_ydata()[:-1], total / total.sum(), rtol=2 * U64)


@pytest.mark.slow
def test_speed_of_learning_is_the_window_mean_of_each_curve():
    r = _study()
    cells, curves = r.cells(), r.curves()
    speed = F.speed_data(cells, curves, "train_accuracy")
    row = speed.iloc[0]
    c = curves[(curves["cell_id"] == row["cell_id"]) & (curves["metric"] == "train_accuracy")]
    steps, acc = c["step"].to_numpy(), c["value"].to_numpy()
    lo, hi = max(int(steps[0]), round(0.1 * steps[-1])), int(steps[-1])
    grid = np.arange(lo, hi + 1)  # every iteration of the window, linearly interpolated
    # a float64 mean of n positive interpolated values: (n + 3) u relative each side in any
    # summation order; 2x margin
    rel = 2 * 2 * (len(grid) + 3) * U64
    assert row["value"] == pytest.approx(np.interp(grid, steps, acc).mean(), rel=rel)


def test_superclass_bars_are_the_seed_means():
    # rows as losslab.metrics.measurements.SuperClass writes them: index "", one per split
    cells = pd.DataFrame({"cell_id": ["a", "b", "c", "d"], "loss": ["log", "log", "l2", "l2"],
                          "seed": [0, 1, 0, 1], "status": "done"})
    values = {"a": (0.5, 0.4), "b": (0.7, 0.6), "c": (0.2, 0.1), "d": (0.3, 0.25)}
    meas = pd.DataFrame([
        {"cell_id": c, "step": 10, "name": f"{split}_superclass_accuracy", "index": "",
         "value": v[i]} for c, v in values.items() for i, split in enumerate(("train", "test"))
    ])
    fig = F.measurement_bars(cells, meas, ["train_superclass_accuracy",
                                           "test_superclass_accuracy"])
    bars = fig.axes[0].patches
    heights = [b.get_height() for b in bars]
    # log's two bars (train, test), then l2's: means of two decimal literals (a rounding
    # each, one for the sum) against a literal: <= 4 half-ulps; 2x margin
    np.testing.assert_allclose(heights, [0.6, 0.5, 0.25, 0.175], rtol=4 * U64)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "train: super-class accuracy", "test: super-class accuracy"]


@pytest.mark.slow
def test_accuracy_against_eta_has_a_point_per_eta():
    from losslab.report.build import plan
    from report_results import tiny_results

    results = tiny_results(losses=(("two_scale", {"eta": 0.1}), ("two_scale", {"eta": 2.0}),
                                   ("log", {})))
    sections, _ = plan(results)
    (job,) = [j for s in sections for j in s.jobs if j.title.startswith(
        "Test accuracy against eta: label_noise_rate 0.0")]
    fig = job.draw(*job.args, **job.kwargs)
    (line,) = fig.axes[0].get_lines()
    cells = results.cells()
    two = cells[(cells["loss_name"] == "two_scale") & (cells["label_noise_rate"] == 0.0)]
    expected = two.groupby(two["loss"].str.extract(r"eta=([\d.]+)")[0].astype(float))[
        "test_accuracy"].mean()
    np.testing.assert_array_equal(line.get_xdata(), [0.1, 2.0])  # parsed from the labels
    np.testing.assert_allclose(line.get_ydata(), expected.to_numpy(), rtol=SEED_MEAN_RTOL)
    assert fig.axes[0].get_xscale() == "log"


DEMO_LOSSES = ["l1", "l2", "expectation", "regularised_expectation", "chebyshev", "hinge",
               "squared_hinge", "cubed_hinge", "log", "squared_log", "tanimoto",
               "cauchy_schwarz"]


@pytest.mark.parametrize("losses", [DEMO_LOSSES, ["log", "hinge"]])
def test_the_legend_of_a_one_panel_figure_is_not_clipped(losses):
    """The demo's noise figure: 12 loss names in 4 columns were wider than its one panel
    and ``cauchy_schwarz`` was cut off at the right edge; every entry must stay inside."""
    rows = [{"status": "done", "loss": loss, "label_noise_rate": rate,
             "test_accuracy": 0.5 + 0.01 * seed, "seed": seed}
            for loss in losses for rate in (0.0, 0.4) for seed in range(2)]
    fig = F.metric_against_axis(pd.DataFrame(rows), "label_noise_rate")
    fig.draw_without_rendering()  # the constrained layout places the legend
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == losses
    box, extent = fig.bbox, legend.get_window_extent()
    assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0
    if len(losses) <= 4:  # columns are given up only when the width needs it: one row
        assert len({t.get_window_extent().y0 for t in legend.get_texts()}) == 1
