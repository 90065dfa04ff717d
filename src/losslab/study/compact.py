"""The compact, committed form of a study store: text files a diff can read.

``losslab publish DIR`` writes the cells of the last run of the study directory ``DIR``
(one scale) to ``results/<study>/<scale>/``::

    run.json               format, study, scale, the store's meta rows and runs (machine,
                           load at start, commit, environment, study file text, start and
                           end), and the SQL schema of the tables below
    cells.csv              one row per cell, every column of the store's cells table
    curves.csv.gz          learning curves (cell_id, step, metric, value)
    measurements.csv.gz    measurements (cell_id, step, name, idx, value)
    tuning_*.csv.gz        the [tune] tables, when the study has them

Numbers are written as Python's shortest round-trip text, so reading them back gives the
same float64 bits; an empty field is NULL where the column allows NULL. The gzip files
carry no time stamp, so publishing the same store twice gives the same bytes (asv and
pytest-regressions keep results beside the code the same way).

:func:`restore` rebuilds a SQLite store from these files, so :func:`losslab.study.load`,
``losslab report`` and ``losslab reproduce`` read a compact directory without training.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from losslab.errors import LosslabError
from losslab.study.store import STORE_FILE, connect, store_path

FORMAT = 1
RUN_FILE = "run.json"
# table -> (file name, the SELECT that orders its rows as the store reads them)
_TABLES = {
    "cells": ("cells.csv", "SELECT * FROM cells WHERE current = 1 ORDER BY position"),
    "curves": ("curves.csv.gz",
               "SELECT c.* FROM curves c JOIN cells USING (cell_id) WHERE cells.current = 1 "
               "ORDER BY cells.position, c.metric, c.step"),
    "measurements": ("measurements.csv.gz",
                     "SELECT m.* FROM measurements m JOIN cells USING (cell_id) "
                     "WHERE cells.current = 1 ORDER BY cells.position, m.rowid"),
    "tuning_trials": ("tuning_trials.csv.gz", "SELECT * FROM tuning_trials ORDER BY rowid"),
    "tuning_choices": ("tuning_choices.csv.gz", "SELECT * FROM tuning_choices ORDER BY rowid"),
}
#: Most megabytes the committed results may take in all (the issue's budget).
MAX_TOTAL_MB = 50.0


def is_compact(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a compact study (``run.json`` beside ``cells.csv``)."""
    d = Path(directory)
    return (d / RUN_FILE).is_file() and (d / "cells.csv").is_file()


def _open_text(path: Path, mode: str) -> AbstractContextManager[IO[Any]]:
    if path.suffix == ".gz":
        if "w" in mode:
            raw = open(path, "wb")  # noqa: SIM115 - closed with the wrapper below
            gz = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9)
            return _Closing(io.TextIOWrapper(gz, encoding="utf-8", newline=""), raw)
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, mode, encoding="utf-8", newline="")


class _Closing:
    """A text wrapper over a gzip stream that also closes the underlying file."""

    def __init__(self, text: io.TextIOWrapper, raw: Any):
        self.text, self.raw = text, raw

    def __enter__(self) -> io.TextIOWrapper:
        return self.text

    def __exit__(self, *exc: Any) -> None:
        self.text.close()
        self.raw.close()


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return value


def publish(directory: str | os.PathLike, target: str | os.PathLike | None = None,
            scale: str | None = None) -> Path:
    """Write the compact form of the study store in ``directory``.

    Args:
        directory: a study directory written by ``losslab run`` (``DIR/study.sqlite``).
        target: the folder to write (default ``results/<study>/<scale>`` under the
            current directory, ``default`` for a run without a scale); files of an
            earlier publication there are replaced.
        scale: the scale expected (default: the scale of the store's last run); a store
            whose last run had another scale is refused, since its current cells are
            that run's.

    Returns:
        The folder written.
    """
    path = store_path(directory)
    if not path.exists():
        raise LosslabError(f"{directory} holds no study store ({STORE_FILE} missing); give "
                           "the directory `losslab run` wrote")
    conn = connect(path, readonly=True)
    try:
        tables = {r[0]: r[1] for r in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables or "runs" not in tables:
            raise LosslabError(f"{path} is not a losslab study store (no meta/runs tables)")
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        runs = _rows(conn, "SELECT * FROM runs ORDER BY started")
        if not runs:
            raise LosslabError(f"{path} records no run; run the study first")
        last = runs[-1]["scale"]
        if scale is not None and scale != last:
            raise LosslabError(
                f"the last run in {directory} was at scale {last!r}, not {scale!r}: run the "
                f"study at --scale {scale} into it again (stored cells are found, not "
                "retrained), then publish"
            )
        running = conn.execute("SELECT count(*) FROM cells WHERE current = 1 AND status = "
                               "'running'").fetchone()[0]
        if running:
            raise LosslabError(f"{running} cell(s) of {directory} are being trained; publish "
                               "when the run has ended")
        name = meta.get("study_name", "study")
        # A run without --scale is the file as written: its folder is "default".
        out = Path(target) if target is not None else Path("results") / name / (
            last or "default")
        out.mkdir(parents=True, exist_ok=True)
        for _, (file, _) in _TABLES.items():
            (out / file).unlink(missing_ok=True)
        written = {}
        for table, (file, query) in _TABLES.items():
            if table not in tables:
                continue
            cursor = conn.execute(query)
            columns = [d[0] for d in cursor.description]
            with _open_text(out / file, "w") as handle:
                writer = csv.writer(handle, lineterminator="\n")
                writer.writerow(columns)
                for row in cursor:
                    writer.writerow([_cell(v) for v in row])
            written[table] = file
        schema = [sql for (sql,) in conn.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND tbl_name IN "
            f"({', '.join('?' * (len(written) + 2))}) ORDER BY rowid",
            ["meta", "runs", *written])]
    finally:
        conn.close()
    for run in runs:
        run["environment"] = json.loads(run["environment"]) if run["environment"] else {}
    document = {
        "format": FORMAT,
        "study": name,
        "scale": last,
        "meta": meta,
        "runs": [r for r in runs if r["scale"] == last],
        "tables": written,
        "schema": schema,
    }
    (out / RUN_FILE).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n",
                                encoding="utf-8")
    return out


