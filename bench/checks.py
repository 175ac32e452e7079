"""What each bench test asserts about one case, with messages that name values and samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import pytest

from slmbench.tasks import resolve_task
from slmbench.tasks.core import JSON_METRICS
from slmbench.tasks.scoring import worst_samples

from slmbench.bench.baseline import comparable, regressions
from slmbench.bench.cases import Case

if TYPE_CHECKING:  # the plugin imports this module in every pytest session: no torch here
    from slmbench.evaluation import Evaluation


class Check(NamedTuple):
    """A test's verdict; unpacks as ``passed, message``."""

    passed: bool
    message: str


@dataclass(frozen=True)
class BenchOutcome:
    """One case's evaluation with the thresholds and baseline it is held to."""

    case: Case
    record: dict
    evaluation: Evaluation
    minimums: dict[str, float]
    tolerances: dict[str, float | None]
    baseline: dict[str, dict] | None = None  # case id -> row, when --bench-baseline is given
    baseline_source: str = ""

    def __repr__(self) -> str:  # keeps failure reports short
        return f"BenchOutcome({self.case.id})"

    def threshold_check(self, metric: str) -> Check:
        """Is `metric` at or above its threshold? Skips what does not apply to this case."""
        task = resolve_task(self.case.task)
        if metric in JSON_METRICS and not task.is_json:
            pytest.skip(f"{task.name} is a text task: its outputs are not JSON")
        if metric not in self.minimums:
            pytest.skip(f"no threshold for {metric} on {self.case.id} (task default or bench/thresholds.toml)")
        result = self.evaluation.result
        if metric not in result.values:
            pytest.skip(f"{metric} is not defined on this data ({self.record['provenance'].get('data_set')}: "
                        f"annotated types {self.record['provenance'].get('annotated_types')})")
        value, minimum = result.values[metric], self.minimums[metric]
        if value >= minimum:
            return Check(True, "")
        low, high = result.intervals.get(metric, (float("nan"), float("nan")))
        worst = "; ".join(f"{score.sample_id} ({alone:.2f}): {score.explanation[:160]}"
                          for score, alone in worst_samples(task, result, metric))
        return Check(False, f"{self.case.id}: {metric} = {value:.3f} [{low:.3f}, {high:.3f}] is below the threshold "
                            f"{minimum:.3f} (N={result.n}, split {self.record['split']}). "
                            f"First failing samples: {worst or 'none below 1 on their own'}")

    def regression_check(self) -> Check:
        """Does every metric hold against the baseline (within its interval or tolerance)?"""
        if self.baseline is None:
            pytest.skip(f"--bench-update-baseline: this run becomes the baseline {self.baseline_source}")
        row = self.baseline.get(self.case.id)
        if row is None:
            pytest.skip(f"{self.case.id} is not in the baseline {self.baseline_source}; "
                        f"add it with --bench-update-baseline")
        why_not = comparable(self.record, row)
        if why_not:
            return Check(False, f"{self.case.id}: cannot compare with the baseline {self.baseline_source}: {why_not}; "
                                f"rerun with the baseline's settings or refresh it with --bench-update-baseline")
        found = regressions(self.record, row, self.tolerances)
        return Check(not found, f"{self.case.id} regressed against {self.baseline_source}: " + "; ".join(found))
