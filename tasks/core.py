"""What a task is made of: samples, per-sample scores, and the Task value itself."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import jsonschema

from slmbench.errors import DatasetError
from slmbench.jsontext import loads_bounded

SPLITS = ("train", "val", "test")
JSON_METRICS = ("json_valid", "schema_valid")  # every JSON task reports these (see Task.metrics)
TEXT_INPUT = {"type": "string"}  # the input of a text task (blank text is refused apart, by name)
FIXTURES = Path(os.environ.get("SLMBENCH_FIXTURES") or Path(__file__).resolve().parents[1] / "fixtures")


@dataclass(frozen=True)
class Sample:
    """One example: `input` is what the prompt is built from, `target` the reference output."""

    id: str
    input: Any
    target: Any
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleScore:
    """One model output judged against one sample.

    Attributes:
        stats: per-sample statistics the task's metrics aggregate (e.g. ``json_valid``, ``people_tp``).
        explanation: why the output scored as it did, for failure messages.
        details: anything a reader may want next to the output (parsed label, retrieved neighbours).
    """

    sample_id: str
    stats: Mapping[str, float]
    explanation: str
    details: Mapping[str, Any] = field(default_factory=dict)


# A metric aggregates summed per-sample statistics. It receives a mapping from stat name to an
# array of sums (one entry per bootstrap resample, or a single entry) plus the sample count,
# and returns an array of the same shape. See tasks/metrics.py for the builders.
Metric = Callable[[Mapping[str, Any], int], Any]


@dataclass(frozen=True)
class Task:
    """A task: its data, prompt, output format, judge, metrics and default thresholds.

    Attributes:
        name: registry key, case-id part and data folder name (letters, digits, ``_`` and ``-``).
        version: bump when the prompt, data or scoring changes (part of cache keys and provenance).
        prompt: builds the user prompt from a sample; shared by bench and training.
        schema: JSON Schema of the output for JSON tasks; None for free-text tasks.
        judge: scores one raw model output against one sample; never raises on model output.
        metrics: metric name -> aggregate over the judge's stats. JSON tasks must report
            ``json_valid`` and ``schema_valid`` (the bench's JSON and schema tests read them).
        thresholds: metric name -> minimum a model is expected to reach by default, in [0, 1]
            (metrics are higher-is-better on a 0-1 scale).
        headline: the metric that stands for the task in leaderboard summaries (one of ``metrics``).
        max_new_tokens: generation budget for one output.
        data_dir: folder of ``train/val/test.jsonl``. None: ``fixtures/<name>/`` for a built-in
            task; a task loaded from your own module gets ``<module folder>/<name>/`` (see
            ``slmbench.tasks.resolve_task``), and a relative data_dir counts from that folder.
        input_schema: JSON Schema every sample's ``input`` must meet, checked when a split loads
            (default: text).
        fewshot_k: worked examples (from the train split) in the bench's K-shot base rows, chosen
            per task with a comment why; 0 means the bench shows no K-shot row by default.
        prepare: called once with every output before they are judged, to batch work the judge
            would otherwise repeat per output (products embeds them); None: nothing to batch.
    """

    name: str
    version: str
    prompt: Callable[[Sample], str]
    schema: dict | None
    judge: Callable[[str, Sample], SampleScore]
    metrics: Mapping[str, Metric]
    thresholds: Mapping[str, float]
    headline: str
    max_new_tokens: int
    data_dir: Path | None = None
    input_schema: dict = field(default_factory=lambda: dict(TEXT_INPUT))
    fewshot_k: int = 0
    prepare: Callable[[list[str]], None] | None = None

    @property
    def is_json(self) -> bool:
        return self.schema is not None

    def data_path(self, split: str) -> Path:
        return Path(self.data_dir or FIXTURES / self.name) / f"{split}.jsonl"

    def samples(self, split: str) -> list[Sample]:
        """Load and validate one split (``train``, ``val`` or ``test``)."""
        if split not in SPLITS:
            raise DatasetError(f"{self.name}: unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        return load_samples(self.data_path(split), self.schema, self.input_schema)

    def completion(self, sample: Sample) -> str:
        """The reference output as the model should write it (used as the training target)."""
        if self.is_json:
            return json.dumps(sample.target, ensure_ascii=False)
        return sample.target


def load_samples(path: Path, schema: dict | None, input_schema: dict = TEXT_INPUT) -> list[Sample]:
    """Read a JSON Lines split; any malformed line fails with ``file:line: field: reason``.

    Args:
        path: the ``.jsonl`` file.
        schema: JSON Schema of the targets; None for text targets.
        input_schema: JSON Schema of the inputs (default: text).
    """
    samples, seen = [], set()
    for where, row in iter_jsonl(path):
        samples.append(_sample_from_row(row, where, schema, input_schema))
        if samples[-1].id in seen:
            raise DatasetError(f"{where}: field 'id': duplicate id {samples[-1].id!r}")
        seen.add(samples[-1].id)
    return samples


def iter_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    """Yield ``("file:line", object)`` for each non-blank line; malformed lines raise DatasetError.

    Records end at ``\\n`` only, as JSON Lines says: U+2028, U+0085 and the other separators
    that ``str.splitlines`` also breaks at are legal inside JSON strings.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such data file")
    for number, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        where = f"{path}:{number}"
        line = _decode_line(raw, where)
        if not line.strip():
            continue
        try:
            row = loads_bounded(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{where}: line is not valid JSON: {error.msg}") from None
        except ValueError as error:  # nested too deeply
            raise DatasetError(f"{where}: line is {error}") from None
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: line is {type(row).__name__}, expected a JSON object")
        yield where, row


def _decode_line(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DatasetError(f"{where}: line is not valid UTF-8: byte 0x{raw[error.start]:02x} at column "
                           f"{error.start + 1}; save the file as UTF-8") from None


def check_input(value: Any, input_schema: dict, where: str) -> None:
    """Raise DatasetError ``where: field 'input/...': reason`` unless `value` meets the task's input schema."""
    if isinstance(value, str) and not value.strip():
        raise DatasetError(f"{where}: field 'input': empty text")
    error = _schema_error(value, input_schema, "input", where)
    if error:
        raise error


def _schema_error(value: Any, schema: dict, field_name: str, where: str) -> DatasetError | None:
    """The first way `value` breaks `schema`, as ``file:line: field 'name/path': reason``."""
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    error = errors[0]
    path = [field_name, *(str(p) for p in error.absolute_path)]
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = next(name for name in error.validator_value if name not in error.instance)
        return DatasetError(f"{where}: field '{'/'.join([*path, missing])}': missing")
    return DatasetError(f"{where}: field '{'/'.join(path)}': {error.message}")


def _sample_from_row(row: dict, where: str, schema: dict | None, input_schema: dict) -> Sample:
    for key in ("id", "input", "target"):
        if key not in row:
            raise DatasetError(f"{where}: field '{key}': missing")
    unknown = set(row) - {"id", "input", "target", "meta"}
    if unknown:
        raise DatasetError(f"{where}: field '{sorted(unknown)[0]}': unknown field")
    if not isinstance(row["id"], str) or not row["id"]:
        raise DatasetError(f"{where}: field 'id': must be a non-empty string")
    check_input(row["input"], input_schema, where)
    if schema is not None:
        error = _schema_error(row["target"], schema, "target", where)
        if error:
            raise error
    elif not isinstance(row["target"], str) or not row["target"].strip():
        raise DatasetError(f"{where}: field 'target': must be a non-empty string")
    return Sample(row["id"], row["input"], row["target"], row.get("meta") or {})
