import numpy as np
import pytest

from slmbench.tasks import TASKS
from slmbench.tasks.scoring import resample_rows, score_outputs


def test_bootstrap_is_seeded_and_brackets_the_value():
    task = TASKS["iris"]
    samples = task.samples("test")
    outputs = ['{"species": "setosa"}'] * len(samples)
    first, again = score_outputs(task, outputs, samples), score_outputs(task, outputs, samples)
    assert first.intervals == again.intervals
    low, high = first.intervals["accuracy"]
    assert low <= first.values["accuracy"] <= high and high - low > 0


def test_bootstrap_mean_matches_a_direct_computation():
    task = TASKS["iris"]
    samples = task.samples("test")
    outputs = ['{"species": "setosa"}' if i % 2 else "garbage" for i in range(len(samples))]
    result = score_outputs(task, outputs, samples, resamples=500, seed=3)
    correct = np.array([s.stats["correct"] for s in result.scores])
    boot = correct[resample_rows(len(samples), 500, 3)].mean(axis=1)
    assert result.intervals["accuracy"] == pytest.approx((np.percentile(boot, 2.5), np.percentile(boot, 97.5)))


def test_mismatched_lengths_are_refused():
    task = TASKS["iris"]
    with pytest.raises(ValueError, match="2 outputs for 30 samples"):
        score_outputs(task, ["a", "b"], task.samples("test"))
