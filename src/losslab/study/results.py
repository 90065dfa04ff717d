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
from losslab.study.store import AXIS_COLUMNS, FINAL_METRICS, connect, store_path

CELL_COLUMNS = (
    "cell_id", "condition_id", "condition", "status", "error", "diverged_at",
    *AXIS_COLUMNS, "config", "seconds", "steps_run", "best_step", *FINAL_METRICS,
)


class StudyResults:
    """The results of one study directory.

    Args:
        directory: a directory written by ``losslab run``.
        all_cells: include cells of earlier versions of the study file that the last run
            no longer plans (default False).
    """

    def __init__(self, directory: str | os.PathLike, all_cells: bool = False):
        self.directory = Path(directory)
        path = store_path(self.directory)
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
            raise LosslabError(f"{self.path} is not a losslab study store ({err})") from None
        finally:
            conn.close()

    def _where(self) -> str:
        return "" if self.all_cells else "WHERE current = 1"

    def cells(self) -> pd.DataFrame:
        """One row per cell; columns as in the README (NaN where a metric is absent).

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
        """``total`` and the number of cells in each status."""
        frame = self._query(f"SELECT status, count(*) AS n FROM cells {self._where()} "
                            "GROUP BY status")
        counts = {s: 0 for s in ("pending", "running", "done", "diverged", "failed")}
        counts.update(dict(zip(frame["status"], frame["n"].astype(int), strict=True)))
        return {"total": int(sum(counts.values())), **counts}


def load(directory: str | os.PathLike, all_cells: bool = False) -> StudyResults:
    """The :class:`StudyResults` of a study directory (``DIR/study.sqlite``)."""
    return StudyResults(directory, all_cells)
