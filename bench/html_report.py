"""report.html: one self-contained page (inline CSS, JS and SVG, no network) for a bench run.

It shows the summary and per-task tables with CIs as interval bars, tokens/s per case, each
model's rows side by side per sample with the output diff against the base and filters
(all / failed / changed: fixed, broken), iris confusion matrices, products neighbours, adapters'
loss curves and settings, and provenance per row. Written at the end of ``pytest bench``
(``--bench-report``) and by ``slmbench report`` from results.db.

Every model output and data text goes through Jinja's autoescaping; charts are matplotlib SVG
marked safe (matplotlib escapes the labels it writes into them).
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from markupsafe import Markup

from slmbench.atomic import write_text_atomic

from slmbench.bench import report_samples, report_tables
from slmbench.bench.leaderboard import sort_records

TEMPLATES = Path(__file__).with_name("templates")
FILTERS = ("all", "failed", "changed", "fixed", "broken")


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                     undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(metric=_metric, percent=_percent, delta=_delta, number=_number, short=_short,
                               svg=Markup)
    return environment


def render_report(records: list[dict], samples: dict[str, list[dict]], run_id: str) -> str:
    """The report page for a run's records and per-sample rows, as HTML text."""
    records = sort_records(records)
    tasks = list(dict.fromkeys(r["task"] for r in records))
    groups = report_samples.build_groups(records, samples)
    sections = []
    for task in tasks:
        task_records = [r for r in records if r["task"] == task]
        confusions = [(report_tables.row_label(r), report_samples.confusion(samples.get(r["case_id"], [])))
                      for r in task_records]
        sections.append({"task": task, "headline": report_tables.headline(task, task_records),
                         "pass_mark": report_samples.pass_mark(task),
                         "table": report_tables.task_table(task, task_records),
                         "confusions": [(label, c) for label, c in confusions if c],
                         "groups": [g for g in groups if g.task == task]})
    created = sorted(r["provenance"].get("created") or "" for r in records)
    commits = sorted({str(r["provenance"].get("git_commit")) for r in records})
    return _environment().get_template("report.html.j2").render(
        run_id=run_id, created=created[0] if created else "", commits=commits, records=records,
        summary=report_tables.summary(records) if records else None, sections=sections,
        speed=report_tables.speed_rows(records), provenance=report_tables.provenance_rows(records),
        adapters=report_tables.adapters(records), filters=FILTERS)


def write_report(path: Path, records: list[dict], samples: dict[str, list[dict]], run_id: str) -> Path:
    """Render and write the report atomically (a killed run never leaves half a page)."""
    write_text_atomic(Path(path), render_report(records, samples, run_id))
    return Path(path)


def _metric(metric: dict | None, scale: float = 1.0, digits: int = 3) -> str:
    if not metric or metric.get("value") is None:
        return "—"
    text = f"{metric['value'] * scale:.{digits}f}"
    if metric.get("low") is not None and metric.get("high") is not None:
        text += f" [{metric['low'] * scale:.{digits}f}, {metric['high'] * scale:.{digits}f}]"
    return text


def _percent(metric: dict | None) -> str:
    return _metric(metric, 100, 1)


def _delta(metric: dict | None, scale: float = 1.0) -> str:
    if not metric:
        return "—"
    digits = 1 if scale == 100 else 3
    text = (f"{metric['value'] * scale:+.{digits}f} "
            f"[{metric['low'] * scale:+.{digits}f}, {metric['high'] * scale:+.{digits}f}]")
    return text + (" *" if metric.get("significant") else "")


def _number(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _short(value, length: int = 12) -> str:
    return "—" if not value else str(value)[:length]
