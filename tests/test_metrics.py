"""Metric functions on hand-computed cases."""

import json

import numpy as np
import pytest
from sacrebleu.metrics import BLEU
from sklearn.metrics import precision_recall_fscore_support

from slmbench.tasks import TASKS
from slmbench.tasks.core import Sample
from slmbench.tasks.metrics import (bleu_of, bleu_stats, class_prf_of, confusion_stats, entity_counts, evaluate_metric, f1_of,
                           meteor_exact_stem, precision_of, recall_of, rouge_f)
from slmbench.tasks.recipes import ingredient_f1, title_score

IT = Sample("it-x", "Il Prof. Marco Rossi parla a Milano il 3 maggio.",
            {"people": ["Marco Rossi"], "dates": ["3 maggio"], "places": ["Milano"]})


def test_entity_counts_normalise_case_whitespace_and_duplicates():
    assert entity_counts(["marco  ROSSI", "Marco Rossi", "Luca"], ["Marco Rossi"]) == (1, 1, 0)
    assert entity_counts([], ["A", "B"]) == (0, 0, 2)
    assert entity_counts([3, None], ["A"]) == (0, 2, 1)


def test_micro_precision_recall_f1_by_hand():
    sums = {"x_tp": 2, "x_fp": 1, "x_fn": 3}
    assert evaluate_metric(precision_of("x"), sums, 1) == pytest.approx(2 / 3)
    assert evaluate_metric(recall_of("x"), sums, 1) == pytest.approx(2 / 5)
    assert evaluate_metric(f1_of("x"), sums, 1) == pytest.approx(2 * (2 / 3) * (2 / 5) / (2 / 3 + 2 / 5))
    # nothing expected and nothing predicted is perfect; predicting nothing when something was expected is not
    assert evaluate_metric(f1_of("x"), {"x_tp": 0, "x_fp": 0, "x_fn": 0}, 1) == 1.0
    assert evaluate_metric(f1_of("x"), {"x_tp": 0, "x_fp": 0, "x_fn": 2}, 1) == 0.0


def _binary_labels(tp, fp, fn):
    """Counts as scikit-learn label arrays: a tp is (1, 1), a fp (0, 1), a fn (1, 0)."""
    return [1] * tp + [0] * fp + [1] * fn + [0], [1] * tp + [1] * fp + [0] * fn + [0]


@pytest.mark.parametrize("counts", [(tp, fp, fn) for tp in (0, 2) for fp in (0, 1) for fn in (0, 3)])
def test_precision_recall_f1_follow_scikit_learn_zero_division_1(counts):
    """An undefined ratio (nothing predicted, or nothing expected) is 1.0, as zero_division=1.0 says."""
    sums = dict(zip(("x_tp", "x_fp", "x_fn"), counts))
    truth, predicted = _binary_labels(*counts)
    expected = precision_recall_fscore_support(truth, predicted, average="binary", zero_division=1.0)[:3]
    got = [evaluate_metric(builder("x"), sums, 1) for builder in (precision_of, recall_of, f1_of)]
    assert got == pytest.approx(list(expected)), counts


def test_recall_is_1_when_nothing_was_expected_even_if_something_was_predicted():
    sums = {"x_tp": 0, "x_fp": 4, "x_fn": 0}
    assert [evaluate_metric(b("x"), sums, 1) for b in (precision_of, recall_of, f1_of)] == [0.0, 1.0, 0.0]


def _it_values(outputs, samples):
    from slmbench.tasks.scoring import score_outputs

    return score_outputs(TASKS["it_entities"], outputs, samples, resamples=0)


def test_it_entities_perfect_partial_and_duplicates():
    perfect = _it_values([json.dumps(IT.target)], [IT]).values
    assert perfect["entity_f1"] == 1.0 and perfect["schema_valid"] == 1.0
    partial = _it_values(['{"people": ["Marco Rossi", "marco rossi"], "dates": [], "places": ["Roma"]}'], [IT]).values
    # tp=1 (duplicates count once), fp=1 (Roma), fn=2 (3 maggio, Milano)
    assert partial["entity_precision"] == pytest.approx(0.5)
    assert partial["entity_recall"] == pytest.approx(1 / 3)
    assert partial["people_f1"] == 1.0 and partial["dates_f1"] == 0.0
    assert partial["entity_macro_f1"] == pytest.approx((1.0 + 0.0 + 0.0) / 3)


@pytest.mark.parametrize("output, json_valid, schema_valid", [
    ("", 0, 0),
    ("Sure, here are the entities: Marco Rossi", 0, 0),
    ('[{"people": ["Marco Rossi"]}]', 1, 0),
    ('{"people": "Marco Rossi", "dates": [], "places": []}', 1, 0),
    ('{"people": [], "dates": [], "places": [], "orgs": []}', 1, 0),
])
def test_it_entities_garbage_and_wrong_shapes_score_as_failures(output, json_valid, schema_valid):
    score = TASKS["it_entities"].judge(output, IT)
    assert (score.stats["json_valid"], score.stats["schema_valid"]) == (json_valid, schema_valid)
    assert score.stats["people_tp"] == 0 and score.explanation


GARBAGE = ["", "   ", "not json at all", "{", '{"a":' * 2000, "[1, 2, 3]", "null", '"just a string"',
           "\udcff\x00\ufffd bytes", "x" * 50_000, json.dumps({"k": "v" * 50_000}), '{"species": ["setosa"]}']


@pytest.mark.parametrize("name", TASKS)
def test_no_output_crashes_a_judge(name):
    task = TASKS[name]
    sample = task.samples("test")[0]
    for output in GARBAGE:
        score = task.judge(output, sample)
        assert score.sample_id == sample.id and isinstance(score.explanation, str)
        assert all(np.isfinite(v) for v in score.stats.values())


