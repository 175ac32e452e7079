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


def _shot_record(shots: int, correct: list[int]) -> dict:
    """A K-shot base row of model m (kind and shots as the bench writes them)."""
    record = _record("base", correct)
    if shots:
        record.update(case_id=f"m+{shots}shot::iris", variant=f"{shots}-shot")
    return {**record, "kind": "base", "shots": shots}


def test_the_delta_is_against_the_better_of_the_zero_shot_and_k_shot_rows():
    zero, three = _shot_record(0, [1] * 5 + [0] * 15), _shot_record(3, [1] * 15 + [0] * 5)
    adapted = {**_record("lora-fast", [1] * 10 + [0] * 10), "kind": "adapter", "shots": 0}
    (delta,) = all_deltas([zero, three, adapted])
    assert delta["base_case_id"] == "m+3shot::iris" and delta["base_variant"] == "3-shot"
    assert delta["metrics"]["accuracy"]["value"] == -0.25 and delta["metrics"]["accuracy"]["high"] < 0
    board = to_json([adapted, three, zero])
    assert [row["case_id"] for row in board["rows"]] == ["m::iris", "m+3shot::iris", "m+lora-fast::iris"]
    assert "| Δ vs 3-shot" in render_markdown(board)
    assert "| m+few-shot" in render_markdown(board)  # summary line of the K-shot rows


def test_a_tie_between_base_rows_goes_to_fewer_shots():
    zero, three = _shot_record(0, [1, 0] * 10), _shot_record(3, [0, 1] * 10)
    adapted = {**_record("lora-fast", [1] * 20), "kind": "adapter", "shots": 0}
    (delta,) = all_deltas([three, zero, adapted])
    assert delta["base_case_id"] == "m::iris"


def test_classical_rows_close_the_table_and_recipes_says_why_it_has_none():
    classical = {**_record("base", [1] * 20), "case_id": "classical-logreg::iris", "model": "classical",
                 "variant": "logreg", "kind": "classical", "shots": 0}
    recipes = {**_shot_record(0, [0] * 20), "case_id": "m::recipes", "task": "recipes"}
    board = to_json([classical, _shot_record(0, [0] * 20), recipes])
    assert [row["case_id"] for row in board["rows"]] == ["m::recipes", "m::iris", "classical-logreg::iris"]
    assert board["deltas"] == []  # a classical row is not an adapter
    markdown = render_markdown(board)
    assert "recipes: no classical baseline: turning recipe prose" in markdown
    assert "| classical " in markdown and "1.000 [1.000, 1.000] (logreg)" in markdown
