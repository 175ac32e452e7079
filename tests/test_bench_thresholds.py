"""Threshold overrides (bench/thresholds.py) and the regression rule (bench/baseline.py)."""

import re

import pytest

from slmbench.bench.baseline import regressions
from slmbench.bench.thresholds import DEFAULT_FILE, ThresholdsError, load_thresholds


def test_sections_override_task_defaults_in_file_order(tmp_path):
    path = tmp_path / "t.toml"
    path.write_text('["*::iris"]\naccuracy = 0.5\n["m+lora-*::iris"]\naccuracy = 0.9\ntolerance = { accuracy = 0.05 }\n')
    thresholds = load_thresholds(path)
    assert thresholds.minimums("m::iris", "iris")["accuracy"] == 0.5
    assert thresholds.minimums("m+lora-fast::iris", "iris")["accuracy"] == 0.9
    assert thresholds.minimums("m::it_entities", "it_entities")["entity_f1"] == 0.5  # task default
    assert thresholds.tolerance("m+lora-fast::iris", "accuracy") == 0.05 and thresholds.tolerance("m::iris", "accuracy") is None


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


def test_a_drop_inside_the_baseline_interval_passes_and_below_it_fails():
    baseline = {"metrics": {"accuracy": {"value": 0.8, "low": 0.7, "high": 0.9}}}
    assert regressions({"metrics": {"accuracy": {"value": 0.72}}}, baseline, {}) == []
    (line,) = regressions({"metrics": {"accuracy": {"value": 0.65}}}, baseline, {})
    assert line.startswith("accuracy: 0.650 < 0.700 (baseline 0.800, baseline 95% CI")
    assert regressions({"metrics": {"accuracy": {"value": 0.72}}}, baseline, {"accuracy": 0.05})  # tolerance wins


def test_the_committed_baseline_matches_the_regression_settings_and_current_data():
    from pathlib import Path

    from slmbench.bench.baseline import load_baseline
    from slmbench.hashing import file_sha256
    from slmbench.tasks import TASKS

    rows = load_baseline(Path(__file__).resolve().parents[1] / "bench" / "baseline.json")
    assert {row["model"] for row in rows.values()} == {"smollm2-135m-instruct", "gemma3-270m"}
    assert {row["task"] for row in rows.values()} == set(TASKS)
    for row in rows.values():  # the settings tox -e regression uses; refresh with --bench-update-baseline
        task = TASKS[row["task"]]
        assert (row["split"], row["limit"], row["n"]) == ("val", 20, 20)
        assert row["provenance"]["task_version"] == task.version
        assert row["provenance"]["data_hash"] == file_sha256(task.data_path("val"))
