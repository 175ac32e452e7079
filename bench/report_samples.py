"""The report's per-sample view: a model's rows on one task side by side, sample by sample.

A sample *passes* for a row when the task's headline metric, computed on that sample alone,
reaches the task's threshold for it (accuracy 1 of 1 on iris, ROUGE-L ≥ 0.3 on products). A
non-base row *fixed* a sample its model's base failed, and *broke* one the base passed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz.distance import Indel

from slmbench.errors import TaskError
from slmbench.tasks import Task, resolve_task
from slmbench.tasks.scoring import aggregate

from slmbench.bench.leaderboard import headline_metric

TOKEN = re.compile(r"\s+|\w+|[^\w\s]")  # words, runs of blanks and single marks: diffs read as edits of words


@dataclass
class Cell:
    """One row's output on one sample, with its diff against the base output."""

    label: str
    output: str
    score: float | None
    passed: bool | None
    explanation: str
    diff: list[tuple[str, str]] | None  # (kind, text) with kind in equal / insert / delete; None for the base
    details: dict
    finish_reason: str = ""
    status: str = ""  # "fixed", "broken" or ""


@dataclass
class SampleView:
    sample_id: str
    input: str
    reference: str
    cells: list[Cell] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        """Filter classes: failed (some row failed), changed, fixed, broken."""
        flags = {"failed"} if any(cell.passed is False for cell in self.cells) else set()
        statuses = {cell.status for cell in self.cells if cell.status}
        return sorted(flags | statuses | ({"changed"} if statuses else set()))


@dataclass
class Group:
    """One model's rows (base first) on one task, sample by sample."""

    task: str
    model: str
    labels: list[str]
    samples: list[SampleView]

    def count(self, flag: str) -> int:
        return sum(flag in sample.flags for sample in self.samples)


def known_task(name: str) -> Task | None:
    """The task behind a stored name, or None when this process cannot find it (a report or comparison
    of a run that used someone's own task still renders, without per-sample pass marks)."""
    try:
        return resolve_task(name)
    except TaskError:
        return None


def as_text(value) -> str:
    """Text for display: strings as they are, anything else as indented JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1, default=str)


def word_diff(old: str, new: str) -> list[tuple[str, str]]:
    """`new` as segments against `old`: equal, insert (only in new) and delete (only in old); where
    both change, what was deleted comes before what was inserted."""
    a, b = TOKEN.findall(old), TOKEN.findall(new)
    segments, deleted, inserted = [], [], []
    # rapidfuzz's longest-common-subsequence diff (C++): difflib took 32 s of a 111 s profiled warm bench (1600 diffs)
    for op, i1, i2, j1, j2 in [*Indel.opcodes(a, b), ("equal", len(a), len(a), len(b), len(b))]:
        if op != "equal":
            deleted += a[i1:i2]
            inserted += b[j1:j2]
            continue
        segments += [(kind, "".join(words)) for kind, words in (("delete", deleted), ("insert", inserted)) if words]
        deleted, inserted = [], []
        if j2 > j1:
            segments.append(("equal", "".join(b[j1:j2])))
    return segments


def sample_scores(task_name: str, rows: list[dict]) -> list[float | None]:
    """The task's headline metric on each sample alone (None for tasks this slmbench does not know)."""
    task = known_task(task_name)
    if task is None or not rows:
        return [None] * len(rows)
    names = sorted({name for row in rows for name in row["stats"]})
    matrix = np.array([[float(row["stats"].get(name, 0.0)) for name in names] for row in rows]).reshape(len(rows), -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = aggregate(task, names, matrix, np.arange(len(rows))[:, None])[headline_metric(task_name)]
    return [float(np.nan_to_num(v, nan=0.0)) for v in values]


def pass_mark(task_name: str) -> float | None:
    task = known_task(task_name)
    return task.thresholds.get(headline_metric(task_name)) if task else None


def build_groups(records: list[dict], samples: dict[str, list[dict]]) -> list[Group]:
    """Every (task, model) with per-sample rows, its rows side by side (records come sorted)."""
    keys = list(dict.fromkeys((r["task"], r["model"]) for r in records if samples.get(r["case_id"])))
    return [_group(task, model, [r for r in records if (r["task"], r["model"]) == (task, model)
                                 and samples.get(r["case_id"])], samples) for task, model in keys]


def _group(task: str, model: str, records: list[dict], samples: dict[str, list[dict]]) -> Group:
    mark = pass_mark(task)
    base = next((r for r in records if r["variant"] == "base"), None)
    base_rows = {row["sample_id"]: row for row in samples[base["case_id"]]} if base else {}
    base_pass = {}
    views: dict[str, SampleView] = {}
    for record in records:
        rows = samples[record["case_id"]]
        for row, score in zip(rows, sample_scores(task, rows)):
            view = views.setdefault(row["sample_id"], SampleView(row["sample_id"], as_text(row["input"]),
                                                                 as_text(row["reference"])))
            passed = None if score is None or mark is None else score >= mark
            if record is base:
                base_pass[row["sample_id"]] = passed
            view.cells.append(_cell(record, row, score, passed, base, base_rows, base_pass))
    return Group(task, model, [_label(r) for r in records], list(views.values()))


def _cell(record, row, score, passed, base, base_rows, base_pass) -> Cell:
    base_row = base_rows.get(row["sample_id"])
    is_base = record is base
    diff = None if is_base or base_row is None else word_diff(base_row["output"], row["output"])
    before = base_pass.get(row["sample_id"])
    status = ""
    if not is_base and before is not None and passed is not None and before != passed:
        status = "fixed" if passed else "broken"
    return Cell(_label(record), row["output"], score, passed, row.get("explanation", ""), diff,
                row.get("details") or {}, row.get("finish_reason", ""), status)


def _label(record: dict) -> str:
    return record["variant"]


def confusion(rows: list[dict]) -> dict | None:
    """Iris-style confusion matrix from the rows' ``expected`` / ``predicted`` details (None elsewhere)."""
    if not rows or not all("expected" in (row.get("details") or {}) for row in rows):
        return None
    truth = [str(row["details"]["expected"]) for row in rows]
    predicted = [str(row["details"].get("predicted") or "invalid") for row in rows]
    labels = sorted(set(truth)) + sorted(set(predicted) - set(truth) - {"invalid"}) + ["invalid"]
    from sklearn.metrics import confusion_matrix  # here: sklearn takes 2 s to import, most commands never need it

    matrix = confusion_matrix(truth, predicted, labels=labels)[:-1]  # no true "invalid" row
    return {"labels": labels, "matrix": matrix.tolist(), "n": len(rows)}
