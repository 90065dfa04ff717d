"""The result store: one SQLite file per study directory (``DIR/study.sqlite``), WAL mode.

The schema is meant to be read by people as much as by losslab::

    sqlite3 DIR/study.sqlite "SELECT loss, avg(test_accuracy) FROM cells
                              WHERE status = 'done' GROUP BY loss"

Tables:
    meta          key/value: schema version, losslab version, study name and file
    runs          one row per ``losslab run``: start/end, host, pid, environment (JSON)
    cells         one row per cell: ids, axis columns, config (JSON), status, lease,
                  final metrics, timings
    curves        (cell_id, step, metric, value): learning curves, long format
    measurements  (cell_id, step, name, idx, value): extra measurements, long format

Crash safety (Optuna ``RDBStorage`` style): only the driver process writes, every change
is one transaction, and a stack's results (status, metrics, curves, measurements of all
its cells) are committed together, so a kill at any moment loses at most the cells in
flight. A running cell holds a lease: its owner's id and a heartbeat that the owner
refreshes; a cell whose owner is a dead process on this host, or whose heartbeat is
older than the grace period, is free to be claimed again.
"""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from losslab import __version__, provenance
from losslab.errors import LosslabError

SCHEMA_VERSION = 1
# Seconds without a heartbeat after which a lease of another host counts as abandoned.
LEASE_GRACE_SECONDS = 60.0
STORE_FILE = "study.sqlite"
STATUSES = ("pending", "running", "done", "diverged", "failed")
FINAL_METRICS = ("train_accuracy", "dev_accuracy", "test_accuracy", "train_loss", "dev_loss",
                 "test_loss")
AXIS_COLUMNS = ("dataset", "model", "activation", "loss", "loss_name", "optimizer", "lr",
                "weight_decay", "label_noise_rate", "label_noise_kind", "input_noise_eps",
                "steps", "seed")

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, started REAL NOT NULL, finished REAL, host TEXT, pid INTEGER,
    scale TEXT, executor TEXT, outcome TEXT, environment TEXT, study_text TEXT
);
CREATE TABLE IF NOT EXISTS cells (
    cell_id TEXT PRIMARY KEY,
    condition_id TEXT NOT NULL,
    condition TEXT NOT NULL,
    stack_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    current INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ({", ".join(repr(s) for s in STATUSES)})),
    error TEXT,
    diverged_at INTEGER,
    dataset TEXT, model TEXT, activation TEXT, loss TEXT, loss_name TEXT, optimizer TEXT,
    lr REAL, weight_decay REAL, label_noise_rate REAL, label_noise_kind TEXT,
    input_noise_eps REAL, steps INTEGER, seed INTEGER,
    extra_axes TEXT NOT NULL DEFAULT '{{}}',
    config TEXT NOT NULL,
    seconds REAL, steps_run INTEGER, best_step INTEGER, stopped_early INTEGER,
    {", ".join(f"{m} REAL" for m in FINAL_METRICS)},
    device TEXT, run_id TEXT, lease_owner TEXT, heartbeat REAL, started REAL, finished REAL
);
CREATE INDEX IF NOT EXISTS cells_stack ON cells (stack_id);
CREATE INDEX IF NOT EXISTS cells_condition ON cells (condition_id);
CREATE TABLE IF NOT EXISTS curves (
    cell_id TEXT NOT NULL REFERENCES cells (cell_id),
    step INTEGER NOT NULL, metric TEXT NOT NULL, value REAL,
    PRIMARY KEY (cell_id, metric, step)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS measurements (
    cell_id TEXT NOT NULL REFERENCES cells (cell_id),
    step INTEGER NOT NULL, name TEXT NOT NULL, idx TEXT NOT NULL, value REAL
);
CREATE INDEX IF NOT EXISTS measurements_cell ON measurements (cell_id);
"""


def store_path(directory: str | os.PathLike) -> Path:
    """``DIR/study.sqlite``."""
    return Path(directory) / STORE_FILE


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


BUSY_SECONDS = 60.0


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with a busy timeout (concurrent runs wait, never fail).

    ``readonly``: never writes, so it works on a directory that cannot be written (a
    read-only mount, a copy owned by someone else). SQLite reads a WAL database through its
    ``-shm`` file; where that cannot be created, and no WAL is left to replay (the last
    writer closed cleanly), the file is opened as ``immutable``.
    """
    if not readonly:
        conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn
    uri = Path(path).resolve().as_uri()
    conn = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=BUSY_SECONDS,
                           isolation_level=None)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn.close()
        wal = Path(f"{path}-wal")
        if (wal.exists() and wal.stat().st_size > 0) or os.access(Path(path).parent, os.W_OK):
            raise
        conn = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None)
    return conn


