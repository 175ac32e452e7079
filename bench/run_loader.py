"""Reading a bench run back from the results store: its case records and per-sample rows.

Runs stored before the ``cases`` table existed are rebuilt from their ``results`` rows (metrics and
provenance, no per-sample rows), so an old results.db still gives a report.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from slmbench.errors import SlmbenchError

from slmbench.bench import store

SPEED_METRICS = ("tokens_per_sec", "eval_seconds")  # stored as metric rows (see plugin._with_speed_rows)


class RunNotFound(SlmbenchError):
    """The store has no such run (or no run at all)."""


@dataclass(frozen=True)
class StoredRun:
    """One run as the report needs it: records in stored order and per-sample rows per case."""

    run_id: str
    records: list[dict]
    samples: dict[str, list[dict]]


def load_run(path: Path, run_id: str | None = None) -> StoredRun:
    """The run `run_id` from the store at `path` (the latest run when None)."""
    path = Path(path)
    if not path.is_file():
        raise RunNotFound(f"{path}: no results store")
    connection = store.connect(path)
    try:
        run_id = run_id or _latest_run(connection, path)
        records = _records(connection, run_id) or _records_from_results(connection, run_id)
        if not records:
            known = [row[0] for row in connection.execute(
                "SELECT run_id FROM results GROUP BY run_id ORDER BY MAX(created) DESC LIMIT 5")]
            raise RunNotFound(f"{path}: no run {run_id!r}; latest runs: {', '.join(known) or 'none'}")
        samples = _samples(connection, run_id)
    finally:
        connection.close()
    for record in records:
        if not record.get("sample_stats") and samples.get(record["case_id"]):
            record["sample_stats"] = {row["sample_id"]: row["stats"] for row in samples[record["case_id"]]}
    return StoredRun(run_id, records, samples)


def _latest_run(connection: sqlite3.Connection, path: Path) -> str:
    row = connection.execute("SELECT run_id FROM results GROUP BY run_id ORDER BY MAX(created) DESC, "
                             "MAX(rowid) DESC LIMIT 1").fetchone()
    if row is None:
        raise RunNotFound(f"{path}: the store holds no run yet")
    return row[0]


def _records(connection: sqlite3.Connection, run_id: str) -> list[dict]:
    records = []
    for (text,) in connection.execute("SELECT record FROM cases WHERE run_id = ? ORDER BY rowid", (run_id,)):
        record = json.loads(text)
        record["metrics"] = {k: v for k, v in record["metrics"].items() if k not in SPEED_METRICS}
        records.append(record)
    return records


def _records_from_results(connection: sqlite3.Connection, run_id: str) -> list[dict]:
    """Records of a run stored by an older slmbench (metric rows only)."""
    records: dict[str, dict] = {}
    for row in connection.execute("SELECT * FROM results WHERE run_id = ? ORDER BY rowid", (run_id,)):
        (_, created, case_id, model, variant, task, split, n, metric, value, low, high, model_hash, adapter_hash,
         task_version, data_hash, decoding, versions, commit) = row
        record = records.setdefault(case_id, {
            "case_id": case_id, "model": model, "variant": variant, "task": task, "split": split, "limit": None,
            "n": n, "metrics": {}, "speed": {"tokens_per_sec": None, "eval_seconds": None}, "sample_stats": {},
            "provenance": {"created": created, "model_hash": model_hash, "adapter_hash": adapter_hash,
                           "task_version": task_version, "data_hash": data_hash,
                           "decoding": json.loads(decoding) if decoding else None,
                           "versions": json.loads(versions) if versions else None, "git_commit": commit}})
        if metric in SPEED_METRICS:
            record["speed"][metric] = value
        else:
            record["metrics"][metric] = {"value": value, "low": low, "high": high}
    return list(records.values())


def _samples(connection: sqlite3.Connection, run_id: str) -> dict[str, list[dict]]:
    samples: dict[str, list[dict]] = {}
    for case_id, row in connection.execute(
            "SELECT case_id, row FROM samples WHERE run_id = ? ORDER BY case_id, position", (run_id,)):
        samples.setdefault(case_id, []).append(json.loads(row))
    return samples
