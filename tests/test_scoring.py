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


def test_products_embeds_its_outputs_in_one_batch_and_finds_the_same_neighbours(monkeypatch):
    from slmbench.tasks import resolve_task, retrieval
    from slmbench.tasks.scoring import judge_all

    task = resolve_task("products")
    samples = task.samples("test")[:6]
    outputs = [s.target for s in samples[1:]] + [""]  # the last one is empty: no neighbours, nothing embedded
    retrieval._QUERIES.clear()
    one_by_one = [retrieval.nearest_training_examples(task, s.target) for s in samples[1:]]
    retrieval._QUERIES.clear()
    model = retrieval.embedding_model()
    batches = []
    encode = model.encode
    monkeypatch.setattr(model, "encode", lambda texts, **kw: batches.append(len(texts)) or encode(texts, **kw))
    scores = judge_all(task, outputs, samples)
    assert batches == [5]  # one batch of the five descriptions; the training index was built before
    batched = [score.details["nearest_train"] for score in scores[:-1]]
    assert [[n["id"] for n in row] for row in batched] == [[n["id"] for n in row] for row in one_by_one]
    assert all(abs(a["score"] - b["score"]) < 1e-3 for x, y in zip(batched, one_by_one) for a, b in zip(x, y))
    assert scores[-1].details["nearest_train"] == []
