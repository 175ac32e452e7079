"""Fault injection for `pytest bench` (issue 16, bench side): every bad input or fault ends in a clear
message with a distinct exit status, no traceback, and whatever was already on disk kept intact.

Black-box through pytester on tiny random-weight models, in temporary folders.
"""

import json
import sqlite3
from pathlib import Path

import pytest

from slmbench.bench import store
from slmbench.bench.plugin import RESULTS_NOT_SAVED
from slmbench.tasks import core as task_core

BENCH = Path(__file__).resolve().parents[1] / "bench"
MODEL = "tiny-random-llama"
USAGE = pytest.ExitCode.USAGE_ERROR


@pytest.fixture
def bench(pytester, tmp_path, monkeypatch):
    """`run(*options)` runs `pytest bench` on one tiny model into tmp_path/out; returns (run, out)."""
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(tmp_path / "adapters"))
    out = tmp_path / "out"
    out.mkdir()

    def run(*args, limit="2", tasks="iris", **kwargs):
        options = [str(BENCH), "-p", "no:cacheprovider", "-rs", "--bench-models", MODEL, "--bench-tasks", tasks,
                   "--bench-limit", limit, "--bench-fewshot", "0", "--bench-classical", "none",
                   "--bench-leaderboard", str(out / "lb.md"), "--bench-json",
                   str(out / "lb.json"), "--bench-store", str(out / "results.db"), *args]
        return pytester.runpytest(*options, **kwargs)

    return run, out


def _no_traceback(result) -> str:
    text = result.stdout.str() + result.stderr.str()
    assert "Traceback" not in text
    return text


def _generations(out: Path) -> list[Path]:
    return [p for p in (out.parent / "cache").rglob("*") if p.is_file()] if (out.parent / "cache").exists() else []


def _store_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT run_id, case_id, metric, value FROM results ORDER BY 1, 2, 3").fetchall()


def _snapshot(*paths: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in paths}


# ---- data loss 1: the store fails at session end ---------------------------------------------------------

def test_a_full_disk_under_the_store_still_writes_the_board_and_exits_with_its_own_status(bench):
    run, out = bench
    (out / "results.db").symlink_to("/dev/full")  # every write fails with ENOSPC, like a full disk
    result = run()
    text = _no_traceback(result)
    assert result.ret == RESULTS_NOT_SAVED
    assert "results.db" in text and "disk is full" in text and "not stored" in text
    board = json.loads((out / "lb.json").read_text())
    assert [row["case_id"] for row in board["rows"]] == [f"{MODEL}::iris"]
    assert "## iris" in (out / "lb.md").read_text()
    result.stdout.fnmatch_lines(["*passed*"])  # pytest's own summary is still printed


