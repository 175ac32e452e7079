"""The results store: every bench run appended to SQLite, one row per case × metric.

Besides ``results``, the store keeps each case's whole record (``cases``) and its per-sample log
rows (``samples``, linked to the run and case), so a run's report can be rebuilt from the store
alone (bench/run_loader.py). Stores written before those tables existed gain them on first open.

Rows carry their provenance, so a number can always be traced to the model revision, adapter,
task version, data and decoding settings that produced it. Writers take an immediate transaction
with a generous busy timeout: concurrent xdist workers queue instead of losing rows.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

from slmbench.errors import SlmbenchError

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL,
    created TEXT NOT NULL,
    case_id TEXT NOT NULL,
    model TEXT NOT NULL,
    variant TEXT NOT NULL,
    task TEXT NOT NULL,
    split TEXT NOT NULL,
    n INTEGER NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    ci_low REAL,
    ci_high REAL,
    model_hash TEXT,
    adapter_hash TEXT,
    task_version TEXT,
    data_hash TEXT,
    decoding TEXT,
    versions TEXT,
    git_commit TEXT,
    PRIMARY KEY (run_id, case_id, metric)
)
"""
CASES_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    run_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (run_id, case_id)
)
"""
SAMPLES_SCHEMA = """
CREATE TABLE IF NOT EXISTS samples (
    run_id TEXT NOT NULL,
    case_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    sample_id TEXT NOT NULL,
    row TEXT NOT NULL,
    PRIMARY KEY (run_id, case_id, sample_id)
)
"""
BUSY_TIMEOUT_S = 60
COLUMNS = re.findall(r"^    ([a-z_]+) [A-Z]", SCHEMA, flags=re.MULTILINE)


class StoreError(SlmbenchError):
    """A results store that cannot be opened or written (not SQLite, old schema, locked, disk full)."""


def check_store(path: Path) -> None:
    """Fail early, naming the path, when `path` cannot become or be a results store; writes nothing."""
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"--bench-store: {path} is a directory; give a file path (or 'none')")
    if not path.exists():
        return
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            found = [row[1] for row in connection.execute("PRAGMA table_info(results)")]
        finally:
            connection.close()
    except sqlite3.DatabaseError as error:
        raise StoreError(f"--bench-store: {path} is not an SQLite database ({error}); "
                         f"move it away or pass another --bench-store") from None
    missing = [column for column in COLUMNS if column not in found]
    if found and missing:
        raise StoreError(f"--bench-store: {path} was made by another slmbench version: its results table has no "
                         f"column {', '.join(missing)}; move it away or pass another --bench-store")


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the store; WAL mode lets readers and one writer work together."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    use_wal(connection)
    for schema in (SCHEMA, CASES_SCHEMA, SAMPLES_SCHEMA):
        connection.execute(schema)
    return connection


def use_wal(connection: sqlite3.Connection) -> None:
    """Switch a new database to WAL (it stays WAL). SQLite answers "database is locked" at once, without
    waiting out the busy timeout, when two processes switch it together (xdist workers on a fresh
    results.db), so this retries until the timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                raise
            mode = "locked"
        if mode == "wal":
            return
        if time.monotonic() > deadline:
            raise sqlite3.OperationalError(f"could not switch the results store to WAL in {BUSY_TIMEOUT_S} s ({mode})")
        time.sleep(0.05)


def append_record(path: Path, run_id: str, record: dict, samples: list[dict] = ()) -> int:
    """Append one case's metrics, record and per-sample rows in a single transaction; returns the metric rows.

    Raises:
        StoreError: the store could not take the rows (locked past the busy timeout, disk full, not
            SQLite...); nothing of this record is written.
    """
    try:
        return _append(path, run_id, record, samples)
    except (sqlite3.Error, OSError) as error:
        raise StoreError(f"{path}: {error}") from None


def _append(path: Path, run_id: str, record: dict, samples: list[dict]) -> int:
    prov = record["provenance"]
    rows = [
        (run_id, prov["created"], record["case_id"], record["model"], record["variant"], record["task"],
         record["split"], record["n"], metric, m["value"], m.get("low"), m.get("high"), prov.get("model_hash"),
         prov.get("adapter_hash"), prov.get("task_version"), prov.get("data_hash"),
         json.dumps(prov.get("decoding"), sort_keys=True), json.dumps(prov.get("versions"), sort_keys=True),
         prov.get("git_commit"))
        for metric, m in record["metrics"].items()
    ]
    connection = connect(path)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.executemany(f"INSERT OR REPLACE INTO results VALUES ({', '.join('?' * 19)})", rows)
        connection.execute("INSERT OR REPLACE INTO cases VALUES (?, ?, ?)",
                           (run_id, record["case_id"], json.dumps(record, default=str)))
        connection.executemany("INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?, ?)", [
            (run_id, record["case_id"], position, row["sample_id"], json.dumps(row, default=str))
            for position, row in enumerate(samples)])
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()
    return len(rows)
