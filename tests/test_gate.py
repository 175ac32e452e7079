"""The regression gate (bench/baseline.py): paired per-sample comparison against a stored baseline.

The rule is tested on records whose stats come from the real it_entities judge, and the gate end to
end through pytester on a tiny model whose outputs are planted in the generation cache: perfect
answers for the baseline, then the same with some samples broken.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmbench.bench.baseline import BaselineError, baseline_document, comparable, load_baseline, regressions
from slmbench.cache import GenerationCache, generation_key
from slmbench.evaluation import decoding_for
from slmbench.loading import DEFAULT_DTYPE, load_model
from slmbench.tasks import TASKS

ENTITIES = TASKS["it_entities"]
SAMPLES = ENTITIES.samples("val")[:20]
BROKEN = "people: Mario Rossi"  # not JSON: the sample loses validity and every entity
EMPTY = json.dumps({"people": [], "dates": [], "places": []})
BENCH = Path(__file__).resolve().parents[1] / "bench"
MODEL = "tiny-random-llama"


def outputs(broken: int = 0, fill: str | None = None) -> list[str]:
    """Perfect answers (or `fill`) for the 20 samples, the first `broken` of them not JSON."""
    perfect = [fill or ENTITIES.completion(s) for s in SAMPLES]
    return [BROKEN] * broken + perfect[broken:]


def record(texts: list[str], **provenance) -> dict:
    stats = {s.id: dict(ENTITIES.judge(text, s).stats) for text, s in zip(texts, SAMPLES)}
    return {"case_id": "m::it_entities", "task": "it_entities", "split": "val", "limit": 20, "n": len(texts),
            "metrics": {}, "sample_stats": stats,
            "provenance": {"dtype": "bfloat16", "device": "cpu", "data_hash": "abc", **provenance}}


# --- the rule

def test_an_unchanged_run_passes():
    assert regressions(record(outputs()), record(outputs()), {}) == []


def test_breaking_three_of_twenty_samples_fails_naming_the_metric_and_the_samples():
    found = regressions(record(outputs(broken=3)), record(outputs()), {})
    line = next(line for line in found if line.startswith("entity_f1:"))
    assert "one-sided 95% bound" in line and SAMPLES[0].id in line and SAMPLES[3].id not in line, found


def test_two_of_twenty_is_within_the_noise_unless_a_tolerance_says_otherwise():
    now, before = record(outputs(broken=2)), record(outputs())
    assert regressions(now, before, {}) == []
    assert [line.split(":")[0] for line in regressions(now, before, {"json_valid": 0.05})] == ["json_valid"]


def test_a_row_at_zero_on_every_entity_metric_still_fails_when_samples_get_worse():
    """Valid JSON, no entity right: entity P/R/F1 are 0.000 [0, 0], which the old gate could never fail on."""
    before, now = record(outputs(fill=EMPTY)), record(outputs(broken=3, fill=EMPTY))
    failed = {line.split(":")[0] for line in regressions(now, before, {})}
    assert failed == {"json_valid", "schema_valid"}, failed


def test_a_gain_never_fails():
    assert regressions(record(outputs()), record(outputs(broken=6)), {"entity_f1": 0.0}) == []


@pytest.mark.parametrize("change, reason", [
    ({"dtype": "float32"}, "dtype is 'float32' here but 'bfloat16' in the baseline"),
    ({"device": "cuda"}, "device is 'cuda' here but 'cpu'"),
    ({"backend": "vllm"}, "backend is 'vllm' here but 'hf'"),
    ({"fewshot": {"k": 3, "seed": 0}}, "fewshot is {'k': 3, 'seed': 0} here but {'k': 0} in the baseline"),
    ({"decoding": {"max_new_tokens": 8}}, "decoding is {'max_new_tokens': 8, 'structured': False} here but None"),
    ({"decoding": {"max_new_tokens": 8, "structured": True}, "_before": {"decoding": {"max_new_tokens": 8}}},
     "decoding is {'max_new_tokens': 8, 'structured': True} here but {'max_new_tokens': 8, 'structured': False}"),
    ({"data_hash": "def"}, "data hash is 'def' here but 'abc'"),
    ({"train_hash": "fit-on-other-data"}, "train hash is 'fit-on-other-data' here but None"),
])
def test_a_baseline_made_with_other_settings_is_refused_with_the_reason(change, reason):
    change = dict(change)
    before = change.pop("_before", {})
    assert reason in comparable(record(outputs(), **change), record(outputs(), **before))


def test_a_baseline_decoded_before_the_structured_switch_existed_decoded_freely():
    now = record(outputs(), decoding={"max_new_tokens": 8, "structured": False})
    assert comparable(now, record(outputs(), decoding={"max_new_tokens": 8})) is None


def test_a_baseline_without_few_shot_provenance_counts_as_zero_shot():
    assert comparable(record(outputs(), fewshot={"k": 0}), record(outputs())) is None


def test_a_baseline_without_a_backend_was_made_by_transformers_here():
    assert comparable(record(outputs(), backend="hf"), record(outputs())) is None
    assert "backend is 'openai' here but 'hf'" in comparable(record(outputs(), backend="openai"), record(outputs()))


def test_other_samples_are_refused():
    fewer = record(outputs())
    fewer["sample_stats"].pop(SAMPLES[5].id)
    assert f"the samples differ from the baseline's (e.g. {SAMPLES[5].id})" in comparable(fewer, record(outputs()))


def test_an_old_format_baseline_is_refused(tmp_path):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps({"format": 1, "rows": []}))
    with pytest.raises(BaselineError, match="holds no per-sample stats"):
        load_baseline(path)


def test_the_committed_baseline_matches_the_regression_settings_and_current_data():
    from slmbench.hashing import file_sha256

    rows = load_baseline(BENCH / "baseline.json")
    assert {row["model"] for row in rows.values()} >= {"smollm2-135m-instruct", "gemma3-270m"}
    assert {row["task"] for row in rows.values()} == set(TASKS)
    for row in rows.values():  # the settings tox -e regression uses; refresh with --bench-update-baseline
        task = TASKS[row["task"]]
        assert (row["split"], row["limit"], row["n"], len(row["sample_stats"])) == ("val", 20, 20, 20)
        assert row["provenance"]["task_version"] == task.version
        assert row["provenance"]["data_hash"] == file_sha256(task.data_path("val"))


def test_tox_regression_gates_the_rows_the_baseline_holds():
    """The baseline has 0-shot model rows only, so the regression env turns K-shot and classical rows off."""
    rows = load_baseline(BENCH / "baseline.json").values()
    assert all(row.get("shots", 0) == 0 and row.get("kind") != "classical" for row in rows)
    command = (BENCH.parent / "tox.ini").read_text(encoding="utf-8").split("[testenv:regression]")[1]
    assert "--bench-fewshot 0" in command and "--bench-classical none" in command


def test_the_baseline_document_keeps_per_sample_stats():
    rows = baseline_document([record(outputs())])["rows"]
    assert rows[0]["sample_stats"][SAMPLES[0].id]["json_valid"] == 1.0


# --- end to end: pytest bench with outputs planted in the generation cache

@pytest.fixture
def gate(pytester, tmp_path, monkeypatch):
    """Run the gate on it_entities val[:20] of a tiny model; `plant(texts)` sets what the model "says"."""
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(tmp_path / "adapters"))
    cache, decoding = GenerationCache(), decoding_for(ENTITIES)
    baseline, out = tmp_path / "baseline.json", tmp_path / "out"

    def plant(texts: list[str], dtype: str = DEFAULT_DTYPE) -> None:
        loaded = load_model(MODEL, dtype=dtype)
        for sample, text in zip(SAMPLES, texts):
            key = generation_key(loaded, loaded.render(ENTITIES.prompt(sample)), decoding)
            cache.put(key, {"text": text, "prompt_tokens": 1, "completion_tokens": 1, "finish_reason": "json_end",
                            "seconds": 0.0})

    def run(*args):
        return pytester.runpytest(str(BENCH), "-p", "no:cacheprovider", "-k", "no_regression",
                                  "--bench-models", MODEL, "--bench-tasks", "it_entities", "--bench-split", "val",
                                  "--bench-limit", "20", "--bench-baseline", str(baseline),
                                  "--bench-leaderboard", str(out / "lb.md"), "--bench-json", str(out / "lb.json"),
                                  "--bench-store", "none", "--bench-fewshot", "0", "--bench-classical", "none", *args)

    return plant, run


def test_gate_end_to_end_passes_unchanged_and_fails_three_broken_samples(gate):
    plant, run = gate
    plant(outputs())
    run("--bench-update-baseline").assert_outcomes(skipped=1)
    run().assert_outcomes(passed=1)
    plant(outputs(broken=3))
    broken = run()
    broken.assert_outcomes(failed=1)
    broken.stdout.fnmatch_lines([f"*{MODEL}::it_entities regressed against*entity_f1: Δ -0.*{SAMPLES[0].id}*"])


def test_gate_end_to_end_refuses_a_baseline_of_another_dtype(gate):
    plant, run = gate
    plant(outputs())
    run("--bench-update-baseline").assert_outcomes(skipped=1)
    plant(outputs(), dtype="float32")  # the same answers: only the setting differs
    other = run("--bench-dtype", "float32")
    other.assert_outcomes(failed=1)
    other.stdout.fnmatch_lines(["*cannot compare with the baseline*dtype is 'float32' here but 'bfloat16'*"])