def test_a_store_locked_past_the_busy_timeout_keeps_its_rows_and_the_new_board(bench, monkeypatch):
    run, out = bench
    assert run().ret == 1  # random weights fail thresholds: 1 means "threshold failures"
    before = _store_rows(out / "results.db")
    monkeypatch.setattr(store, "BUSY_TIMEOUT_S", 1)
    holder = sqlite3.connect(out / "results.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock for the whole run
    try:
        result = run()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    text = _no_traceback(result)
    assert result.ret == RESULTS_NOT_SAVED
    assert "locked" in text and str(out / "results.db") in text
    assert _store_rows(out / "results.db") == before
    assert json.loads((out / "lb.json").read_text())["run_id"] not in {row[0] for row in before}


@pytest.mark.parametrize("kind, message", [
    ("garbage", "not an SQLite database"),
    ("directory", "is a directory"),
    ("old-schema", "has no column"),
])
def test_a_store_that_cannot_take_rows_is_refused_before_any_generation(bench, kind, message):
    run, out = bench
    path = out / "results.db"
    if kind == "garbage":
        path.write_text("these are my notes, not a database\n" * 50)
    elif kind == "directory":
        path.mkdir()
    else:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE results (run_id TEXT, case_id TEXT, value REAL)")
            db.execute("INSERT INTO results VALUES ('old', 'x::iris', 0.5)")
    kept = path.read_bytes() if path.is_file() else None
    result = run()
    text = _no_traceback(result)
    assert result.ret == USAGE
    assert "--bench-store" in text and str(path) in text and message in text
    assert _generations(out) == [] and not (out / "lb.md").exists()
    assert (path.read_bytes() if path.is_file() else None) == kept


# ---- data loss 2: Ctrl-C and concurrent runs ---------------------------------------------------------------

INTERRUPT_AT_PRODUCTS = """
def pytest_runtest_setup(item):  # before the case's outputs are generated
    if "::products" in item.nodeid:
        raise KeyboardInterrupt
"""

OTHER_RUN_WRITES_THE_BOARD = """
import os
from pathlib import Path

def pytest_runtest_call(item):
    out = Path(os.environ["BOARD_DIR"])
    (out / "lb.md").write_text("# the other run's board\\n")
    (out / "lb.json").write_text('{"rows": [], "run_id": "other"}\\n')
"""


def _plugin(pytester, name: str, source: str) -> tuple[str, str]:
    pytester.makepyfile(**{name: source})
    pytester.syspathinsert()
    return "-p", name


def test_ctrl_c_keeps_the_full_board_and_writes_a_marked_partial_one_beside_it(bench, pytester):
    run, out = bench
    assert run(tasks="iris,products").ret == 1
    full = _snapshot(out / "lb.md", out / "lb.json")
    interrupted = run(*_plugin(pytester, "interrupter", INTERRUPT_AT_PRODUCTS), tasks="iris,products",
                      no_reraise_ctrlc=True)
    text = _no_traceback(interrupted)
    assert interrupted.ret == pytest.ExitCode.INTERRUPTED
    assert _snapshot(out / "lb.md", out / "lb.json") == full
    partial = json.loads((out / "lb.partial.json").read_text())
    assert partial["partial"] is True and partial["cases_ran"] == [f"{MODEL}::iris"]
    assert [row["case_id"] for row in partial["rows"]] == [f"{MODEL}::iris"]
    markdown = (out / "lb.partial.md").read_text()
    assert "Partial leaderboard" in markdown and "lb.md" in markdown
    assert "lb.partial.md" in text and "partial" in text
    again = run(tasks="iris,products")
    assert again.ret == 1 and not (out / "lb.partial.md").exists() and not (out / "lb.partial.json").exists()
    assert "partial" not in json.loads((out / "lb.json").read_text())


def test_update_baseline_refuses_a_partial_run(bench, pytester, tmp_path):
    run, out = bench
    baseline = tmp_path / "baseline.json"
    result = run("--bench-baseline", str(baseline), "--bench-update-baseline",
                 *_plugin(pytester, "interrupter", INTERRUPT_AT_PRODUCTS), tasks="iris,products",
                 no_reraise_ctrlc=True)
    text = _no_traceback(result)
    assert not baseline.exists() and "baseline not updated" in text


def test_a_concurrent_run_that_wrote_the_board_first_is_not_overwritten(bench, pytester, monkeypatch):
    run, out = bench
    monkeypatch.setenv("BOARD_DIR", str(out))
    result = run(*_plugin(pytester, "other_run", OTHER_RUN_WRITES_THE_BOARD), "-k", "json_valid")
    text = _no_traceback(result)
    assert (out / "lb.md").read_text() == "# the other run's board\n"
    assert json.loads((out / "lb.json").read_text())["run_id"] == "other"
    (mine,) = [p for p in out.glob("lb.*.json")]
    assert json.loads(mine.read_text())["rows"][0]["case_id"] == f"{MODEL}::iris"
    assert mine.with_suffix(".md").exists() and mine.name in text and "another run" in text


# ---- data loss 3: limits and empty splits --------------------------------------------------------------

@pytest.mark.parametrize("option, value", [("--bench-limit", "-1"), ("--bench-limit", "0"),
                                           ("--bench-batch-size", "0"), ("--bench-batch-size", "-3")])
def test_non_positive_counts_are_usage_errors(bench, option, value):
    run, out = bench
    result = run(option, value) if option != "--bench-limit" else run(limit=value)
    text = _no_traceback(result)
    assert result.ret == USAGE and f"argument {option}: must be a positive whole number, got {value!r}" in text
    assert not (out / "lb.md").exists()


def test_an_empty_split_is_a_clear_error_and_records_nothing(bench, tmp_path, monkeypatch):
    run, out = bench
    fixtures = tmp_path / "fixtures"
    (fixtures / "iris").mkdir(parents=True)
    (fixtures / "iris" / "test.jsonl").write_text("")
    monkeypatch.setattr(task_core, "FIXTURES", fixtures)
    result = run()
    text = _no_traceback(result)
    assert result.ret == 1 and "KeyError" not in text
    assert f"{fixtures / 'iris' / 'test.jsonl'}: the test split of iris has no samples" in text
    assert not (out / "lb.json").exists() and not (out / "results.db").exists()


# ---- silently accepted ------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, message", [
    ('["*::iris"]\naccuracy = nan\n', "minimum for 'accuracy' must be a number in [0, 1], got nan"),
    ('["*::iris"]\naccuracy = 7.0\n', "minimum for 'accuracy' must be a number in [0, 1], got 7.0"),
    ('["*::iris"]\ntolerance = { accuracy = inf }\n', "tolerance for 'accuracy' must be a number in [0, 1], got inf"),
])
def test_threshold_values_outside_the_metric_range_are_refused(bench, tmp_path, body, message):
    run, out = bench
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text(body)
    result = run("--bench-thresholds", str(thresholds))
    text = _no_traceback(result)
    assert result.ret == USAGE and f"{thresholds}: ['*::iris']: {message}" in text
    assert _generations(out) == []


