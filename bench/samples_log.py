"""Per-sample logs: one JSON line per sample and case, so a score can be traced to the output behind it.

A run writes ``<dir>/<run-id>/<case file>.jsonl`` for every case it evaluates, atomically (a killed
run leaves whole files or none). Case ids hold ``::`` and ``+``, so the file name is a safe spelling
of the id plus a short hash of it; the real id is inside every line.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

from slmbench.atomic import write_text_atomic
from slmbench.errors import SlmbenchError
from slmbench.jsontext import parse_json_output
from slmbench.tasks.core import Task

if TYPE_CHECKING:  # the report commands read logs without torch
    from slmbench.evaluation import Evaluation

SUFFIX = ".jsonl"


class SampleLogError(SlmbenchError):
    """A per-sample log that cannot be read back."""


def sample_rows(case_id: str, task: Task, evaluation: Evaluation) -> list[dict]:
    """One JSON-ready row per sample: what went in, what came out, and how the judge scored it."""
    rows = []
    for sample, completion, score in zip(evaluation.samples, evaluation.run.completions, evaluation.result.scores):
        rows.append({
            "case_id": case_id, "sample_id": sample.id, "input": sample.input, "reference": sample.target,
            "prompt_sha256": prompt_sha256(completion.prompt),
            "fewshot_ids": list(getattr(completion.prompt, "example_ids", ())),
            "output": completion.text, "parsed": parse_json_output(completion.text)[0] if task.is_json else None,
            "finish_reason": completion.finish_reason, "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens, "stats": dict(score.stats),
            "explanation": score.explanation, "details": dict(score.details),
        })
    return rows


def prompt_sha256(prompt) -> str:
    """Hash of the prompt as the task built it: the text, or a few-shot prompt's examples and query."""
    if not isinstance(prompt, str):  # FewShotPrompt: worked examples (prompt, answer) then the query
        prompt = json.dumps({"examples": [list(pair) for pair in prompt.examples], "query": prompt.query},
                            ensure_ascii=False)
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()


def log_name(case_id: str) -> str:
    """A file name for a case id: safe characters only, unique through a hash of the real id."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", case_id).strip("._") or "case"
    return f"{safe[:80]}-{hashlib.sha256(case_id.encode('utf-8')).hexdigest()[:8]}{SUFFIX}"


def write_log(run_dir: Path, case_id: str, rows: list[dict]) -> Path:
    """Write one case's rows as JSON Lines under `run_dir`, atomically; returns the file."""
    path = Path(run_dir) / log_name(case_id)
    lines = [json.dumps(row, ensure_ascii=False, default=str) for row in rows]
    write_text_atomic(path, "".join(line + "\n" for line in lines))
    return path


def read_run(run_dir: Path) -> dict[str, list[dict]]:
    """Every case's rows in a run folder, keyed by the case id written inside the lines."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SampleLogError(f"{run_dir}: no per-sample log folder")
    cases: dict[str, list[dict]] = {}
    for path in sorted(run_dir.glob(f"*{SUFFIX}")):
        if path.name.startswith("."):  # an atomic write's temporary sibling
            continue
        for row in read_log(path):
            cases.setdefault(row["case_id"], []).append(row)
    return cases


def read_log(path: Path) -> list[dict]:
    """One log's rows; a malformed line fails with ``file:line: reason``."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise SampleLogError(f"{path}:{number}: not valid JSON: {error.msg}") from None
        if not isinstance(row, dict) or not isinstance(row.get("case_id"), str) or "sample_id" not in row:
            raise SampleLogError(f"{path}:{number}: field 'case_id'/'sample_id': missing")
        rows.append(row)
    return rows
