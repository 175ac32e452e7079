"""Any data for any task: a task held to the user's file or folder instead of its fixtures.

    pytest bench --bench-data it_entities=news.conll          (a file: the data of the split benched)
    slmbench evaluate --model M --task iris --data my_iris/   (a folder: train/val/test files)
    slmbench train --model M --task iris --data my_iris/      (needs train and val files)

A file is JSON Lines in the task's sample format (the fixtures' format; errors name file:line:field)
or, for it_entities, a CoNLL/IOB file (`.conll`, `.iob`, `.bio`), converted on the fly by
tasks/conll.py. A folder holds `<split>.jsonl` (or `<split>.conll` ...) per split. Results name
the data set as `<file name>@<sha256 prefix>` (`data_set_label`), not just the split.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

from slmbench.errors import DatasetError
from slmbench.hashing import file_sha256
from slmbench.tasks.conll import SUFFIXES as CONLL_SUFFIXES
from slmbench.tasks.conll import read_conll
from slmbench.tasks.core import SPLITS, Sample, Task, load_samples

SUFFIXES = (".jsonl", *CONLL_SUFFIXES)


@dataclass(frozen=True)
class TaskOnData(Task):
    """A task whose samples come from `source` (a file, or a folder of split files).

    A file stands for `split` only when that is set (the split benched): the other splits, e.g. the
    train split few-shot examples and classical baselines draw from, stay the task's own, so the
    benched samples never double as their own examples.
    """

    source: Path = Path()
    split: str | None = None

    def data_path(self, split: str) -> Path:
        if self.source.is_file():
            return self.source if self.split in (None, split) else Task.data_path(self, split)
        if not self.source.is_dir():
            raise DatasetError(f"{self.source}: no such data file or folder")
        for suffix in SUFFIXES:
            if (self.source / f"{split}{suffix}").is_file():
                return self.source / f"{split}{suffix}"
        raise DatasetError(f"{self.source}: no {split} file (looked for {', '.join(split + s for s in SUFFIXES)})")

    def samples(self, split: str) -> list[Sample]:
        if split not in SPLITS:
            raise DatasetError(f"{self.name}: unknown split {split!r}; choose one of {', '.join(SPLITS)}")
        path = self.data_path(split)
        if path.suffix.lower() in CONLL_SUFFIXES:
            if self.name != "it_entities":
                raise DatasetError(f"{path}: CoNLL/IOB files hold entity tags: only it_entities reads them, "
                                   f"not {self.name}")
            return read_conll(path)
        return load_samples(path, self.schema, self.input_schema)


def with_data(task: Task, source: str | Path | None, split: str | None = None) -> Task:
    """`task` reading its samples from `source`; the task itself when `source` is None.

    With `split`, a file is that split's data only (other splits read the task's fixtures).
    """
    if source is None:
        return task
    path = Path(source).expanduser()
    if not path.exists():
        raise DatasetError(f"{path}: no such data file or folder (data for {task.name})")
    if path.is_file() and path.suffix.lower() not in SUFFIXES:
        raise DatasetError(f"{path}: expected a JSON Lines file (.jsonl) or a CoNLL/IOB file "
                           f"({', '.join(CONLL_SUFFIXES)}), or a folder of split files")
    return TaskOnData(**{f.name: getattr(task, f.name) for f in fields(Task)}, source=path, split=split)


def parse_data_option(values: list[str], known: list[str]) -> dict[str, Path]:
    """`["it_entities=news.conll", ...]` -> {task: path}; a malformed item names the option and the item."""
    found = {}
    for value in values:
        task, sep, path = value.partition("=")
        if not sep or not task.strip() or not path.strip():
            raise DatasetError(f"--bench-data {value!r}: expected TASK=PATH (e.g. it_entities=news.conll)")
        if task.strip() not in known:
            raise DatasetError(f"--bench-data {value!r}: unknown task {task.strip()!r}; known: {', '.join(known)}")
        found[task.strip()] = Path(path.strip()).expanduser()
    return found


def data_set_label(path: Path) -> str:
    """How results name a data file: `<file name>@<first 12 hex digits of its sha256>`."""
    return f"{Path(path).name}@{file_sha256(path)[:12]}"


def annotated_types(samples: list[Sample]) -> list[str] | None:
    """The entity types the samples' data marks (`meta.annotated`), or None when it does not say."""
    found = {kind for sample in samples for kind in sample.meta.get("annotated", ())}
    return sorted(found) if found else None
