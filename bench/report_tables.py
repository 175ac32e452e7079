"""The report's tables and charts as plain data: summary, per-task metrics, speed, provenance, adapters."""

from __future__ import annotations

import json
from pathlib import Path

from slmbench.tasks.core import JSON_METRICS

from slmbench.bench import report_charts
from slmbench.bench.leaderboard import all_deltas, headline_metric
from slmbench.bench.report_samples import known_task

SPEED_FIELDS = ("tokens_per_sec", "tokens_per_sec_cached", "tokens_per_sec_measured_at", "eval_seconds",
                "generated_tokens", "cache_hits")


def row_label(record: dict) -> str:
    label = record["model"] if record["variant"] == "base" else f"{record['model']}+{record['variant']}"
    return f"{label} (random weights)" if record.get("random_weights") else label


def task_metrics(task: str, records: list[dict]) -> list[str]:
    """The metric columns of a task table: the task's own order, then any others the rows carry."""
    known = list(known_task(task).metrics) if known_task(task) else []
    seen = dict.fromkeys(known + [m for r in records for m in r["metrics"]])
    return [m for m in seen if any(m in r["metrics"] for r in records)]


def headline(task: str, records: list[dict]) -> str:
    if known_task(task):
        return headline_metric(task)
    return next(iter(records[0]["metrics"]), "")


def summary(records: list[dict]) -> dict:
    """The headline metric of every task per row label, plus one interval panel per task."""
    tasks = list(dict.fromkeys(r["task"] for r in records))
    labels = list(dict.fromkeys(row_label(r) for r in records))
    cells = {(row_label(r), r["task"]): r["metrics"].get(headline(r["task"], [r])) for r in records}
    panels = [_panel(task, headline(task, [r for r in records if r["task"] == task]),
                     [r for r in records if r["task"] == task]) for task in tasks]
    return {"tasks": [(t, headline(t, [r for r in records if r["task"] == t])) for t in tasks],
            "rows": [(label, [cells.get((label, t)) for t in tasks]) for label in labels],
            "chart": report_charts.interval_panels(panels, columns=3)}


def _panel(task: str, metric: str, records: list[dict]) -> dict:
    threshold = known_task(task).thresholds.get(metric) if known_task(task) else None
    rows = []
    for record in records:
        m = record["metrics"].get(metric) or {}
        rows.append((row_label(record), m.get("value"), m.get("low"), m.get("high")))
    return {"title": f"{task}: {metric}", "threshold": threshold, "rows": rows}


def task_table(task: str, records: list[dict]) -> dict:
    """A task's metric table (rows and their Δ vs base) and interval panels for its thresholded metrics."""
    metrics = task_metrics(task, records)
    paired = [r for r in records if r.get("sample_stats")] if known_task(task) else []
    deltas = {d["case_id"]: d for d in all_deltas(paired)}
    charted = [m for m in (known_task(task).thresholds if known_task(task) else [headline(task, records)]) if m in metrics]
    return {"metrics": metrics, "percent": [m for m in metrics if m in JSON_METRICS],
            "rows": [{"record": r, "label": row_label(r), "delta": deltas.get(r["case_id"])} for r in records],
            "chart": report_charts.interval_panels([_panel(task, m, records) for m in charted], columns=2)}


def speed_rows(records: list[dict]) -> list[dict]:
    """Tokens/s (of the case's own generation, or cached with its outputs) and evaluation time per case,
    with the backend that ran it."""
    return [{"case_id": r["case_id"], "backend": r["provenance"].get("backend", "transformers"),
             "dtype": r["provenance"].get("dtype") or "—", **dict.fromkeys(SPEED_FIELDS), **r.get("speed", {})}
            for r in records]


def provenance_rows(records: list[dict]) -> list[dict]:
    """What produced each row: hashes, task version and data, decoding, library versions, commit."""
    rows = []
    for r in records:
        p = r["provenance"]
        rows.append({"case_id": r["case_id"], "model_hash": p.get("model_hash"), "adapter_hash": p.get("adapter_hash"),
                     "task_version": p.get("task_version"), "data_hash": p.get("data_hash"),
                     "backend": p.get("backend", "transformers"), "dtype": p.get("dtype"),
                     "decoding": _compact(p.get("decoding")), "versions": _compact(p.get("versions")),
                     "commit": p.get("git_commit"), "created": p.get("created")})
    return rows


def _compact(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    return "—" if value is None else str(value)


def adapters(records: list[dict]) -> list[dict]:
    """Each adapter the rows used: its loss curve and training settings, when its folder is still here."""
    found = []
    for path in dict.fromkeys(r["provenance"].get("adapter") for r in records if r["provenance"].get("adapter")):
        folder = Path(path)
        history, config = _read_json(folder / "loss_history.json"), _read_json(folder / "training_config.json")
        users = [r["case_id"] for r in records if r["provenance"].get("adapter") == path]
        found.append({"path": path, "cases": users, "settings": (config or {}).get("settings") or {},
                      "training": {k: v for k, v in (config or {}).items() if not isinstance(v, (dict, list))},
                      "chart": report_charts.loss_curve(history, folder.name) if history else "",
                      "missing": None if history else f"{folder / 'loss_history.json'} not found"})
    return found


def _read_json(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
