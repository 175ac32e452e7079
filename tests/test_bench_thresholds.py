"""Threshold overrides (bench/thresholds.py); the regression rule is in tests/test_gate.py."""

import re

import pytest

from slmbench.bench.thresholds import DEFAULT_FILE, ThresholdsError, load_thresholds


def test_sections_override_task_defaults_in_file_order(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('["*::iris"]\naccuracy = 0.5\n["m+lora-*::iris"]\naccuracy = 0.9\ntolerance = { accuracy = 0.05 }\n')
    thresholds = load_thresholds(path)
    assert thresholds.minimums("m::iris", "iris")["accuracy"] == 0.5
    assert thresholds.minimums("m+lora-fast::iris", "iris")["accuracy"] == 0.9
    assert thresholds.minimums("m::it_entities", "it_entities")["entity_f1"] == 0.5  # task default
    assert thresholds.tolerance("m+lora-fast::iris", "accuracy") == 0.05 and thresholds.tolerance("m::iris", "accuracy") is None


def test_a_structured_case_is_held_to_the_bars_of_its_free_twin(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('["m+lora-fast::iris"]\naccuracy = 0.9\ntolerance = { accuracy = 0.05 }\n')
    thresholds = load_thresholds(path)
    assert thresholds.minimums("m+lora-fast+structured::iris", "iris")["accuracy"] == 0.9
    assert thresholds.tolerance("m+lora-fast+structured::iris", "accuracy") == 0.05
    assert thresholds.minimums("m+structured::iris", "iris")["accuracy"] != 0.9  # another case's section


@pytest.mark.parametrize("text, message", [
    ('["m::nope"]\nx = 1\n', "task 'nope' matches no task"),
    ('["m::iris"]\naccuracy = "high"\n', "minimum for 'accuracy' must be a number in [0, 1], got 'high'"),
    ('["m-iris"]\naccuracy = 1\n', "expected a section named"),
    ('["m::iris"]\naccuracy = \n', "not valid TOML"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, text, message):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ThresholdsError, match=re.escape(message)) as error:
        load_thresholds(path)
    assert str(path) in str(error.value)


def test_the_shipped_file_loads():
    load_thresholds(DEFAULT_FILE)