def read_meta(directory: str | os.PathLike) -> dict[str, str] | None:
    """The meta table of a study directory, or None where there is no store."""
    path = store_path(directory)
    if not path.exists():
        return None
    try:
        conn = connect(path, readonly=True)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            # A run killed before its first commit leaves an empty file: no study yet.
            if "meta" not in tables:
                return None
            return dict(conn.execute("SELECT key, value FROM meta").fetchall()) or None
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise LosslabError(f"{path} is not a readable losslab study store ({err})") from None


def check_compatible(directory: str | os.PathLike, name: str, study_file: Path) -> None:
    """Refuse a directory made by another losslab version or for another study.

    A study is known by its name, not by where its file lies: a copy of the file, or the
    file moved, runs into the same directory (the cells themselves are keyed by content,
    so a changed grid adds cells and keeps the stored ones). Reads only; raises before
    anything is written.
    """
    meta = read_meta(directory)
    if meta is None:
        return
    path = store_path(directory)
    if meta.get("schema_version") != str(SCHEMA_VERSION) or meta.get(
        "losslab_version"
    ) != __version__:
        raise LosslabError(
            f"{path} was made by losslab {meta.get('losslab_version', '?')} (store schema "
            f"{meta.get('schema_version', '?')}); this is losslab {__version__}: cell keys "
            "differ between versions, so run into a new directory with --out"
        )
    if meta.get("study_name") != name:
        raise LosslabError(
            f"{path} holds study {meta.get('study_name')!r} (from {meta.get('study_file')}), "
            f"not {name!r} (from {study_file}); pass --out with another directory"
        )


def environment(device: str, executor: str, jobs: int) -> dict[str, Any]:
    """:func:`losslab.provenance.environment` plus the machine, the load average at the start
    and the source commit of this process (recorded per run; REPRODUCTION.md's runs table
    reads them)."""
    return {
        **provenance.environment(device, executor, jobs),
        "machine": machine(),
        "load_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "commit": source_commit(),
    }


def machine() -> str:
    """The CPU model and core count, e.g. ``"Intel(R) Xeon(R) ... (2 CPUs)"``."""
    import platform

    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return f"{model} ({os.cpu_count()} CPUs)"


def source_commit() -> str:
    """The git commit of the losslab source that runs (``+dirty`` with uncommitted changes
    to tracked files), or ``losslab <version>`` outside a git checkout."""
    import subprocess

    package = Path(__file__).resolve().parents[1]
    root = package.parents[1]
    # An installed wheel (e.g. in a venv inside some checkout) is not that checkout's code.
    if not (root / "src" / "losslab").resolve() == package:
        return f"losslab {__version__}"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"losslab {__version__}"
    return head + ("+dirty" if dirty else "") if head else f"losslab {__version__}"


