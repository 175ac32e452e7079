"""The leaderboard: one markdown table per task plus a summary, and the same data as JSON.

A model's base rows (0-shot and K-shot) and adapter rows sit together; the adapter row is followed
by its delta over the best base row of that model and task (by the task's headline metric), with
a paired bootstrap interval (both systems resampled on the same sample indices). Classical
baselines close each task's table.
"""

from __future__ import annotations

import numpy as np
from tabulate import tabulate

from slmbench.tasks import resolve_task, task_names
from slmbench.tasks.core import JSON_METRICS
from slmbench.tasks.scoring import paired_bootstrap

from slmbench.bench.classical import NO_BASELINE
from slmbench.bench.seeds import seed_cell, seed_summaries

FORMAT = 1


def sort_records(records: list[dict]) -> list[dict]:
    """Task order of the registry (tasks of your own after it), then model: 0-shot, K-shot, adapters;
    classical rows last."""
    task_order = {name: i for i, name in enumerate(task_names(include_loaded=True))}
    kind_order = {"base": 0, "adapter": 1, "classical": 2}
    return sorted(records, key=lambda r: (task_order.get(r["task"], 99), _kind(r) == "classical", r["model"],
                                          kind_order.get(_kind(r), 1), r.get("shots", 0), r["variant"],
                                          r.get("structured", False), r["split"]))


def _kind(record: dict) -> str:
    """"base" (0- or K-shot), "adapter" or "classical"; records from before few-shot rows lack "kind"."""
    return record.get("kind") or ("base" if record["variant"] == "base" else "adapter")


def headline_metric(task: str) -> str:
    """The metric the task names as its headline (Task.headline)."""
    return resolve_task(task).headline


def paired_delta(base: dict, adapted: dict, resamples: int = 1000, seed: int = 0) -> dict | None:
    """Adapter minus base for every metric, with a 95% paired bootstrap interval; None if not comparable."""
    ids = list(base["sample_stats"])
    if base["split"] != adapted["split"] or ids != list(adapted["sample_stats"]) or not ids:
        return None
    point, boot = paired_bootstrap(resolve_task(base["task"]), base["sample_stats"], adapted["sample_stats"], resamples, seed)
    metrics = {}
    for name, diff in boot.items():
        if np.isnan(point[name]):
            continue  # not defined on this data (e.g. an entity type it does not annotate)
        low, high = float(np.nanpercentile(diff, 2.5)), float(np.nanpercentile(diff, 97.5))
        metrics[name] = {"value": point[name], "low": low, "high": high, "significant": bool(low > 0 or high < 0)}
    return {"case_id": adapted["case_id"], "base_case_id": base["case_id"], "task": base["task"], "metrics": metrics}


def best_base(records: list[dict], adapted: dict) -> dict | None:
    """The base row (0-shot or K-shot) of the adapter's model and task that scores highest on the
    task's headline metric, among those run on the same samples; ties go to fewer shots."""
    metric = headline_metric(adapted["task"])
    candidates = [r for r in records if _kind(r) == "base" and r["model"] == adapted["model"]
                  and r["task"] == adapted["task"] and r["split"] == adapted["split"]
                  and list(r["sample_stats"]) == list(adapted["sample_stats"])
                  and (r["metrics"].get(metric) or {}).get("value") is not None]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r["metrics"][metric]["value"], -r.get("shots", 0)))


def all_deltas(records: list[dict]) -> list[dict]:
    """A paired delta for every adapter record against the best base row run on the same samples."""
    deltas = []
    for record in records:
        base = best_base(records, record) if _kind(record) == "adapter" else None
        delta = paired_delta(base, record) if base is not None else None
        if delta is not None:
            delta.update(base_variant=base["variant"], chosen_by=headline_metric(record["task"]))
            deltas.append(delta)
    return deltas


def to_json(records: list[dict]) -> dict:
    """The leaderboard as data: rows without per-sample stats, plus the paired deltas."""
    records = sort_records(records)
    return {"format": FORMAT, "rows": [{k: v for k, v in r.items() if k != "sample_stats"} for r in records],
            "deltas": all_deltas(records), "seed_summaries": seed_summaries(records)}


def render_markdown(board: dict) -> str:
    """GitHub-flavoured markdown: a summary table, then one table per task."""
    rows, deltas = board["rows"], {d["case_id"]: d for d in board["deltas"]}
    seeds = {summary["case_ids"][-1]: summary for summary in board.get("seed_summaries", [])}
    if not rows:
        return "# slmbench leaderboard\n\nNo case ran.\n"
    parts = ["# slmbench leaderboard", "", *_partial_banner(board),
             "## Summary (headline metric per task)", "", _summary(rows), ""]
    for task in dict.fromkeys(r["task"] for r in rows):
        parts += [f"## {task}", "", _task_table(task, [r for r in rows if r["task"] == task], deltas, seeds), ""]
        if task in NO_BASELINE:
            parts += [f"{task}: {NO_BASELINE[task]}.", ""]
    parts.append("95% bootstrap intervals in brackets; Δ rows: adapter minus the model's best base row "
                 "(0-shot or K-shot, free or +structured, by the task's headline metric; named in the row) on the "
                 "same samples, paired bootstrap; * marks a Δ whose interval excludes 0. K-shot rows put K worked "
                 "examples from the train split before each prompt; +structured rows decode under the task's JSON "
                 "Schema (structured outputs). classical rows use no language model. "
                 "(random weights) rows are smoke tests. tokens/s: generated tokens per second of the case's own "
                 "generation; (cached DATE): outputs and tokens/s came from the cache, timed on this machine on DATE "
                 "(--bench-retime times again). "
                 "'N seeds' rows: mean over the seeds' runs [95% t-interval over seeds] (min–max).")
    return "\n".join(parts) + "\n"


