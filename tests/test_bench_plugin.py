"""The bench plugin, black-box through pytester on tiny random-weight models."""

import json
import sqlite3

import pytest


TWO_MODELS = "tiny-random-llama,tiny-random-qwen2"


def test_ids_read_as_leaderboard_keys_and_k_selects(bench):
    run, _ = bench
    result = run("--bench-models", TWO_MODELS, "--bench-tasks", "iris,products", "--collect-only", "-q")
    ids = "\n".join(result.outlines)
    assert "test_json_valid[tiny-random-llama::iris]" in ids
    assert "test_metric[tiny-random-qwen2::iris-accuracy]" in ids
    assert "test_tokens_per_sec[tiny-random-qwen2::products]" in ids
    assert "test_no_regression" not in ids  # the gate only exists with --bench-baseline
    selected = run("--bench-models", TWO_MODELS, "--bench-tasks", "iris,products", "--collect-only", "-q",
                   "-k", "iris and not qwen")
    tests = [line for line in selected.outlines if "test_models.py::" in line]
    assert tests and all("tiny-random-llama::iris" in line for line in tests)


def test_globs_expand_over_the_registry(bench):
    run, _ = bench
    result = run("--bench-models", "tiny-random-*", "--bench-tasks", "iris", "--collect-only", "-q")
    for arch in ("llama", "qwen2", "mistral", "phi3", "gemma3"):
        assert f"test_json_valid[tiny-random-{arch}::iris]" in "\n".join(result.outlines)


@pytest.mark.parametrize("option, message", [
    (("--bench-tasks", "iris,nope"), "--bench-tasks: unknown task 'nope'; choose one of it_entities"),
    (("--bench-models", "no-such-model"), "unknown model 'no-such-model'"),
    (("--bench-models", "zzz-*"), "'zzz-*' matches no registry model"),
])
def test_bad_options_fail_with_a_clear_message(bench, option, message):
    run, _ = bench
    result = run(*option, "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # checked when pytest starts, before collection
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_missing_hub_model_is_skipped_with_the_fix(bench, empty_hf_cache):
    run, out = bench
    result = run("-k", "qwen")
    assert result.ret == pytest.ExitCode.OK
    outcomes = result.parseoutcomes()
    assert outcomes.get("skipped", 0) > 0 and "passed" not in outcomes and "failed" not in outcomes
    result.stdout.fnmatch_lines(["*qwen2.5-0.5b-instruct is not cached*huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct*"])
    assert not (out / "lb.md").exists()


def test_run_writes_leaderboard_json_and_store_then_reruns_from_cache(bench):
    run, out = bench
    first = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris,products")
    first.assert_outcomes(failed=5, passed=2, skipped=2)  # random weights fail every threshold
    first.stdout.fnmatch_lines([
        "*tiny-random-llama::iris: json_valid = 0.000 [[]0.000, 0.000[]] is below the threshold 0.950 (N=3, split test)."
        " First failing samples: iris-test-001*",
        "*= slmbench leaderboard =*", "*written to:*lb.md*",
        "*SKIPPED*products is a text task: its outputs are not JSON*",
    ])
    board = json.loads((out / "lb.json").read_text())
    assert [r["case_id"] for r in board["rows"]] == ["tiny-random-llama::iris", "tiny-random-llama::products"]
    row = board["rows"][0]
    assert row["n"] == 3 and row["random_weights"] and row["speed"]["tokens_per_sec"] > 0
    assert row["metrics"]["accuracy"]["low"] <= row["metrics"]["accuracy"]["value"] <= row["metrics"]["accuracy"]["high"]
    assert {"model_hash", "task_version", "data_hash", "decoding", "versions", "git_commit"} <= set(row["provenance"])
    markdown = (out / "lb.md").read_text()
    assert "## iris" in markdown and "| tiny-random-llama (random weights) | base" in markdown
    assert row["speed"]["generated_tokens"] > 0
    second = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris,products")
    second.assert_outcomes(failed=5, passed=2, skipped=2)
    rows = json.loads((out / "lb.json").read_text())["rows"]
    assert all(r["speed"]["generated_tokens"] == 0 and r["speed"]["cache_hits"] == 3 for r in rows)
    with sqlite3.connect(out / "results.db") as db:
        assert db.execute("SELECT COUNT(DISTINCT run_id), COUNT(DISTINCT case_id) FROM results").fetchone() == (2, 2)


def test_thresholds_file_overrides_task_defaults(bench, tmp_path):
    run, _ = bench
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text('["tiny-random-*::iris"]\njson_valid = 0\nschema_valid = 0\n'
                          'valid_label_rate = 0\naccuracy = 0\n')
    result = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris", "--bench-thresholds", str(thresholds))
    result.assert_outcomes(passed=5)
    thresholds.write_text('["tiny-random-llama::iris"]\nacuracy = 0.3\n')
    result = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris", "--bench-thresholds", str(thresholds))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{thresholds}: [[]'tiny-random-llama::iris'[]]: unknown metric 'acuracy'*"])


def test_adapters_are_found_and_sit_next_to_their_base_with_a_paired_delta(bench, tmp_path, tiny_adapter):
    run, out = bench
    tiny_adapter(tmp_path / "adapters", "tiny-random-llama", "iris", "fast")
    result = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris,products", "-k", "iris")
    assert "tiny-random-llama+lora-fast::iris" in result.stdout.str()
    board = json.loads((out / "lb.json").read_text())
    assert [r["case_id"] for r in board["rows"]] == ["tiny-random-llama::iris", "tiny-random-llama+lora-fast::iris"]
    (delta,) = board["deltas"]
    accuracy = delta["metrics"]["accuracy"]
    assert delta["base_case_id"] == "tiny-random-llama::iris" and accuracy["low"] <= accuracy["value"] <= accuracy["high"]
    assert "| Δ vs base" in (out / "lb.md").read_text()
    none = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris", "--bench-adapters", "none",
               "--collect-only", "-q")
    assert "lora-fast" not in none.stdout.str()


def test_xdist_workers_merge_into_one_leaderboard_and_store(bench):
    run, out = bench
    result = run("--bench-models", TWO_MODELS, "--bench-tasks", "iris,it_entities", "-n", "2", "--dist", "loadgroup",
                 subprocess=True)
    result.stdout.fnmatch_lines(["*slmbench leaderboard*"])
    rows = json.loads((out / "lb.json").read_text())["rows"]
    assert sorted(r["case_id"] for r in rows) == sorted(f"{m}::{t}" for m in TWO_MODELS.split(",") for t in ("iris", "it_entities"))
    assert {r["provenance"]["worker"] for r in rows} == {"gw0", "gw1"}  # one model per worker
    with sqlite3.connect(out / "results.db") as db:
        counts = db.execute("SELECT COUNT(DISTINCT run_id), COUNT(DISTINCT case_id) FROM results").fetchone()
        per_case = db.execute("SELECT case_id, COUNT(*) FROM results GROUP BY case_id").fetchall()
    assert counts == (1, 4)
    expected = {r["case_id"]: len(r["metrics"]) + 2 for r in rows}  # + tokens/s and eval seconds
    assert dict(per_case) == expected
