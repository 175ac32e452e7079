"""Leaderboard rows, paired deltas and markdown (bench/leaderboard.py), on hand-made records."""

import json

from slmbench.bench.leaderboard import all_deltas, render_markdown, to_json
from slmbench.tasks import TASKS

IRIS = TASKS["iris"]


def _record(variant: str, correct: list[int]) -> dict:
    """A record whose per-sample stats come from the real iris judge (right or wrong species)."""
    samples = (IRIS.samples("train") + IRIS.samples("test"))[:len(correct)]
    wrong = {"setosa": "virginica", "versicolor": "setosa", "virginica": "versicolor"}
    stats = {}
    for sample, ok in zip(samples, correct):
        species = sample.target["species"] if ok else wrong[sample.target["species"]]
        stats[sample.id] = dict(IRIS.judge(json.dumps({"species": species}), sample).stats)
    accuracy = sum(correct) / len(correct)
    return {"case_id": f"m{'' if variant == 'base' else '+' + variant}::iris", "model": "m", "variant": variant,
            "task": "iris", "split": "test", "limit": None, "n": len(correct), "random_weights": False,
            "metrics": {"accuracy": {"value": accuracy, "low": accuracy, "high": accuracy},
                        "json_valid": {"value": 1.0, "low": 1.0, "high": 1.0}},
            "speed": {"tokens_per_sec": 10.0, "eval_seconds": 1.0, "generated_tokens": 5, "cache_hits": 0},
            "provenance": {}, "sample_stats": stats}


def test_an_adapter_that_fixes_every_sample_has_a_significant_paired_delta():
    base, adapted = _record("base", [0] * 20), _record("lora-fast", [1] * 20)
    (delta,) = all_deltas([adapted, base])
    assert delta["metrics"]["accuracy"] == {"value": 1.0, "low": 1.0, "high": 1.0, "significant": True}


def test_identical_systems_have_a_zero_delta_that_is_not_significant():
    base, adapted = _record("base", [1, 0] * 10), _record("lora-fast", [1, 0] * 10)
    (delta,) = all_deltas([base, adapted])
    assert delta["metrics"]["accuracy"]["value"] == 0 and not delta["metrics"]["accuracy"]["significant"]


def test_pairing_beats_independent_resampling():
    # the adapter fixes 4 of 20 samples and breaks none: paired, the interval excludes 0
    base, adapted = _record("base", [1] * 8 + [0] * 12), _record("lora-fast", [1] * 12 + [0] * 8)
    (delta,) = all_deltas([base, adapted])
    assert delta["metrics"]["accuracy"]["low"] > 0 and delta["metrics"]["accuracy"]["significant"]


def test_delta_needs_the_same_samples():
    base, adapted = _record("base", [1] * 10), _record("lora-fast", [1] * 11)
    assert all_deltas([base, adapted]) == []


def test_markdown_puts_the_adapter_and_its_delta_under_the_base():
    board = to_json([_record("lora-fast", [1] * 20), _record("base", [0] * 20)])
    assert [row["case_id"] for row in board["rows"]] == ["m::iris", "m+lora-fast::iris"]
    assert all("sample_stats" not in row for row in board["rows"])
    lines = render_markdown(board).splitlines()
    base_line = next(i for i, line in enumerate(lines) if line.startswith("| m ") and "| base" in line)
    assert "lora-fast" in lines[base_line + 1] and "Δ vs base" in lines[base_line + 2]
    assert "+1.000 [+1.000, +1.000] *" in lines[base_line + 2]
    assert "| m+lora-fast" in render_markdown(board)  # summary row
