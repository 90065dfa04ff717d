"""The report shows one condition per mark, intervals inside the metric's range, no
single-value line plot, clean cells at the start of every noise kind's curve, and paired
tests that decide at five seeds: checked on synthetic studies with known numbers, from the
data each figure records (``fig.figure_data``) and against scipy.stats."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from scipy import stats as sps

from losslab.report import figures as F
from losslab.report import tables
from losslab.report.build import plan

U64 = 2.0**-53
# A t interval recomputed by scipy from the same values: the mean of <= 5 values within
# 6 u, the std and the quantile a few u relative each, times t_{0.975, 4} = 2.8: below 64 u
# absolute on quantities of order 1 (2x margin).
CI_TOL = 64 * U64


@functools.cache
def _demo_like():
    """Two datasets, three noise rates; like the demo, the checkerboard runs clean only
    (its noisy cells excluded), and measurements are recorded on the noisiest digits."""
    from report_results import synthetic_results

    return synthetic_results(
        exclude=lambda ds, rate, kind: ds == "checkerboard" and rate > 0,
        measured=lambda ds, rate, kind: ds == "digits" and rate == 0.4)


@functools.cache
def _drawn(which: str):
    from report_results import synthetic_results

    results = _demo_like() if which == "demo" else synthetic_results(
        datasets=("digits",), rates=(0.0, 0.4), kinds=("symmetric", "pairflip"),
        exclude=lambda ds, rate, kind: kind == "pairflip" and rate == 0.0,
        measured=lambda ds, rate, kind: False)
    sections, _ = plan(results)
    jobs = [j for s in sections for j in s.jobs if j.draw is not F.loss_shapes]
    omitted = [o for s in sections for o in s.omitted]
    return results, [(j, j.draw(*j.args, **j.kwargs)) for j in jobs], omitted


@pytest.mark.slow
def test_no_mark_of_any_figure_mixes_conditions():
    results, drawn, _ = _drawn("demo")
    kinds = {j.draw.__name__ for j, _ in drawn}
    assert kinds >= {"learning_curves", "speed_of_learning", "metric_against_axis",
                     "measurement_curve", "measurement_bars", "histograms", "trajectories",
                     "heat_map", "decision_boundaries"}
    cells = results.cells().set_index("cell_id")
    for job, fig in drawn:
        data = fig.figure_data
        assert list(data.columns) == list(F.DATA_COLUMNS), job.title
        assert len(data) and data["cell_id"].notna().all(), job.title
        # every row is what its cell says: the recorded condition is the cell's own
        assert (cells.loc[data["cell_id"], "condition_id"].to_numpy()
                == data["condition_id"].to_numpy()).all(), job.title
        for key, mark in data.groupby(["panel", "mark", "x"], dropna=False):
            assert mark["condition_id"].nunique() == 1, (job.title, key)
            assert not mark["seed"].duplicated().any(), (job.title, key)
        # and the figure as a whole is the one setting its title names of the other axes
        facet = job.title.split(": ", 1)[1] if ": " in job.title else ""
        for pair in filter(None, facet.split(" / ")):
            axis, value = pair.split(" ", 1)
            assert {str(v) for v in cells.loc[data["cell_id"], axis]} == {value}, job.title


@pytest.mark.slow
def test_every_interval_lies_in_the_metric_range_and_is_the_t_interval():
    _, drawn, _ = _drawn("demo")
    checked = clipped = 0
    for job, fig in drawn:
        summary = fig.figure_summary
        if summary is None:
            continue
        data = fig.figure_data
        for row in summary.itertuples():
            bounds = F.value_range(row.panel or job.args[0].columns[-1])
            if job.draw is F.measurement_bars:
                bounds = F.value_range(row.x)
            if bounds is None or row.n < 2:
                continue
            assert bounds[0] <= row.low <= row.mean <= row.high <= bounds[1], job.title
            x = data[(data["panel"] == row.panel) & (data["mark"] == row.mark)
                     & (data["x"] == row.x)]["value"].to_numpy()
            sd = x.std(ddof=1)
            if sd == 0:
                continue
            ref = np.clip(sps.t.interval(0.95, len(x) - 1, loc=x.mean(),
                                         scale=sd / np.sqrt(len(x))), *bounds)
            np.testing.assert_allclose([row.low, row.high], ref, rtol=0, atol=CI_TOL)
            checked += 1
            clipped += row.high == 1.0
        # the drawn bands and whiskers too: those of an accuracy panel lie in [0, 1]
        # (speed of learning draws its accuracies along x)
        along = 0 if job.draw is F.speed_of_learning else 1
        for ax in fig.axes:
            if "accuracy" in ax.get_title() + ax.get_ylabel():
                for band in ax.collections:
                    for path in band.get_paths():
                        v = path.vertices[:, along]
                        assert ((v >= 0) & (v <= 1)).all(), job.title
    assert checked > 100 and clipped > 0  # the clean checkerboard's intervals hit 1


@pytest.mark.slow
def test_single_value_axes_are_not_drawn_but_named():
    _, drawn, omitted = _drawn("demo")
    for job, fig in drawn:
        if job.draw in (F.metric_against_axis, F.measurement_curve, F.heat_map):
            assert fig.figure_data["x"].nunique() > 1, job.title
    # the clean-only checkerboard: no accuracy-against-rate column of points at x = 0
    assert ("Test accuracy against label-noise rate: dataset checkerboard: not drawn: one "
            "label-noise rate (0) on the x axis; its numbers are in the Final metrics "
            "table") in omitted
    titles = [j.title for j, _ in drawn]
    assert "Test accuracy against label-noise rate: dataset digits" in titles
    assert not any(t.startswith("Test accuracy against label-noise rate: dataset checker")
                   for t in titles)


@pytest.mark.slow
def test_clean_cells_start_every_noise_kind_curve():
    results, drawn, _ = _drawn("kinds")
    cells = results.cells()
    clean = cells[cells["label_noise_rate"] == 0.0]
    assert set(clean["label_noise_kind"]) == {"symmetric"}  # as recorded by the study
    curves = {j.title.rsplit(" ", 1)[-1]: fig for j, fig in drawn
              if j.draw is F.metric_against_axis}
    assert set(curves) == {"symmetric", "pairflip"}
    for fig in curves.values():
        data = fig.figure_data
        assert sorted(data["x"].unique()) == [0.0, 0.4]
        assert set(data.loc[data["x"] == 0.0, "condition_id"]) == set(clean["condition_id"])
        (ax,) = [a for a in fig.axes if a.get_lines()]
        assert all(line.get_xdata()[0] == 0.0 for line in ax.get_lines())
    heat = {j.title.rsplit(" ", 1)[-1]: fig for j, fig in drawn
            if j.draw is F.heat_map and "label_noise_rate" in j.title}
    assert sorted(heat["pairflip"].figure_data["x"].unique()) == [0.0, 0.4]


def test_heat_map_title_is_not_clipped():
    import pandas as pd

    rows = [{"status": "done", "loss": loss, "rate": rate, "test_accuracy": 0.5, "seed": s}
            for loss in ("log", "a_rather_long_loss_name(alpha=4)") for rate in (0.0, 0.4)
            for s in range(2)]
    fig = F.heat_map(pd.DataFrame(rows), "loss", "rate")
    fig.canvas.draw()
    box = fig.bbox
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text")) if t.get_text()]
    title = [t for t in texts if "mean over seeds" in t.get_text()]
    assert title
    for t in title:
        extent = t.get_window_extent()
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and extent.y1 <= box.y1


def test_the_report_tables_decide_at_five_seeds_and_name_the_references():
    results = _demo_like()
    cells = results.cells()
    context = tables.context(results, cells, ["dataset", "loss", "label_noise_rate"])
    by_key = {t["key"]: t for t in context["tables"]}
    tests = by_key["tests"]
    columns = tests["columns"]
    rows = [dict(zip(columns, r, strict=True)) for r in tests["rows"]]
    assert not any("at least 6" in r["verdict"] for r in rows)
    # expectation loses 0.3 x 0.4 = 12 points to the clean base, log 36: about +24 points
    digits = [r for r in rows if r["dataset"] == "digits" and r["label_noise_rate"] == "0.4"]
    expectation = next(r for r in digits if r["loss"] == "expectation")
    assert expectation["verdict"].startswith("expectation beats log by +2")
    assert expectation["family"] == "3"  # the other three losses vs log, in that condition
    final = by_key["final"]
    assert "Student-t" in final["note"]
    bias = by_key["bias"]
    noisy = [r for r in bias["rows"] if "noise=0.4" in r[0]]
    assert noisy and all("reachable train accuracy 60.00%" in r[-1] for r in noisy)
    # trained to the reachable 60 % on noisy labels: not "high bias" any more
    assert not any(r[6].startswith("high bias") for r in noisy)