def test_iris_class_metrics_match_scikit_learn():
    labels = ["setosa", "versicolor", "virginica"]
    truth = ["setosa", "setosa", "versicolor", "virginica", "virginica", "versicolor", "setosa"]
    predicted = ["setosa", "versicolor", "versicolor", "virginica", None, "virginica", "setosa"]
    sums = {}
    for t, p in zip(truth, predicted):
        for key, value in confusion_stats(t, p, labels).items():
            sums[key] = sums.get(key, 0) + value
    expected = precision_recall_fscore_support(truth, [p or "invalid" for p in predicted], labels=labels,
                                               average="macro", zero_division=0)
    for kind, want in zip(("precision", "recall", "f1"), expected[:3]):
        assert evaluate_metric(class_prf_of(labels, kind), sums, len(truth)) == pytest.approx(want)
    assert evaluate_metric(class_prf_of(labels, "recall", "setosa"), sums, len(truth)) == pytest.approx(2 / 3)


def test_iris_invalid_label_counts_against_validity():
    sample = TASKS["iris"].samples("test")[0]
    score = TASKS["iris"].judge('{"species": "rose"}', sample)
    assert score.stats["valid_label"] == 0 and score.stats["correct"] == 0 and "rose" in score.explanation


def test_corpus_bleu_from_sentence_stats_equals_sacrebleu():
    hyps = ["the cat sat on the mat", "a quick brown fox", "completely different words here"]
    refs = ["the cat is on the mat", "the quick brown fox jumps", "nothing in common"]
    sums = {}
    for h, r in zip(hyps, refs):
        for key, value in bleu_stats(h, r).items():
            sums[key] = sums.get(key, 0) + value
    assert evaluate_metric(bleu_of(), sums, 3) == pytest.approx(BLEU().corpus_score(hyps, [refs]).score / 100)


def test_rouge_and_meteor_bounds():
    assert rouge_f("the heart pumps blood", "the heart pumps blood")["rougeL"] == 1.0
    assert rouge_f("", "the heart pumps blood")["rouge1"] == 0.0
    assert meteor_exact_stem("", "anything") == 0.0
    # 4 of 4 unigrams matched in one chunk: Fmean 1, penalty 0.5 * (1/4) ** 3
    same = meteor_exact_stem("insulin lowers blood glucose", "insulin lowers blood glucose")
    assert same == pytest.approx(1 - 0.5 * (1 / 4) ** 3)
    # stems match like exact words; a different word does not (no synonym stage)
    assert meteor_exact_stem("insulins lowering blood glucose", "insulin lowers blood glucose") == pytest.approx(same)
    assert meteor_exact_stem("insulin raises blood glucose", "insulin lowers blood glucose") < same


def test_recipe_components_by_hand():
    reference = ["2 cups of flour", "a pinch of salt", "3 eggs", "1 cup milk"]
    assert ingredient_f1(reference, reference) == 1.0
    # 3 of 4 matched (one misspelled but fuzzy-equal), one invented: p = 3/4, r = 3/4
    assert ingredient_f1(["2 cups flour", "a pinch of salt", "3 egs", "sugar"], reference) == pytest.approx(0.75)
    assert ingredient_f1([], reference) == 0.0


def test_ingredients_are_paired_by_an_optimal_assignment():
    """"1 cup sugar" matches both predictions best-first; only the other pairing matches both references."""
    reference = ["1 cup sugar", "2 cups sugar"]
    predicted = ["1 cups sugar", "1 cup of sugar"]  # ratios 95.7 / 91.7 and 88.0 / 76.9 (threshold 85)
    assert ingredient_f1(predicted, reference) == 1.0
    assert ingredient_f1(predicted[::-1], reference[::-1]) == 1.0
    assert ingredient_f1(["1 cups sugar"], reference) == pytest.approx(2 / 3)  # p 1, r 1/2
    assert title_score("lemon  pancakes", "Lemon Pancakes") == 1.0
    assert title_score(None, "Lemon Pancakes") == 0.0


def test_recipe_levels_are_separate():
    task = TASKS["recipes"]
    sample = task.samples("test")[0]
    wrong_shape = task.judge('{"title": "x", "ingredients": "flour", "directions": []}', sample)
    assert (wrong_shape.stats["json_valid"], wrong_shape.stats["schema_valid"], wrong_shape.stats["l3_semantic"]) == (1, 0, 0)
    perfect = task.judge(task.completion(sample), sample)
    assert perfect.stats["l3_semantic"] == 1 and perfect.explanation == "correct"
    wrong_title = task.judge(json.dumps({**sample.target, "title": "Something Else Entirely"}), sample)
    assert wrong_title.stats["schema_valid"] == 1 and wrong_title.stats["l3_semantic"] == 0
    assert "title" in wrong_title.explanation


def test_iris_confusion_matrix_by_hand():
    from slmbench.tasks.iris import confusion_matrix
    from slmbench.tasks.scoring import score_outputs

    task = TASKS["iris"]
    samples = [s for s in task.samples("test") if s.target["species"] == "setosa"][:2] + \
              [s for s in task.samples("test") if s.target["species"] == "virginica"][:1]
    outputs = ['{"species": "setosa"}', "no idea", '{"species": "versicolor"}']
    report = confusion_matrix(score_outputs(task, outputs, samples, resamples=0))
    assert report["labels"] == ["setosa", "versicolor", "virginica", "invalid"]
    assert report["matrix"] == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
