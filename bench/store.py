"""The results store: every bench run appended to SQLite, one row per case × metric.

Rows carry their provenance, so a number can always be traced to the model revision, adapter,
task version, data and decoding settings that produced it. Writers take an immediate transaction
with a generous busy timeout: concurrent xdist workers queue instead of losing rows.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

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
BUSY_TIMEOUT_S = 60


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the store; WAL mode lets readers and one writer work together."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    use_wal(connection)
    connection.execute(SCHEMA)
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


def append_record(path: Path, run_id: str, record: dict) -> int:
    """Append one case's metrics in a single transaction; returns the number of rows written."""
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
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()
    return len(rows)
