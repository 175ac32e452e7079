"""The regression gate: compare a run with a committed baseline (a `--bench-json` file).

A metric regresses when it falls below the baseline value by more than the baseline's own 95%
interval allows (below its lower bound), or by more than a tolerance from the thresholds file.
"""

from __future__ import annotations

import json
from pathlib import Path

from slmbench.errors import SlmbenchError

from slmbench.bench.baseline_rows import check_rows


class BaselineError(SlmbenchError):
    """A baseline file that cannot be read or does not match the run."""


def load_baseline(path: Path) -> dict[str, dict]:
    """case id -> baseline row."""
    try:
        board = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline not found; create it with --bench-update-baseline") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not valid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot be read as a baseline: {error}") from None
    if not isinstance(board, dict) or not isinstance(board.get("rows"), list):
        raise BaselineError(f"{path}: not a leaderboard JSON (no 'rows' list)")
    check_rows(path, board["rows"])
    return {row["case_id"]: row for row in board["rows"]}


def comparable(record: dict, baseline: dict) -> str | None:
    """Why a record cannot be compared with its baseline row (other split, samples, task data, dtype or batch size)."""
    for field in ("split", "limit", "n"):
        if record[field] != baseline.get(field):
            return f"{field} is {record[field]!r} here but {baseline.get(field)!r} in the baseline"
    for field in ("task_version", "data_hash"):
        if record["provenance"][field] != baseline.get("provenance", {}).get(field):
            return f"the task's {field.replace('_', ' ')} changed since the baseline"
    for field in ("dtype", "batch_size"):  # both can flip near-tied greedy tokens; older baselines lack batch_size
        here, there = record["provenance"].get(field), baseline["provenance"].get(field, record["provenance"].get(field))
        if here != there:
            return f"{field.replace('_', ' ')} is {here!r} here but {there!r} in the baseline"
    return None


def regressions(record: dict, baseline: dict, tolerances: dict[str, float | None]) -> list[str]:
    """One line per metric that fell further below the baseline than its interval or tolerance allows."""
    found = []
    for name, before in baseline["metrics"].items():
        now = record["metrics"].get(name)
        if now is None or before.get("value") is None or now["value"] is None:
            continue
        tolerance = tolerances.get(name)
        if tolerance is not None:
            floor, why = before["value"] - tolerance, f"tolerance {tolerance:g}"
        elif before.get("low") is not None:
            floor, why = before["low"], f"baseline 95% CI [{before['low']:.3f}, {before['high']:.3f}]"
        else:
            floor, why = before["value"], "no interval recorded"
        if now["value"] < floor - 1e-12:
            found.append(f"{name}: {now['value']:.3f} < {floor:.3f} (baseline {before['value']:.3f}, {why})")
    return found
