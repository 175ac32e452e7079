"""Thresholds the bench asserts: task defaults, overridden per model or model + adapter.

The overrides live in one commented TOML file (``bench/thresholds.toml`` by default). A section
names a case id or a glob over case ids; its keys are metric names, plus an optional
``tolerance`` table for the regression gate::

    ["gemma3-270m+lora-*::it_entities"]
    entity_f1 = 0.6
    tolerance = { entity_f1 = 0.05 }
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from slmbench.errors import SlmbenchError
from slmbench.tasks import resolve_task, task_names

DEFAULT_FILE = Path(__file__).with_name("thresholds.toml")


class ThresholdsError(SlmbenchError):
    """A thresholds file that cannot be read, names an unknown task or metric, or sets a value outside [0, 1].

    Every task metric is a rate in [0, 1], so a minimum or tolerance outside it (or NaN, which every
    comparison would silently pass or fail) can only be a typo.
    """


@dataclass(frozen=True)
class Override:
    pattern: str  # a case id or a glob over case ids
    minimums: dict[str, float]
    tolerances: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Thresholds:
    """Every override from one file, applied in file order over the task defaults."""

    source: Path | None
    overrides: list[Override]

    def minimums(self, case_id: str, task: str) -> dict[str, float]:
        """metric -> minimum for one case: task defaults, then every matching section in order."""
        values = dict(resolve_task(task).thresholds)
        for override in self._matching(case_id):
            values.update(override.minimums)
        return values

    def tolerance(self, case_id: str, metric: str) -> float | None:
        """The regression gate's allowed drop for a metric, if the file sets one."""
        found = None
        for override in self._matching(case_id):
            found = override.tolerances.get(metric, found)
        return found

    def _matching(self, case_id: str) -> list[Override]:
        """Sections naming the case; a +structured case is held to the bars of its free twin as well."""
        ids = {case_id, case_id.replace("+structured::", "::")}
        return [o for o in self.overrides if any(fnmatch.fnmatchcase(i, o.pattern) for i in ids)]


def load_thresholds(path: Path | None) -> Thresholds:
    """Read and check a thresholds file; None means task defaults only."""
    if path is None:
        return Thresholds(None, [])
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ThresholdsError(f"{path}: thresholds file not found") from None
    except IsADirectoryError:
        raise ThresholdsError(f"{path}: is a directory, not a thresholds file") from None
    except UnicodeDecodeError as error:
        raise ThresholdsError(f"{path}: not UTF-8 text (byte {error.start}: {error.reason}); "
                              f"save it as UTF-8") from None
    except OSError as error:
        raise ThresholdsError(f"{path}: cannot be read: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ThresholdsError(f"{path}: not valid TOML: {error}") from None
    return Thresholds(Path(path), [_override(path, pattern, table) for pattern, table in document.items()])


def _override(path: Path, pattern: str, table: object) -> Override:
    where = f"{path}: [{pattern!r}]"
    if not isinstance(table, dict) or "::" not in pattern:
        raise ThresholdsError(f"{where}: expected a section named '<model>[+<adapter>]::<task>' (globs allowed)")
    task_pattern = pattern.split("::", 1)[1]
    known = task_names(include_loaded=True)
    tasks = fnmatch.filter(known, task_pattern)
    if not tasks:
        raise ThresholdsError(f"{where}: task {task_pattern!r} matches no task; known: {', '.join(known)}")
    metrics = set.intersection(*(set(resolve_task(t).metrics) for t in tasks))
    tolerances = table.get("tolerance", {})
    if not isinstance(tolerances, dict):
        raise ThresholdsError(f"{where}: 'tolerance' must be a table of metric = allowed drop")
    minimums = {k: v for k, v in table.items() if k != "tolerance"}
    for kind, values in (("minimum", minimums), ("tolerance", tolerances)):
        for metric, value in values.items():
            if metric not in metrics:
                raise ThresholdsError(f"{where}: unknown metric {metric!r}; {task_pattern} has {', '.join(sorted(metrics))}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ThresholdsError(f"{where}: {kind} for {metric!r} must be a number in [0, 1], got {value!r}")
    return Override(pattern, {k: float(v) for k, v in minimums.items()}, {k: float(v) for k, v in tolerances.items()})
