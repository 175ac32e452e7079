"""The shape a baseline row must have before the gate compares against it.

A baseline is a leaderboard JSON that people may edit by hand; a row the gate cannot read must fail
with the file, the row and the field at fault rather than a KeyError in the middle of a run.
"""

from __future__ import annotations

from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from slmbench.errors import SlmbenchError

_NUMBER_OR_NULL = {"type": ["number", "null"]}
ROW_SCHEMA = {
    "type": "object",
    "required": ["case_id", "split", "limit", "n", "metrics", "provenance"],
    "properties": {
        "case_id": {"type": "string", "minLength": 1},
        "split": {"type": "string"},
        "limit": {"type": ["integer", "null"], "minimum": 1},
        "n": {"type": "integer", "minimum": 1},
        "metrics": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["value"],
            "properties": {"value": _NUMBER_OR_NULL, "low": _NUMBER_OR_NULL, "high": _NUMBER_OR_NULL}}},
        "provenance": {"type": "object"},
    },
}
_VALIDATOR = Draft202012Validator(ROW_SCHEMA)


class BaselineRowError(SlmbenchError):
    """A baseline row that is not shaped like a leaderboard row (hand-edited or truncated)."""


def check_rows(path: Path, rows: list) -> None:
    """Raise BaselineRowError naming ``file: rows[i] (case id): field: problem`` for the first bad row."""
    seen: set[str] = set()
    for index, row in enumerate(rows):
        error = best_match(_VALIDATOR.iter_errors(row))
        name = f" ({row['case_id']})" if isinstance(row, dict) and isinstance(row.get("case_id"), str) else ""
        if error is not None:
            field = ".".join(str(part) for part in error.absolute_path)
            raise BaselineRowError(f"{path}: rows[{index}]{name}: {field + ': ' if field else ''}{error.message}")
        if row["case_id"] in seen:
            raise BaselineRowError(f"{path}: rows[{index}]{name}: the case appears twice in the baseline")
        seen.add(row["case_id"])
