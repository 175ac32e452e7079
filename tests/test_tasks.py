"""Every task's data: sizes, no input in two splits, targets valid."""

import jsonschema
import pytest

from slmbench.tasks import TASKS
from slmbench.tasks.core import SPLITS
from slmbench.tasks.metrics import normalise

MINIMUM_SIZES = {
    "it_entities": (240, 80, 80), "recipes": (200, 60, 60), "iris": (90, 30, 30),
    "products": (200, 60, 60), "bioqa": (200, 60, 60),
}


def test_registry_lists_the_five_tasks():
    assert list(TASKS) == ["it_entities", "recipes", "iris", "products", "bioqa"]


@pytest.mark.parametrize("name", TASKS)
def test_splits_have_the_required_sizes(name):
    sizes = tuple(len(TASKS[name].samples(split)) for split in SPLITS)
    minimum = MINIMUM_SIZES[name]
    assert all(got >= want for got, want in zip(sizes, minimum)), f"{name}: sizes {sizes} below {minimum}"
    if name == "iris":
        assert sizes == minimum


def _identity(sample):
    # Iris inputs are binned features shared by many flowers: identity is the flower itself.
    return sample.meta["sklearn_index"] if "sklearn_index" in sample.meta else normalise(sample.input)


@pytest.mark.parametrize("name", TASKS)
def test_no_input_appears_in_two_splits(name):
    seen = {}
    for split in SPLITS:
        for sample in TASKS[name].samples(split):
            key = _identity(sample)
            assert seen.setdefault(key, split) == split, f"{sample.id}: input also in {seen[key]}"


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if t.is_json])
def test_every_target_validates_and_scores_perfectly(name):
    task = TASKS[name]
    for split in SPLITS:
        samples = task.samples(split)
        for sample in samples:
            jsonschema.validate(sample.target, task.schema)
        if split == "test":
            from slmbench.tasks.scoring import score_outputs

            result = score_outputs(task, [task.completion(s) for s in samples], samples, resamples=0)
            assert result.values[task.headline] == 1.0, result.failures(task.headline)


def test_it_entities_strings_are_verbatim_in_the_text():
    for split in SPLITS:
        for sample in TASKS["it_entities"].samples(split):
            for kind, values in sample.target.items():
                for value in values:
                    assert value in sample.input, f"{sample.id}: {kind} {value!r} not in text"


def test_recipe_ingredients_are_verbatim_in_the_prose():
    for split in SPLITS:
        for sample in TASKS["recipes"].samples(split):
            missing = [i for i in sample.target["ingredients"] if i not in sample.input]
            assert not missing, f"{sample.id}: {missing}"


def test_iris_fixtures_match_the_builder():
    from slmbench.tasks.iris import build_samples

    for split, samples in build_samples().items():
        assert [(s.id, s.input, s.target) for s in samples] == \
               [(s.id, s.input, s.target) for s in TASKS["iris"].samples(split)]


def test_prompts_come_from_the_task_and_contain_the_input():
    for task in TASKS.values():
        sample = task.samples("val")[0]
        text = task.prompt(sample)
        assert isinstance(text, str) and len(text) > 20
        if isinstance(sample.input, str):
            assert sample.input in text


@pytest.mark.parametrize("name", TASKS)
def test_json_tasks_report_json_and_schema_validity_with_thresholds(name):
    task = TASKS[name]
    if task.is_json:
        assert {"json_valid", "schema_valid"} <= set(task.metrics)
    assert set(task.thresholds) <= set(task.metrics)