@pytest.mark.parametrize("kind, message", [("latin-1", "not UTF-8"), ("directory", "is a directory")])
def test_a_thresholds_file_that_cannot_be_read_is_refused(bench, tmp_path, kind, message):
    run, _ = bench
    thresholds = tmp_path / "thresholds.toml"
    if kind == "directory":
        thresholds.mkdir()
    else:
        thresholds.write_bytes('# soglie per modelli più piccoli\n["*::iris"]\naccuracy = 0.1\n'.encode("latin-1"))
    result = run("--bench-thresholds", str(thresholds))
    text = _no_traceback(result)
    assert result.ret == USAGE and str(thresholds) in text and message in text


@pytest.mark.parametrize("option", ["--bench-leaderboard", "--bench-json"])
def test_a_board_path_that_is_a_directory_fails_before_generation(bench, option):
    run, out = bench
    target = out / "board-dir"
    target.mkdir()
    result = run(option, str(target))
    text = _no_traceback(result)
    assert result.ret == USAGE and f"{option}: {target} is a directory" in text
    assert _generations(out) == []


@pytest.mark.parametrize("edit, message", [
    (lambda board: board["rows"][0]["metrics"]["accuracy"].update(value="high"),
     "rows[0] (tiny-random-llama::iris): metrics.accuracy.value: 'high' is not of type 'number', 'null'"),
    (lambda board: board["rows"][0].pop("case_id"), "rows[0]: 'case_id' is a required property"),
    (lambda board: board["rows"].append("oops"), "rows[1]: 'oops' is not of type 'object'"),
])
def test_hand_edited_baseline_rows_name_the_file_and_row(bench, tmp_path, edit, message):
    run, out = bench
    baseline = tmp_path / "baseline.json"
    assert run("--bench-baseline", str(baseline), "--bench-update-baseline", "-k", "no_regression").ret == 0
    board = json.loads(baseline.read_text())
    edit(board)
    baseline.write_text(json.dumps(board))
    result = run("--bench-baseline", str(baseline), "-k", "no_regression")
    text = _no_traceback(result)
    assert result.ret == USAGE and f"{baseline}: {message}" in text


