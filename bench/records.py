"""One case's results as a plain, JSON-ready record (what workers send, stores keep and boards show)."""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from slmbench.cache import library_version
from slmbench.evaluation import Evaluation
from slmbench.hashing import file_sha256
from slmbench.loading import LoadedModel
from slmbench.prompting import provenance as fewshot_provenance
from slmbench.tasks.core import Task
from slmbench.tasks.data_sources import annotated_types, data_set_label

from slmbench.bench.cases import Case
from slmbench.bench.classical import CLASSICAL, ClassicalCase


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The checkout's commit (with "+dirty" when it has uncommitted changes), or None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return commit.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def make_record(case: Case, task: Task, split: str, limit: int | None, loaded: LoadedModel,
                evaluation: Evaluation, batch_size: int | None = None) -> dict:
    """Everything the leaderboard, the JSON, the store and the baseline gate need about one case."""
    record = result_record(case, task, split, limit, evaluation, case.spec.name, case.spec.is_random)
    record["provenance"].update({
        "model_source": case.model, "model_hash": loaded.weights_hash,
        "adapter": str(case.adapter) if case.adapter else None, "adapter_hash": loaded.adapter_hash,
        "adapter_merged": loaded.adapter_merged if case.adapter else None,
        "device": loaded.device, "dtype": loaded.dtype, "batch_size": batch_size,
        "decoding": asdict(evaluation.decoding),
        "fewshot": fewshot_provenance(evaluation.fewshot, [c.prompt for c in evaluation.run.completions],
                                      evaluation.samples),
        "versions": {name: library_version(name)
                     for name in ("torch", "transformers", "peft", *(["llguidance"] if case.structured else []))},
    })
    return record


def classical_record(case: ClassicalCase, task: Task, split: str, limit: int | None, evaluation: Evaluation) -> dict:
    """The record of a classical baseline: what it is and the train split it was fitted on."""
    record = result_record(case, task, split, limit, evaluation, CLASSICAL, False)
    record["provenance"].update({
        "method": case.baseline.method, "description": case.baseline.description,
        "fitted_on": "train", "train_hash": file_sha256(task.data_path("train")),
        "versions": {name: library_version(name)
                     for name in ("scikit-learn", "python-crfsuite", "sentence-transformers")},
    })
    return record


def result_record(case: Case | ClassicalCase, task: Task, split: str, limit: int | None, evaluation: Evaluation,
                  model: str, random_weights: bool) -> dict:
    """The part of a record every row has: ids, metrics with intervals, speed, per-sample stats."""
    result = evaluation.result
    metrics = {name: {"value": value, "low": result.intervals.get(name, (None, None))[0],
                      "high": result.intervals.get(name, (None, None))[1]} for name, value in result.values.items()}
    return {
        "case_id": case.id, "model": model, "variant": case.variant, "kind": case.kind, "shots": case.shots,
        "structured": case.structured,
        "task": case.task, "split": split, "limit": limit, "n": result.n, "random_weights": random_weights,
        "metrics": metrics,
        "speed": {"tokens_per_sec": None, "eval_seconds": evaluation.seconds,
                  "generated_tokens": evaluation.run.generated_tokens, "cache_hits": evaluation.run.cache_hits},
        "provenance": {
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "task_version": task.version, "data_hash": file_sha256(task.data_path(split)),
            "data_set": data_set_label(task.data_path(split)),
            "annotated_types": annotated_types(evaluation.samples),
            "git_commit": git_commit(),
            "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        },
        "sample_stats": {score.sample_id: dict(score.stats) for score in result.scores},
    }