def _rows(conn: sqlite3.Connection, query: str) -> list[dict[str, Any]]:
    cursor = conn.execute(query)
    columns = [d[0] for d in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor]


def read_run(directory: str | os.PathLike) -> dict[str, Any]:
    """The ``run.json`` of a compact directory (format checked)."""
    path = Path(directory) / RUN_FILE
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise LosslabError(f"cannot read {path} ({err.strerror}); publish the study with "
                           "`losslab publish DIR`") from None
    except json.JSONDecodeError as err:
        raise LosslabError(f"{path} is not valid JSON ({err})") from None
    if document.get("format") != FORMAT:
        raise LosslabError(f"{path} has format {document.get('format')!r}; this losslab "
                           f"reads format {FORMAT}: publish the study again")
    return document


def restore(directory: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Rebuild ``target/study.sqlite`` from the compact directory ``directory``.

    Returns:
        The store's path. ``target`` must not hold a store yet.
    """
    directory, target = Path(directory), Path(target)
    document = read_run(directory)
    path = store_path(target)
    if path.exists():
        raise LosslabError(f"{path} exists; restore into an empty directory")
    target.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for sql in document["schema"]:
            conn.execute(sql)
        for key, value in document["meta"].items():
            conn.execute("INSERT INTO meta (key, value) VALUES (?, ?)", (key, value))
        for run in document["runs"]:
            row = dict(run)
            row["environment"] = json.dumps(row["environment"])
            conn.execute(f"INSERT INTO runs ({', '.join(row)}) VALUES "
                         f"({', '.join('?' * len(row))})", list(row.values()))
        for table, file in document["tables"].items():
            _restore_table(conn, table, directory / file)
        conn.execute("COMMIT")
    except (sqlite3.Error, KeyError, ValueError, csv.Error, OSError, EOFError) as err:
        conn.close()
        path.unlink(missing_ok=True)
        raise LosslabError(f"{directory} is not a readable compact study ({err}); publish "
                           "it again") from None
    conn.close()
    return path


def _restore_table(conn: sqlite3.Connection, table: str, file: Path) -> None:
    info = conn.execute(f"PRAGMA table_info({table})").fetchall()
    kinds = {row[1]: (row[2].upper(), bool(row[3])) for row in info}
    with _open_text(file, "r") as handle:
        reader = csv.reader(handle)
        columns = next(reader)
        unknown = [c for c in columns if c not in kinds]
        if unknown:
            raise ValueError(f"{file.name}: columns {unknown} are not in table {table}")
        convert = [_converter(*kinds[c]) for c in columns]
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
               f"({', '.join('?' * len(columns))})")
        conn.executemany(sql, ([f(v) for f, v in zip(convert, row, strict=True)]
                               for row in reader))


def _converter(kind: str, not_null: bool) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        if text == "":
            return "" if not_null and "INT" not in kind and "REAL" not in kind else None
        if "INT" in kind:
            return int(text)
        if "REAL" in kind:
            return float(text)
        return text

    return convert


def restore_temporary(directory: str | os.PathLike) -> tempfile.TemporaryDirectory:
    """A temporary directory holding the store rebuilt from ``directory``; it is deleted
    with the returned object."""
    holder = tempfile.TemporaryDirectory(prefix="losslab-restored-")
    restore(directory, holder.name)
    return holder


def total_megabytes(root: str | os.PathLike) -> float:
    """Megabytes of the compact files under ``root`` (what the repository carries)."""
    names = {RUN_FILE, *(file for file, _ in _TABLES.values())}
    return sum(p.stat().st_size for p in Path(root).rglob("*") if p.name in names) / 1e6