@pytest.mark.parametrize("made_with, run_with, reason", [
    (("--bench-batch-size", "2"), ("--bench-batch-size", "1"), "batch size is 1 here but 2 in the baseline"),
    (("--bench-dtype", "float32"), ("--bench-dtype", "bfloat16"), "dtype is 'bfloat16' here but 'float32' in the baseline"),
])
def test_a_baseline_made_with_other_settings_is_refused_with_the_reason(bench, tmp_path, made_with, run_with, reason):
    run, _ = bench
    baseline = tmp_path / "baseline.json"
    common = ("--bench-baseline", str(baseline), "-k", "no_regression")
    assert run(*common, *made_with, "--bench-update-baseline").ret == 0
    assert run(*common, *made_with).ret == 0
    refused = run(*common, *run_with)
    assert refused.ret == 1
    refused.stdout.fnmatch_lines([f"*cannot compare with the baseline*{reason}*"])


@pytest.mark.parametrize("option", ["--bench-models", "--bench-tasks"])
def test_an_empty_selection_is_a_usage_error_not_everything(bench, option):
    run, _ = bench
    result = run(option, "", "--collect-only")
    text = _no_traceback(result)
    assert result.ret == USAGE and f"argument {option}: names nothing" in text


def test_a_directory_that_is_not_a_model_is_a_usage_error(bench, tmp_path):
    run, _ = bench
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "notes.txt").write_text("weights coming soon")
    result = run("--bench-models", str(tmp_path / "my-model"))
    text = _no_traceback(result)
    assert result.ret == USAGE and f"--bench-models: {tmp_path / 'my-model'} is a directory but not a model" in text


def test_a_mistyped_hub_id_is_a_usage_error_but_a_known_uncached_model_skips(bench, empty_hf_cache):
    run, out = bench
    result = run("--bench-models", "Qwen/Qwen2.5-0.5B-Instrct")
    text = _no_traceback(result)
    assert result.ret == USAGE
    assert "--bench-models: hub model 'Qwen/Qwen2.5-0.5B-Instrct' is not in the local Hugging Face cache" in text
    known = run("--bench-models", "qwen2.5-0.5b-instruct")
    assert known.ret == pytest.ExitCode.OK and known.parseoutcomes().get("skipped", 0) > 0
    known.stdout.fnmatch_lines(["*not cached*huggingface-cli download Qwen/Qwen2.5-0.5B-Instruct*"])


def test_benchmarks_folder_is_not_created_unless_saving_is_asked_for(bench, pytester):
    run, _ = bench
    assert run("-k", "tokens_per_sec").ret == 0
    assert not (pytester.path / ".benchmarks").exists()
    assert run("-k", "tokens_per_sec", "--benchmark-autosave").ret == 0
    assert any((pytester.path / ".benchmarks").rglob("*.json"))


# ---- the plugin in someone else's project --------------------------------------------------------------
def test_an_unrelated_projects_own_results_db_does_not_stop_its_tests(pytester):
    (pytester.path / "results.db").write_text("the project's own file, not slmbench's\n")
    pytester.makepyfile(test_theirs="def test_theirs():\n    assert True\n")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, _no_traceback(result)
    result.assert_outcomes(passed=1)


def test_a_bench_run_without_bench_options_still_checks_the_store_before_generating(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    (pytester.path / "results.db").write_text("not a database\n")
    result = pytester.runpytest(str(BENCH), "-p", "no:cacheprovider")
    assert result.ret == USAGE, _no_traceback(result)
    assert "not an SQLite database" in _no_traceback(result)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))
