"""`slmbench compare OLD.json NEW.json`: per-case metric deltas between two leaderboard JSONs, as markdown.

Where both runs scored the same samples (same split, same ids in the same order), the delta gets a
95% paired bootstrap interval (leaderboard.paired_delta, the same one the Δ vs base rows use). The
per-sample statistics come from the rows themselves when the JSON carries them, else from the
run's per-sample logs (the board's ``samples_dir``, relative to the JSON file).
"""

from __future__ import annotations

import json
from pathlib import Path

from tabulate import tabulate

from slmbench.errors import SlmbenchError

from slmbench.bench import samples_log
from slmbench.bench.leaderboard import paired_delta
from slmbench.bench.report_samples import known_task


class CompareError(SlmbenchError):
    """A leaderboard JSON that cannot be compared."""


def load_board(path: Path) -> dict[str, dict]:
    """case id -> row (with ``sample_stats`` when the JSON or its per-sample logs have them)."""
    path = Path(path)
    try:
        board = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CompareError(f"{path}: no such leaderboard JSON") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CompareError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(board, dict) or not isinstance(board.get("rows"), list):
        raise CompareError(f"{path}: not a leaderboard JSON (no 'rows' list)")
    logged = _logged_stats(path, board)
    rows = {}
    for row in board["rows"]:
        if not row.get("sample_stats") and row["case_id"] in logged:
            row = {**row, "sample_stats": logged[row["case_id"]]}
        rows[row["case_id"]] = row
    return rows


def _logged_stats(path: Path, board: dict) -> dict[str, dict]:
    folder = board.get("samples_dir")
    if not folder or not (path.parent / folder).is_dir():
        return {}
    cases = samples_log.read_run(path.parent / folder)
    return {case: {row["sample_id"]: row["stats"] for row in rows} for case, rows in cases.items()}


def compare_markdown(old: dict[str, dict], new: dict[str, dict]) -> str:
    """A markdown table: case, metric, old and new with CIs, and the delta (paired CI where possible)."""
    table = []
    for case_id in [c for c in new if c in old]:
        before, after = old[case_id], new[case_id]
        paired = _paired(before, after)
        for metric in _metrics(after):
            table.append([case_id, metric, _cell(before["metrics"].get(metric)), _cell(after["metrics"].get(metric)),
                          _delta(before["metrics"].get(metric), after["metrics"].get(metric), paired.get(metric))])
    lines = [tabulate(table, headers=["case", "metric", "old [95% CI]", "new [95% CI]", "Δ new − old"],
                      tablefmt="github", disable_numparse=True)] if table else ["No case is in both files."]
    only_old, only_new = [c for c in old if c not in new], [c for c in new if c not in old]
    if only_new:
        lines.append(f"\nOnly in NEW: {', '.join(only_new)}")
    if only_old:
        lines.append(f"\nOnly in OLD: {', '.join(only_old)}")
    lines.append("\nΔ in brackets: 95% paired bootstrap CI over the shared samples (* excludes 0); "
                 "'unpaired' where the runs scored different samples or lack per-sample stats.")
    return "\n".join(lines) + "\n"


def _paired(before: dict, after: dict) -> dict[str, dict]:
    if not before.get("sample_stats") or not after.get("sample_stats") or not known_task(after["task"]):
        return {}
    delta = paired_delta(before, after)
    return delta["metrics"] if delta else {}


def _metrics(row: dict) -> list[str]:
    task = known_task(row["task"])
    known = list(task.metrics) if task else []
    return [m for m in dict.fromkeys(known + list(row["metrics"])) if m in row["metrics"]]


def _cell(metric: dict | None) -> str:
    if not metric or metric.get("value") is None:
        return "—"
    if metric.get("low") is None:
        return f"{metric['value']:.3f}"
    return f"{metric['value']:.3f} [{metric['low']:.3f}, {metric['high']:.3f}]"


def _delta(before: dict | None, after: dict | None, interval: dict | None) -> str:
    if not before or not after or before.get("value") is None or after.get("value") is None:
        return "—"
    text = f"{after['value'] - before['value']:+.3f}"
    if not interval:
        return text + " (unpaired)"
    return text + f" [{interval['low']:+.3f}, {interval['high']:+.3f}]" + (" *" if interval["significant"] else "")
