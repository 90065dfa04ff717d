"""Reading a study store as tidy pandas DataFrames (Ray Tune ``ResultGrid`` style).

::

    from losslab.study import load
    res = load("results/demo")
    res.cells()          # one row per cell: ids, axes, status, final metrics, timings
    res.curves()         # cell_id, step, metric, value
    res.measurements()   # cell_id, step, name, index, value
    res.axes()           # the axis columns that vary in this study

Reading never writes: it works on partial studies, while a run is going on, and on a copy
of the directory made elsewhere.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from losslab.errors import LosslabError
from losslab.study.compact import is_compact, restore_temporary
from losslab.study.store import (
    AXIS_COLUMNS,
    FINAL_METRICS,
    LEASE_GRACE_SECONDS,
    connect,
    lease_dead,
    store_path,
)

CELL_COLUMNS = (
    "cell_id", "condition_id", "condition", "status", "error", "diverged_at",
    *AXIS_COLUMNS, "config", "seconds", "steps_run", "best_step", *FINAL_METRICS,
)


class StudyResults:
    """The results of one study directory.

    Args:
        directory: a directory written by ``losslab run``, or the compact form of one
            written by ``losslab publish`` (:mod:`losslab.study.compact`).
        all_cells: include cells of earlier versions of the study file that the last run
            no longer plans (default False).
    """

    def __init__(self, directory: str | os.PathLike, all_cells: bool = False):
        self.directory = Path(directory)
        path = store_path(self.directory)
        if not path.exists() and is_compact(self.directory):
            # Committed results (losslab publish): rebuilt into a store that lives with self.
            self._restored = restore_temporary(self.directory)
            path = store_path(self._restored.name)
        if not path.exists():
            raise LosslabError(
                f"{self.directory} holds no study results ({path.name} missing); give the "
                "directory that `losslab run` wrote (default results/<study name>)"
            )
        self.path = path
        self.all_cells = all_cells

    def _query(self, sql: str, params: tuple = ()) -> pd.DataFrame:
        try:
            conn = connect(self.path, readonly=True)
        except sqlite3.Error as err:
            raise LosslabError(f"cannot read {self.path}: {err}") from None
        try:
            return pd.read_sql_query(sql, conn, params=params)
        except (sqlite3.Error, pd.errors.DatabaseError) as err:
            if "no such table" in str(err) and not self._has_tables(conn):
                raise LosslabError(
                    f"{self.path} holds no results yet (a run is creating it, or was killed "
                    "before its first write); try again once `losslab run` has started"
                ) from None
            raise LosslabError(f"{self.path} is not a losslab study store ({err})") from None
        finally:
            conn.close()

    @staticmethod
    def _has_tables(conn: sqlite3.Connection) -> bool:
        try:
            return bool(conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])
        except sqlite3.Error:
            return True

    def _where(self) -> str:
        return "" if self.all_cells else "WHERE current = 1"

    def cells(self) -> pd.DataFrame:
        """One row per cell; columns as in docs/studies.md, "The store" (NaN where a
        metric is absent).

        Axis columns beyond the standard ones (e.g. ``batch_size`` when it varies) follow
        the standard columns.
        """
        frame = self._query(
            f"SELECT {', '.join(CELL_COLUMNS)}, extra_axes FROM cells {self._where()} "
            "ORDER BY position"
        )
        extra = [json.loads(text) for text in frame.pop("extra_axes")]
        for key in dict.fromkeys(k for row in extra for k in row):
            frame[key] = [row.get(key, np.nan) for row in extra]
        for column in ("diverged_at", "steps_run", "best_step", "seconds", *FINAL_METRICS):
            frame[column] = frame[column].astype(float)
        return frame

    def curves(self) -> pd.DataFrame:
        """Learning curves, long format: cell_id, step, metric, value."""
        return self._query(
            "SELECT c.cell_id, c.step, c.metric, c.value FROM curves c JOIN cells USING "
            f"(cell_id) {self._where()} ORDER BY cells.position, c.metric, c.step"
        ).astype({"value": float})

    def measurements(self) -> pd.DataFrame:
        """Extra measurements, long format: cell_id, step, name, index, value."""
        frame = self._query(
            "SELECT m.cell_id, m.step, m.name, m.idx AS \"index\", m.value FROM measurements "
            f"m JOIN cells USING (cell_id) {self._where()} ORDER BY cells.position, m.rowid"
        )
        return frame.astype({"value": float})

    def tuned(self) -> tuple[str, ...]:
        """The settings ``[tune]`` chose per loss (e.g. ``("lr",)``); empty without it."""
        if not self._has_table("tuning_choices"):
            return ()
        frame = self._query("SELECT DISTINCT tuned FROM tuning_choices")
        return tuple(dict.fromkeys(p for text in frame["tuned"] for p in text.split(",") if p))

    def _within(self, cells: pd.DataFrame) -> list[str]:
        """The columns of one comparison group: the varying axes but loss, seed and tuned."""
        skip = ("loss", "seed", *self.tuned())
        return [c for c in self.axes() if c not in skip and c in cells.columns]

    def summary(self, metric: str = "test_accuracy", **options: Any) -> pd.DataFrame:
        """Per condition: seeds, mean, std and 95 % t interval of ``metric``.

        ``options`` go to :func:`losslab.metrics.stats.summarize` (``confidence``).
        """
        from losslab.metrics.stats import summarize

        return summarize(self.cells(), metric, **options)

    def compare(self, reference: str | None = "log", metric: str = "test_accuracy",
                alpha: float = 0.05) -> pd.DataFrame:
        """Every loss against ``reference`` (None: all pairs), paired over the same seeds.

        Paired t-tests on the per-seed differences, Holm-corrected within each condition,
        with the effect's t interval, wins / losses / ties and a verdict in words
        (:func:`losslab.metrics.stats.compare`). Losses are paired within groups equal on
        every varying axis except the loss, the seed and the settings chosen per loss by
        ``[tune]``.
        """
        from losslab.metrics.stats import compare

        cells = self.cells()
        return compare(cells, reference, metric, within=self._within(cells), alpha=alpha)

    def ranks(self, metric: str = "test_accuracy") -> pd.DataFrame:
        """Rank of each loss per group (dataset, model, ...) and the mean rank."""
        from losslab.metrics.stats import rank_losses

        cells = self.cells()
        return rank_losses(cells, metric, within=self._within(cells))

    def diagnosis(self, bayes_error: float | None = None, tol: float = 0.05) -> pd.DataFrame:
        """The lecture notes' bias / variance diagnosis per condition (``bayes_error``
        None: the reference reachable under each condition's label noise)."""
        from losslab.metrics.stats import diagnose

        return diagnose(self.cells(), bayes_error=bayes_error, tol=tol)

    def tuning(self) -> pd.DataFrame:
        """The ``[tune]`` candidates: one row per loss (tuning condition) and candidate.

        Columns: ``condition``, ``loss``, ``trial`` (grid position or Optuna trial number),
        ``lr``, ``weight_decay``, ``metric``, ``score`` (mean over the tuning seeds, NaN
        when a seed diverged or failed), ``seeds`` (how many finished), ``diverged``,
        ``chosen`` (the values the study's seeds ran at). Empty without ``[tune]``.
        """
        columns = ["condition", "loss", "trial", "lr", "weight_decay", "metric", "score",
                   "seeds", "diverged", "chosen"]
        if not self._has_table("tuning_trials"):
            return pd.DataFrame(columns=columns)
        trials = self._query(
            "SELECT tune_key, condition, loss, trial, seed, lr, weight_decay, metric, value, "
            "status FROM tuning_trials ORDER BY rowid"
        )
        choices = self._query("SELECT tune_key, lr, weight_decay FROM tuning_choices")
        picked = {(r.tune_key, r.lr, r.weight_decay) for r in choices.itertuples()}
        rows = []
        keys = ["tune_key", "trial"]
        for (key, trial), group in trials.groupby(keys, sort=False):
            ok = group["status"].eq("done") & group["value"].notna()
            first = group.iloc[0]
            rows.append({
                "tune_key": key, "condition": first["condition"], "loss": first["loss"],
                "trial": int(trial), "lr": first["lr"], "weight_decay": first["weight_decay"],
                "metric": first["metric"],
                "score": float(group["value"].mean()) if ok.all() else np.nan,
                "seeds": len(group), "diverged": int(group["status"].eq("diverged").sum()),
                "chosen": (key, first["lr"], first["weight_decay"]) in picked,
            })
        frame = pd.DataFrame(rows, columns=["tune_key", *columns])
        order = {k: i for i, k in enumerate(dict.fromkeys(frame["tune_key"]))}
        frame = frame.sort_values(["tune_key", "trial"], key=lambda c: c.map(order)
                                  if c.name == "tune_key" else c, kind="stable")
        return frame.drop(columns="tune_key").reset_index(drop=True)

    def _has_table(self, name: str) -> bool:
        found = self._query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
                            (name,))
        return not found.empty

    def axes(self) -> list[str]:
        """The axis columns that take more than one value in this study."""
        frame = self.cells()
        standard = [c for c in AXIS_COLUMNS if c != "loss_name"]
        extra = [c for c in frame.columns if c not in CELL_COLUMNS]
        return [c for c in (*standard, *extra) if frame[c].nunique(dropna=False) > 1]

    def study_text(self) -> str:
        """The study file as the last run read it."""
        frame = self._query("SELECT study_text FROM runs ORDER BY started DESC LIMIT 1")
        return "" if frame.empty else str(frame.iloc[0, 0])

    def environment(self) -> dict[str, Any]:
        """Versions, device and threads of the last run."""
        frame = self._query("SELECT environment FROM runs ORDER BY started DESC LIMIT 1")
        return {} if frame.empty else json.loads(frame.iloc[0, 0])

    def meta(self) -> dict[str, str]:
        """The store's meta rows (study name, file, losslab version, ...)."""
        frame = self._query("SELECT key, value FROM meta")
        return dict(zip(frame["key"], frame["value"], strict=True))

    def status_counts(self) -> dict[str, int]:
        """``total`` and the number of cells in each status.

        ``interrupted``: cells stored as running whose lease has no live owner (the run was
        killed, or its host stopped beating); the next ``losslab run`` takes them over and
        resumes them from their stack's last checkpoint. ``running`` counts the others.
        """
        frame = self._query(f"SELECT status, count(*) AS n FROM cells {self._where()} "
                            "GROUP BY status")
        counts = {s: 0 for s in ("pending", "running", "interrupted", "done", "diverged",
                                 "failed")}
        counts.update(dict(zip(frame["status"], frame["n"].astype(int), strict=True)))
        if counts["running"]:
            where = "AND current = 1" if not self.all_cells else ""
            owners = self._query(
                "SELECT c.lease_owner, max(c.heartbeat) AS beat, count(*) AS n, "
                "max(r.finished IS NOT NULL) AS ended FROM cells c LEFT JOIN runs r ON "
                f"r.run_id = c.lease_owner WHERE c.status = 'running' {where} "
                "GROUP BY c.lease_owner"
            )
            for row in owners.itertuples():
                beat = None if pd.isna(row.beat) else float(row.beat)
                owner = None if pd.isna(row.lease_owner) else str(row.lease_owner)
                if row.ended or lease_dead(owner, beat, LEASE_GRACE_SECONDS):
                    counts["running"] -= int(row.n)
                    counts["interrupted"] += int(row.n)
        return {"total": int(sum(counts.values())), **counts}


def load(directory: str | os.PathLike, all_cells: bool = False) -> StudyResults:
    """The :class:`StudyResults` of a study directory (``DIR/study.sqlite``)."""
    return StudyResults(directory, all_cells)
