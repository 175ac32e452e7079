"""bench/speed.py: tokens/s is measured on a case's own generation and cached with its outputs.

Black-box through pytester on a tiny random-weight model (in-process runs), with counters on what a
run generates (``model.generate``) and times (pytest-benchmark, re-timing, stored measurements).
Nothing here compares durations.
"""

import json
import sqlite3
from collections import Counter
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from pytest_benchmark.fixture import BenchmarkFixture
from transformers import GenerationMixin

from slmbench.bench import speed
from slmbench.bench.speed import CaseSpeed

MODEL = "tiny-random-llama"
CASES = ("--bench-models", MODEL, "--bench-tasks", "iris,products")


@pytest.fixture
def counts(monkeypatch):
    """Counts what the in-process bench runs generate and time: `calls` (model.generate calls and the
    tokens they added, pytest-benchmark timings, re-timings, stored tokens/s figures) and `measured`
    (the generation each stored figure came from). `.reset()` between runs."""
    found = SimpleNamespace(calls=Counter(), measured=[])
    found.reset = lambda: (found.calls.clear(), found.measured.clear())
    real_generate, real_store = GenerationMixin.generate, CaseSpeed.store

    def generate(model, *args, **kwargs):
        output = real_generate(model, *args, **kwargs)
        found.calls["model.generate"] += 1
        found.calls["new tokens"] += output.shape[0] * (output.shape[1] - kwargs["input_ids"].shape[1])
        return output

    def store(self, run):
        found.calls["measured"] += 1
        found.measured.append(run)
        return real_store(self, run)

    def counted(name, real):
        def wrapper(*args, **kwargs):
            found.calls[name] += 1
            return real(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(GenerationMixin, "generate", generate)
    monkeypatch.setattr(CaseSpeed, "store", store)
    monkeypatch.setattr(CaseSpeed, "retime", counted("retime", CaseSpeed.retime))
    monkeypatch.setattr(BenchmarkFixture, "pedantic", counted("benchmark", BenchmarkFixture.pedantic))
    monkeypatch.setattr(BenchmarkFixture, "__call__", counted("benchmark", BenchmarkFixture.__call__))
    return found


def _today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def _speeds(out) -> dict[str, dict]:
    return {row["case_id"]: row["speed"] for row in json.loads((out / "lb.json").read_text())["rows"]}


def test_a_cold_run_measures_each_case_once_on_the_generation_it_scores(bench, counts):
    run, out = bench
    started = _today()
    run(*CASES).assert_outcomes(failed=5, passed=2, skipped=2)  # random weights fail; tokens/s passes
    speeds = _speeds(out)
    assert counts.calls["model.generate"] > 0 and counts.calls["new tokens"] > 0  # the counters see generation
    assert counts.calls["measured"] == len(speeds) == 2
    assert counts.calls["benchmark"] == counts.calls["retime"] == 0
    # each figure is that of the generation whose outputs were scored, not of a separate decode
    assert ({(s["generated_tokens"], s["tokens_per_sec"]) for s in speeds.values()}
            == {(run.generated_tokens, run.tokens_per_sec) for run in counts.measured})
    assert all(not s["tokens_per_sec_cached"] and s["tokens_per_sec_measured_at"][:10] in {started, _today()}
               for s in speeds.values())


def _records(store) -> list[dict[str, dict]]:
    """Each run's records in the store, by case id, in run order."""
    with sqlite3.connect(store) as connection:
        rows = connection.execute("SELECT run_id, case_id, record FROM cases ORDER BY rowid").fetchall()
    runs: dict[str, dict[str, dict]] = {}
    for run_id, case_id, record in rows:
        runs.setdefault(run_id, {})[case_id] = json.loads(record)
    return list(runs.values())


def _as_recorded(record: dict) -> dict:
    """A record less what tells one run from another: when it ran, its duration, what came from the cache."""
    speed = {k: v for k, v in record["speed"].items()
             if k not in ("eval_seconds", "generated_tokens", "cache_hits", "tokens_per_sec_cached")}
    return {**record, "speed": speed, "metrics": {k: v for k, v in record["metrics"].items() if k != "eval_seconds"},
            "provenance": {k: v for k, v in record["provenance"].items() if k != "created"}}


def test_a_warm_rerun_loads_no_weights_and_records_what_the_cold_run_did(bench, tiny_checkpoint, weight_loads):
    """A checkpoint loaded by path, as the real models are: its files are hashed, its tokenizer loaded,
    and its weights (and adapter) only read when a prompt misses the generation cache."""
    run, out = bench
    directory, adapter = tiny_checkpoint
    cases = ("--bench-models", str(directory), "--bench-tasks", "iris,products", "--bench-adapters", str(adapter))
    outcomes = run(*cases).parseoutcomes()
    outcomes.pop("warnings", None)  # loading the adapter warns (PEFT), and only the cold run loads it
    assert weight_loads == {"model": 2, "adapter": 1}  # the base cases share a load, the adapter case has its own
    weight_loads.clear()
    run(*cases).assert_outcomes(**outcomes)
    assert not weight_loads, f"a warm rerun loaded weights: {dict(weight_loads)}"
    cold_records, warm_records = _records(out / "results.db")
    assert len(cold_records) == 3 and all(r["speed"]["cache_hits"] == r["n"] for r in warm_records.values())
    assert {case: _as_recorded(r) for case, r in warm_records.items()} == \
        {case: _as_recorded(r) for case, r in cold_records.items()}


def test_a_warm_rerun_generates_nothing_times_nothing_and_shows_the_cached_figure(bench, counts):
    run, out = bench
    run(*CASES)
    cold = _speeds(out)
    counts.reset()
    run(*CASES).assert_outcomes(failed=5, passed=2, skipped=2)
    assert not counts.calls, f"a warm rerun generated or timed: {dict(counts.calls)}"
    warm = _speeds(out)
    for case, figure in cold.items():
        assert warm[case]["tokens_per_sec"] == figure["tokens_per_sec"] and warm[case]["tokens_per_sec_cached"]
        assert warm[case]["tokens_per_sec_measured_at"] == figure["tokens_per_sec_measured_at"]
    date = cold[f"{MODEL}::iris"]["tokens_per_sec_measured_at"][:10]
    assert f"{cold[f'{MODEL}::iris']['tokens_per_sec']:.1f} (cached {date})" in (out / "lb.md").read_text()
    assert f"(cached {date})" in (out / "report.html").read_text()


@pytest.mark.parametrize("option, rounds", [(("--bench-retime",), 1), (("--benchmark-min-rounds", "2"), 2)])
def test_re_timing_generates_each_case_again_under_pytest_benchmark(bench, counts, option, rounds):
    run, out = bench
    run("--bench-models", MODEL, "--bench-tasks", "iris")
    counts.reset()
    run("--bench-models", MODEL, "--bench-tasks", "iris", "-k", "tokens_per_sec", *option).assert_outcomes(passed=1)
    assert counts.calls["retime"] == counts.calls["benchmark"] == counts.calls["measured"] == 1
    assert counts.calls["model.generate"] == rounds  # 3 samples: one batch per round
    (figure,) = _speeds(out).values()
    assert not figure["tokens_per_sec_cached"] and figure["tokens_per_sec"] == counts.measured[0].tokens_per_sec


def test_cached_outputs_are_reused_on_another_machine_but_their_tokens_per_sec_is_not(bench, counts, monkeypatch):
    run, out = bench
    run("--bench-models", MODEL, "--bench-tasks", "iris")
    counts.reset()
    monkeypatch.setattr(speed, "cpu_model", lambda: "another CPU")
    result = run("--bench-models", MODEL, "--bench-tasks", "iris")
    assert not counts.calls, f"reusing cached outputs generated or timed: {dict(counts.calls)}"
    (figure,) = _speeds(out).values()
    assert figure["tokens_per_sec"] is None and not figure["tokens_per_sec_cached"]
    assert "— (not timed here)" in (out / "lb.md").read_text()
    result.stdout.fnmatch_lines(["*SKIPPED*tokens/s not timed here*--bench-retime times it*"])


def test_another_batch_size_generates_again_and_is_timed_on_that_generation(bench, counts):
    # in bfloat16 a batch's padding moves greedy outputs, so outputs are cached per batch size
    run, out = bench
    run("--bench-models", MODEL, "--bench-tasks", "iris")
    counts.reset()
    run("--bench-models", MODEL, "--bench-tasks", "iris", "--bench-batch-size", "2")
    assert counts.calls["model.generate"] == 2 and counts.calls["measured"] == 1  # 3 samples, batches of 2
    assert counts.calls["benchmark"] == counts.calls["retime"] == 0
    (figure,) = _speeds(out).values()
    assert not figure["tokens_per_sec_cached"] and figure["tokens_per_sec"] == counts.measured[0].tokens_per_sec


@pytest.mark.parametrize("args, rounds", [
    ((), 0),
    (("--benchmark-columns=median,rounds", "--benchmark-disable", "--benchmark-sort=name"), 0),  # display only
    (("--bench-retime",), 1),
    (("--benchmark-only",), 1),
    (("--benchmark-autosave",), 1),
    (("--benchmark-min-rounds", "3"), 3),
    (("--benchmark-min-rounds=5", "--bench-retime"), 5),  # explicit, even at pytest-benchmark's default
])
def test_which_options_re_time_and_how_many_rounds(pytester, args, rounds):
    assert speed.retime_rounds(pytester.parseconfigure(*args)) == rounds


def test_timing_options_count_from_pytest_addopts_and_the_ini_file(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_ADDOPTS", "--benchmark-min-rounds 2")
    assert speed.retime_rounds(pytester.parseconfigure()) == 2
    monkeypatch.delenv("PYTEST_ADDOPTS")
    pytester.makeini("[pytest]\naddopts = --benchmark-autosave\n")
    assert speed.retime_rounds(pytester.parseconfigure()) == 1