def _partial_banner(board: dict) -> list[str]:
    """Markdown lines saying that a board holds only what ran before the run stopped, if it does."""
    if not board.get("partial"):
        return []
    ran = ", ".join(board.get("cases_ran", [])) or "none"
    return [f"> **Partial leaderboard**: the run stopped early ({board.get('partial_reason', 'interrupted')}); "
            f"only these cases finished: {ran}. The last full leaderboard, if any, is kept at "
            f"`{board.get('full_board', 'leaderboard.md')}`.", ""]


def _summary(rows: list[dict]) -> str:
    """One line per system; K-shot and classical rows share a line across tasks (K and method in the cell)."""
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    ordered = sorted(rows, key=lambda r: (_kind(r) == "classical", r["model"], _kind(r) != "base", r.get("shots", 0) > 0,
                                          r["variant"]))
    labels = list(dict.fromkeys(_summary_label(r) for r in ordered))
    cells = {(_summary_label(r), r["task"]): _cell(r["metrics"].get(headline_metric(r["task"]))) + _summary_note(r)
             for r in rows}
    table = [[label] + [cells.get((label, task), "—") for task in tasks] for label in labels]
    return tabulate(table, headers=["model"] + [f"{t} {headline_metric(t)}" for t in tasks], tablefmt="github")


def _summary_label(row: dict) -> str:
    if _kind(row) == "classical":
        return "classical"
    if row.get("shots"):
        return (f"{row['model']}+few-shot" + ("+structured" if row.get("structured") else "")
                + (" (random weights)" if row.get("random_weights") else ""))
    return _label(row)


def _summary_note(row: dict) -> str:
    if _kind(row) == "classical":
        return f" ({row['variant']})"
    return f" ({row['shots']}-shot)" if row.get("shots") else ""


def _task_table(task: str, rows: list[dict], deltas: dict[str, dict], seeds: dict[str, dict]) -> str:
    metrics = [m for m in resolve_task(task).metrics if m not in JSON_METRICS]
    headers = ["model", "variant", "split: data", "N", "valid JSON %", "schema %", *metrics, "tokens/s", "eval s"]
    table = []
    for row in rows:
        table.append([_model(row), row["variant"], _data(row), row["n"],
                      *(_percent(row["metrics"].get(m)) for m in JSON_METRICS),
                      *(_cell(row["metrics"].get(m)) for m in metrics),
                      _speed(row), _number(row["speed"]["eval_seconds"], 1)])
        delta = deltas.get(row["case_id"])
        if delta:
            table.append(["", f"Δ vs {delta.get('base_variant', 'base')}", "", "", *(_delta(delta["metrics"].get(m), 100) for m in JSON_METRICS),
                          *(_delta(delta["metrics"].get(m)) for m in metrics), "", ""])
        summary = seeds.get(row["case_id"])
        if summary:
            table.append([_model(row), f"{summary['variant']}: {len(summary['seeds'])} seeds", "", "",
                          *(seed_cell(summary["metrics"].get(m), 100) for m in JSON_METRICS),
                          *(seed_cell(summary["metrics"].get(m)) for m in metrics), "", ""])
    return tabulate(table, headers=headers, tablefmt="github", disable_numparse=True)


def _data(row: dict) -> str:
    """The split and the data set it was read from; which entity types it annotates when it says."""
    provenance = row.get("provenance", {})
    text = f"{row['split']}: {provenance['data_set']}" if provenance.get("data_set") else row["split"]
    types = provenance.get("annotated_types")
    return f"{text} ({', '.join(types)} annotated)" if types else text


def _label(row: dict) -> str:
    label = row["case_id"].split("::")[0]
    return f"{label} (random weights)" if row.get("random_weights") else label


def _model(row: dict) -> str:
    return f"{row['model']} (random weights)" if row.get("random_weights") else row["model"]


def _cell(metric: dict | None, scale: float = 1.0, digits: int = 3) -> str:
    if not metric or metric["value"] is None:
        return "—"
    text = f"{metric['value'] * scale:.{digits}f}"
    if metric.get("low") is not None:
        text += f" [{metric['low'] * scale:.{digits}f}, {metric['high'] * scale:.{digits}f}]"
    return text


def _percent(metric: dict | None) -> str:
    return _cell(metric, 100, 1)


def _delta(metric: dict | None, scale: float = 1.0) -> str:
    if not metric:
        return "—"
    digits = 1 if scale == 100 else 3
    text = f"{metric['value'] * scale:+.{digits}f} [{metric['low'] * scale:+.{digits}f}, {metric['high'] * scale:+.{digits}f}]"
    return text + (" *" if metric["significant"] else "")


def _speed(row: dict) -> str:
    """Tokens/s, "(cached DATE)" when read from the generation cache, "not timed here" when it has none."""
    speed = row["speed"]
    if speed.get("tokens_per_sec") is None:  # classical rows and records from before tokens/s was cached lack the flag
        return "— (not timed here)" if "tokens_per_sec_cached" in speed else "—"
    text = _number(speed["tokens_per_sec"], 1)
    if not speed.get("tokens_per_sec_cached"):
        return text
    return f"{text} (cached {(speed.get('tokens_per_sec_measured_at') or 'undated')[:10]})"


def _number(value: float | None, digits: int) -> str:
    return "—" if value is None else f"{value:.{digits}f}"