class Store:
    """The driver's writable handle on ``DIR/study.sqlite``.

    Args:
        directory: the study directory (created if missing).
        owner: this run's lease owner id (default: host:pid:time).
    """

    def __init__(self, directory: str | os.PathLike, owner: str | None = None):
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / f".write-test-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise LosslabError(
                f"cannot write to the study directory {self.directory} ({err.strerror}); "
                "choose another with --out"
            ) from None
        self.path = store_path(self.directory)
        self.host = socket.gethostname()
        self.owner = owner or f"{self.host}:{os.getpid()}:{time.time():.6f}"
        self.conn = connect(self.path)

    def close(self) -> None:
        self.conn.close()

    def _transaction(self) -> _Transaction:
        return _Transaction(self.conn)

    # ------------------------------------------------------------------ set-up
    def initialise(self, name: str, study_file: Path) -> None:
        """Write the meta rows of a new store (kept as they are in an existing one)."""
        rows = {
            "schema_version": str(SCHEMA_VERSION),
            "losslab_version": __version__,
            "study_name": name,
            "study_file": str(study_file.resolve()),
            "created": f"{time.time():.3f}",
        }
        # Schema and meta in one transaction: a kill leaves all of it or none.
        self.conn.executescript(f"BEGIN IMMEDIATE; {_SCHEMA}")
        try:
            self.conn.executemany(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", rows.items()
            )
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def begin_run(self, scale: str | None, executor: str, env: Mapping[str, Any],
                  study_text: str) -> None:
        with self._transaction():
            self.conn.execute(
                "INSERT INTO runs (run_id, started, host, pid, scale, executor, environment, "
                "study_text) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self.owner, time.time(), self.host, os.getpid(), scale, executor,
                 json.dumps(dict(env)), study_text),
            )

    def end_run(self, outcome: str) -> None:
        with self._transaction():
            self.conn.execute(
                "UPDATE runs SET finished = ?, outcome = ? WHERE run_id = ?",
                (time.time(), outcome, self.owner),
            )
            self.conn.execute(
                "UPDATE cells SET status = 'pending', lease_owner = NULL, heartbeat = NULL "
                "WHERE status = 'running' AND lease_owner = ?",
                (self.owner,),
            )

    def add_cells(self, cells: Iterable[Any]) -> None:
        """Insert the plan's cells (pending; stored ones are kept) and mark them current.

        Failed cells of earlier runs become pending again: a rerun retries them.
        """
        cells = list(cells)
        with self._transaction():
            self.conn.execute("UPDATE cells SET current = 0")
            for cell in cells:
                extra = {k: v for k, v in cell.axes.items() if k not in AXIS_COLUMNS}
                self.conn.execute(
                    "INSERT INTO cells (cell_id, condition_id, condition, stack_id, position, "
                    f"extra_axes, config, {', '.join(AXIS_COLUMNS)}) VALUES "
                    f"(?, ?, ?, ?, ?, ?, ?, {', '.join('?' * len(AXIS_COLUMNS))}) "
                    "ON CONFLICT (cell_id) DO UPDATE SET current = 1, condition = "
                    "excluded.condition, stack_id = excluded.stack_id, position = "
                    "excluded.position, extra_axes = excluded.extra_axes",
                    (cell.cell_id, cell.condition_id, cell.condition, cell.stack_id,
                     cell.position, json.dumps(extra), json.dumps(cell.config, sort_keys=True),
                     *(cell.axes[k] for k in AXIS_COLUMNS)),
                )
            self.conn.execute(
                "UPDATE cells SET status = 'pending', error = NULL "
                "WHERE status = 'failed' AND current = 1"
            )

    # ------------------------------------------------------------------ leases
    def _stale(self, owner: str | None, heartbeat: float | None, grace: float) -> bool:
        return lease_dead(owner, heartbeat, grace, self.host)

    def claim(self, cell_ids: list[str], grace: float) -> tuple[list[str], list[str]]:
        """Lease the claimable cells among ``cell_ids`` (pending, or running with a stale
        lease): returns (claimed, held by another live run)."""
        claimed, held = [], []
        now = time.time()
        with self._transaction():
            for cell_id in cell_ids:
                row = self.conn.execute(
                    "SELECT status, lease_owner, heartbeat FROM cells WHERE cell_id = ?",
                    (cell_id,),
                ).fetchone()
                status, owner, beat = row
                if status == "running" and not self._stale(owner, beat, grace):
                    held.append(cell_id)
                    continue
                if status not in ("pending", "running"):
                    continue
                self.conn.execute(
                    "UPDATE cells SET status = 'running', lease_owner = ?, heartbeat = ?, "
                    "run_id = ?, started = ? WHERE cell_id = ?",
                    (self.owner, now, self.owner, now, cell_id),
                )
                claimed.append(cell_id)
        return claimed, held

    def release(self, cell_ids: list[str]) -> None:
        """Give leased cells back (pending) without results, e.g. after an interruption."""
        with self._transaction():
            self.conn.executemany(
                "UPDATE cells SET status = 'pending', lease_owner = NULL, heartbeat = NULL "
                "WHERE cell_id = ? AND lease_owner = ? AND status = 'running'",
                [(c, self.owner) for c in cell_ids],
            )

    def heartbeat(self, conn: sqlite3.Connection | None = None) -> None:
        """Refresh this owner's leases (called from the driver's heartbeat thread)."""
        conn = conn or self.conn
        conn.execute(
            "UPDATE cells SET heartbeat = ? WHERE lease_owner = ? AND status = 'running'",
            (time.time(), self.owner),
        )

    # ------------------------------------------------------------------ results
    def record(self, outcomes: list[Mapping[str, Any]]) -> int:
        """Store the outcomes of one stack in ONE transaction; returns how many were stored.

        A cell is written only while this owner holds its lease, so a cell is never stored
        twice, and a result never overwrites another run's.
        """
        stored = 0
        now = time.time()
        with self._transaction():
            for out in outcomes:
                final = out.get("final", {})
                cur = self.conn.execute(
                    "UPDATE cells SET status = ?, error = ?, diverged_at = ?, seconds = ?, "
                    "steps_run = ?, best_step = ?, stopped_early = ?, "
                    f"{', '.join(f'{m} = ?' for m in FINAL_METRICS)}, device = ?, "
                    "finished = ?, lease_owner = NULL, heartbeat = NULL "
                    "WHERE cell_id = ? AND lease_owner = ? AND status = 'running'",
                    (out["status"], out.get("error"), out.get("diverged_at"),
                     out.get("seconds"), out.get("steps_run"), out.get("best_step"),
                     int(bool(out.get("stopped_early"))),
                     *(_finite(final.get(m)) for m in FINAL_METRICS), out.get("device"), now,
                     out["cell_id"], self.owner),
                )
                if cur.rowcount != 1:
                    continue
                stored += 1
                self.conn.execute("DELETE FROM curves WHERE cell_id = ?", (out["cell_id"],))
                self.conn.execute("DELETE FROM measurements WHERE cell_id = ?",
                                  (out["cell_id"],))
                curves = out.get("curves", {})
                steps = curves.get("step", [])
                self.conn.executemany(
                    "INSERT INTO curves (cell_id, step, metric, value) VALUES (?, ?, ?, ?)",
                    [(out["cell_id"], int(s), metric, _finite(v))
                     for metric, values in curves.items()
                     # An absent split (no dev set) has only NaN: nothing to store.
                     if metric != "step" and any(_finite(v) is not None for v in values)
                     for s, v in zip(steps, values, strict=True)],
                )
                self.conn.executemany(
                    "INSERT INTO measurements (cell_id, step, name, idx, value) "
                    "VALUES (?, ?, ?, ?, ?)",
                    [(out["cell_id"], int(s), str(n), str(i), _finite(v))
                     for s, n, i, v in out.get("measurements", [])],
                )
        return stored

    def statuses(self, cell_ids: Iterable[str] | None = None) -> dict[str, str]:
        """cell_id -> status, of the given cells or of every current cell."""
        rows = self.conn.execute("SELECT cell_id, status FROM cells WHERE current = 1")
        out = dict(rows.fetchall())
        return out if cell_ids is None else {c: out[c] for c in cell_ids}


