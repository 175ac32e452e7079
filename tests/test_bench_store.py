"""The SQLite results store (bench/store.py) under concurrent writers."""

import multiprocessing
import sqlite3

from slmbench.bench.store import append_record, connect


def _record(case: int) -> dict:
    return {"case_id": f"m::t{case}", "model": "m", "variant": "base", "task": f"t{case}", "split": "test", "n": 3,
            "metrics": {f"metric{k}": {"value": k / 10, "low": 0.0, "high": 1.0} for k in range(5)},
            "provenance": {"created": "2026-11-22T00:00:00+00:00", "decoding": {"max_new_tokens": 8},
                           "versions": {"torch": "x"}, "model_hash": "h"}}


def _writer(path: str, run_id: str, first: int) -> None:
    for case in range(first, first + 40):
        append_record(path, run_id, _record(case))


def test_two_processes_appending_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "results.db")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, f"run{w}", w * 40)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT COUNT(*), COUNT(DISTINCT case_id), COUNT(DISTINCT run_id) FROM results").fetchone() == (400, 80, 2)
        assert db.execute("SELECT value FROM results WHERE case_id='m::t79' AND metric='metric3'").fetchone() == (0.3,)


def _open_together(paths: list[str], barrier) -> None:
    for path in paths:
        barrier.wait()
        connect(path).close()


def test_processes_creating_the_store_together_all_get_it(tmp_path):
    """Switching a new database to WAL fails at once, not after the busy timeout, when another process
    is switching it too; xdist workers starting on a fresh results.db do exactly that."""
    paths = [str(tmp_path / f"results{i}.db") for i in range(25)]
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4, timeout=30)  # a worker that died breaks it for the others
    workers = [context.Process(target=_open_together, args=(paths, barrier)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0, 0, 0]
    modes = {sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] for path in paths}
    assert modes == {"wal"}
