"""Scoring a task's outputs: judge every sample, aggregate, and bootstrap confidence intervals.

Aggregation happens here once for every task: per-sample statistics are summed and handed to
the task's metric functions, and the same sums over resampled indices give 95% intervals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from slmbench.errors import TaskError
from slmbench.tasks.core import Sample, SampleScore, Task

RESAMPLES = 1000


@dataclass(frozen=True)
class TaskResult:
    """A task's metrics on one set of outputs, with 95% bootstrap intervals and per-sample scores."""

    task: str
    n: int
    values: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    scores: list[SampleScore]

    def failures(self, stat: str, limit: int = 3) -> list[SampleScore]:
        """The first samples whose ``stat`` is below 1, to name in failure messages."""
        return [s for s in self.scores if s.stats.get(stat, 1.0) < 1.0][:limit]


def judge_all(task: Task, outputs: list[str], samples: list[Sample]) -> list[SampleScore]:
    """Judge each output against its sample (the judge never raises on model output)."""
    if len(outputs) != len(samples):
        raise ValueError(f"{task.name}: {len(outputs)} outputs for {len(samples)} samples")
    if task.prepare is not None:
        task.prepare(outputs)
    return [task.judge(output, sample) for output, sample in zip(outputs, samples)]


def stat_matrix(task: Task, scores: list[SampleScore]) -> tuple[list[str], np.ndarray]:
    """Per-sample statistics as an (n_samples, n_stats) array, with the stat names.

    Every score must carry the same stats: a stat missing from one sample is a bug in the judge,
    never a zero.
    """
    names = sorted({name for score in scores for name in score.stats})
    for score in scores:
        missing = [name for name in names if name not in score.stats]
        if missing:
            raise TaskError(f"task {task.name}: sample {score.sample_id}: the judge reported no "
                                      f"{missing[0]!r}, which other samples have; a judge reports the same "
                                      f"stats for every output")
    matrix = np.array([[float(score.stats[name]) for name in names] for score in scores], dtype=float)
    return names, matrix.reshape(len(scores), len(names))


def aggregate(task: Task, names: list[str], matrix: np.ndarray, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every task metric over the rows picked by `rows` (an (R, n) index array; all rows if None)."""
    rows = np.arange(matrix.shape[0])[None, :] if rows is None else rows
    summed = matrix[rows].sum(axis=1)  # (R, n_stats)
    sums = _StatSums({name: summed[:, j] for j, name in enumerate(names)})
    values = {}
    for name, metric in task.metrics.items():
        try:
            values[name] = np.atleast_1d(metric(sums, rows.shape[1]))
        except _UnknownStat as error:
            raise TaskError(f"task {task.name}: metric {name!r} reads stat {error.args[0]!r}, which its "
                                      f"judge does not report (it reports {', '.join(names)})") from None
    return values


class _UnknownStat(KeyError):
    """A metric asked for a stat no sample has (a misspelling, or a judge that forgot it)."""


class _StatSums(dict):
    """Summed stats by name; a name that is not there raises _UnknownStat, never a silent default."""

    def __missing__(self, name):
        raise _UnknownStat(name)


def resample_rows(n: int, resamples: int = RESAMPLES, seed: int = 0) -> np.ndarray:
    """Seeded bootstrap indices, shape (resamples, n); reuse them to pair two systems."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def score_outputs(task: Task, outputs: list[str], samples: list[Sample], resamples: int = RESAMPLES,
                  seed: int = 0) -> TaskResult:
    """Judge outputs and compute every task metric with its 95% bootstrap interval."""
    scores = judge_all(task, outputs, samples)
    if not scores:
        return TaskResult(task.name, 0, {}, {}, [])
    names, matrix = stat_matrix(task, scores)
    # a metric the data cannot define (NaN: e.g. an entity type no sample annotates) is left out
    values = {name: float(v[0]) for name, v in aggregate(task, names, matrix).items() if not np.isnan(v[0])}
    intervals = {}
    if resamples:
        boot = aggregate(task, names, matrix, resample_rows(len(scores), resamples, seed))
        intervals = {name: (float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5)))
                     for name, v in boot.items() if name in values}
    return TaskResult(task.name, len(scores), values, intervals, scores)


def worst_samples(task: Task, result: TaskResult, metric: str, limit: int = 3) -> list[tuple[SampleScore, float]]:
    """The samples that score lowest on `metric` on their own (below 1), to name in failure messages."""
    if not result.scores:
        return []
    names, matrix = stat_matrix(task, result.scores)
    alone = np.arange(len(result.scores))[:, None]  # each "resample" is one sample
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.nan_to_num(aggregate(task, names, matrix, alone)[metric], nan=0.0)
    order = sorted((i for i in range(len(values)) if values[i] < 1.0), key=lambda i: (values[i], i))
    return [(result.scores[i], float(values[i])) for i in order[:limit]]


def paired_bootstrap(task: Task, before: dict[str, dict], after: dict[str, dict], resamples: int = RESAMPLES,
                     seed: int = 0) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Every metric's `after - before` on the same samples: the point value and its paired resamples.

    Args:
        before, after: sample id -> per-sample stats, with the same ids in the same order.
    Returns:
        (metric -> difference, metric -> (resamples,) differences; both systems resampled on the same indices).
    """
    ids = list(before)
    names = sorted({s for stats in (*before.values(), *after.values()) for s in stats})
    matrices = [np.array([[float(system[i].get(s, 0.0)) for s in names] for i in ids]).reshape(len(ids), len(names))
                for system in (before, after)]
    rows = resample_rows(len(ids), resamples, seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        point = [aggregate(task, names, m) for m in matrices]
        boot = [aggregate(task, names, m, rows) for m in matrices]
    return ({name: float(point[1][name][0] - point[0][name][0]) for name in task.metrics},
            {name: boot[1][name] - boot[0][name] for name in task.metrics})
