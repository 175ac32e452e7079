"""Checks a task before anything runs on it, so a mistake in a task module reads as one line.

The registry runs `check_task` on every task it loads from outside slmbench; the built-in tasks
pass the same checks (tests/test_user_tasks.py). Each error names where the task came from and
the field at fault: ``invoices (tasks/invoices.py): thresholds['acc']: not one of its metrics``.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from pathlib import Path

import jsonschema

from slmbench.errors import TaskError
from slmbench.tasks.core import JSON_METRICS, Task

# Task names become folder names and the part after "::" in case ids: keep them plain.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_task(task: object, origin: str) -> Task:
    """Return `task` if it is a usable Task; else raise TaskError naming `origin` and the field.

    Args:
        task: what a task module exposes as ``TASK`` (or an entry point points at).
        origin: where it came from (module name or file), for the message.
    """
    if not isinstance(task, Task):
        raise TaskError(f"{origin}: TASK is a {type(task).__name__}, expected slmbench.tasks.Task")
    where = f"{task.name} ({origin})" if isinstance(task.name, str) else origin
    for field, problem in _problems(task):
        raise TaskError(f"{where}: {field}: {problem}")
    return task


def _problems(task: Task):
    """(field, what is wrong) for each check that fails, first failure first."""
    if not isinstance(task.name, str) or not NAME_PATTERN.fullmatch(task.name):
        yield "name", f"must be letters, digits, '_' or '-' (starting with a letter or digit), got {task.name!r}"
    if not isinstance(task.version, str) or not task.version.strip():
        yield "version", f"must be a non-empty string (bump it when prompt, data or scoring change), got {task.version!r}"
    yield from _callable_problems("prompt", task.prompt, "(sample) -> str")
    yield from _callable_problems("judge", task.judge, "(output, sample) -> SampleScore")
    if task.prepare is not None:
        yield from _callable_problems("prepare", task.prepare, "(outputs) -> None")
    yield from _schema_problems(task.schema)
    yield from _schema_problems(task.input_schema, "input_schema", "JSON Schema of every sample's input")
    yield from _metric_problems(task)
    yield from _threshold_problems(task)
    if isinstance(task.metrics, Mapping) and task.headline not in task.metrics:
        yield "headline", f"{task.headline!r} is not one of its metrics ({', '.join(map(str, task.metrics))})"
    if isinstance(task.max_new_tokens, bool) or not isinstance(task.max_new_tokens, int) or task.max_new_tokens <= 0:
        yield "max_new_tokens", f"must be a positive whole number, got {task.max_new_tokens!r}"
    if isinstance(task.fewshot_k, bool) or not isinstance(task.fewshot_k, int) or task.fewshot_k < 0:
        yield "fewshot_k", f"must be a whole number of worked examples, 0 or more, got {task.fewshot_k!r}"
    if task.data_dir is not None and not isinstance(task.data_dir, (str, Path)):
        yield "data_dir", f"must be a path or None, got {type(task.data_dir).__name__}"


def _callable_problems(field: str, value: object, shape: str):
    if not callable(value):
        yield field, f"must be a function {shape}, got {type(value).__name__}"
        return
    arity = shape.count(",") + 1
    try:
        inspect.signature(value).bind(*([None] * arity))
    except TypeError as error:
        yield field, f"must accept {arity} argument(s) {shape}: {error}"
    except ValueError:
        pass  # no signature to inspect (a builtin): calling it will tell


def _schema_problems(schema: object, field: str = "schema", what: str = "JSON Schema (a dict) or None for free text"):
    if schema is None and field == "schema":
        return
    if not isinstance(schema, dict):
        yield field, f"must be a {what}, got {type(schema).__name__}"
        return
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        at = "/".join(str(part) for part in error.absolute_path)
        yield f"{field}{'/' + at if at else ''}", f"not a valid JSON Schema: {error.message}"


def _metric_problems(task: Task):
    if not isinstance(task.metrics, Mapping) or not task.metrics:
        yield "metrics", "must be a non-empty dict of metric name -> function (sums, n) -> value"
        return
    for name, metric in task.metrics.items():
        if not isinstance(name, str) or not name:
            yield "metrics", f"metric names must be non-empty strings, got {name!r}"
        elif not callable(metric):
            yield f"metrics[{name!r}]", f"must be a function (sums, n) -> value, got {type(metric).__name__}"
    missing = [name for name in JSON_METRICS if name not in task.metrics]
    if task.schema is not None and missing:
        yield "metrics", (f"a JSON task must report {' and '.join(JSON_METRICS)} (the bench's JSON tests read them); "
                          f"missing {', '.join(missing)}")


def _threshold_problems(task: Task):
    if not isinstance(task.thresholds, Mapping):
        yield "thresholds", f"must be a dict of metric name -> minimum, got {type(task.thresholds).__name__}"
        return
    metrics = task.metrics if isinstance(task.metrics, Mapping) else {}
    for name, value in task.thresholds.items():
        if name not in metrics:
            yield f"thresholds[{name!r}]", f"not one of its metrics ({', '.join(map(str, metrics))})"
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:  # NaN too
            yield f"thresholds[{name!r}]", f"must be a number in [0, 1] (metrics are on a 0-1 scale), got {value!r}"