class _Transaction:
    """``with``: BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any exception.

    IMMEDIATE takes the write lock up front, so two runs never interleave a read-then-write
    (the lease check) with each other.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, kind: type[BaseException] | None, value: object, trace: object) -> None:
        self.conn.execute("COMMIT" if kind is None else "ROLLBACK")


def lease_dead(owner: str | None, heartbeat: float | None, grace: float,
               host: str | None = None) -> bool:
    """Whether a lease (owner ``host:pid:time``, last heartbeat) no longer has a live owner:
    none at all, a process of this host that has exited, or a heartbeat older than
    ``grace`` seconds (owners on other hosts)."""
    if owner is None or heartbeat is None:
        return True
    owner_host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if owner_host == (host or socket.gethostname()) and pid.isdigit() and not _alive(int(pid)):
        return True
    return time.time() - heartbeat > grace


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------------- tuning tables
# The trainings of [tune] (losslab.study.tuning) and the settings it chose, kept in the
# study's own file so that an interrupted tuning resumes where it stopped.
_TUNING_SCHEMA = """
CREATE TABLE IF NOT EXISTS tuning_trials (
    trial_id TEXT PRIMARY KEY,
    tune_key TEXT NOT NULL,
    condition TEXT NOT NULL,
    loss TEXT NOT NULL,
    method TEXT NOT NULL,
    trial INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    lr REAL,
    weight_decay REAL,
    metric TEXT NOT NULL,
    value REAL,
    status TEXT NOT NULL,
    error TEXT,
    finished REAL
);
CREATE INDEX IF NOT EXISTS tuning_trials_key ON tuning_trials (tune_key);
CREATE TABLE IF NOT EXISTS tuning_choices (
    tune_key TEXT PRIMARY KEY,
    condition TEXT NOT NULL,
    loss TEXT NOT NULL,
    metric TEXT NOT NULL,
    score REAL NOT NULL,
    lr REAL,
    weight_decay REAL,
    candidates INTEGER NOT NULL,
    seeds TEXT NOT NULL,
    tuned TEXT NOT NULL
);
"""


def open_tuning(directory: str | os.PathLike) -> sqlite3.Connection:
    """A connection to the store of ``directory`` with the tuning tables in it."""
    conn = connect(store_path(directory))
    conn.executescript(_TUNING_SCHEMA)
    return conn


def tuning_trials(conn: sqlite3.Connection, keys: list[str]) -> dict[str, dict[str, Any]]:
    """The stored tuning trainings of the conditions ``keys``, by trial id."""
    marks = ",".join("?" * len(keys))
    cursor = conn.execute(
        "SELECT trial_id, tune_key, trial, seed, lr, weight_decay, value, status "
        f"FROM tuning_trials WHERE tune_key IN ({marks})",
        keys,
    )
    names = [d[0] for d in cursor.description]
    return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def put_tuning_trials(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Store finished tuning trainings, all of them or (on a crash) none."""
    _put(conn, "tuning_trials", rows)


def put_tuning_choices(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    """Store the chosen settings of tuning conditions, all of them or none."""
    _put(conn, "tuning_choices", rows)


def _put(conn: sqlite3.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    """INSERT OR REPLACE ``rows`` (dicts keyed by column, all with the same keys) into
    ``table`` in one transaction."""
    if not rows:
        return
    columns = list(rows[0])
    with _Transaction(conn):
        conn.executemany(
            f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)})",
            rows,
        )
