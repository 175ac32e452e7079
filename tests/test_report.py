"""Per-sample logs (bench/samples_log.py), the samples store, report.html and `slmbench compare`."""

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slmbench.bench import compare, html_report, run_loader, samples_log, store
from slmbench.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[1]
XSS = ['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "</td></pre></article>"]


def _run_dir(out: Path) -> Path:
    (run_dir,) = (out / "results").iterdir()
    return run_dir


def test_log_names_are_safe_unique_and_keep_the_real_id(tmp_path):
    ids = ["gemma3-270m+lora-fast::it_entities", "gemma3-270m_lora-fast::it_entities", "a/../b::c"]
    names = [samples_log.log_name(case_id) for case_id in ids]
    assert len(set(names)) == 3 and all("/" not in n and ":" not in n and "+" not in n for n in names)
    samples_log.write_log(tmp_path, ids[0], [{"case_id": ids[0], "sample_id": "s1", "output": "x"}])
    assert samples_log.read_run(tmp_path) == {ids[0]: [{"case_id": ids[0], "sample_id": "s1", "output": "x"}]}


def test_a_malformed_log_line_is_named_with_file_and_line(tmp_path):
    (tmp_path / "case.jsonl").write_text('{"case_id": "m::t", "sample_id": "a"}\n{"case_id": "m::t", "sampl\n')
    with pytest.raises(samples_log.SampleLogError, match=r"case.jsonl:2: not valid JSON"):
        samples_log.read_run(tmp_path)


def test_every_case_has_a_complete_log_beside_the_leaderboard(tiny_bench_run):
    cases = samples_log.read_run(_run_dir(tiny_bench_run))
    assert sorted(cases) == ["tiny-random-llama+lora-fast::iris", "tiny-random-llama::iris", "tiny-random-llama::products"]
    row = cases["tiny-random-llama::products"][0]
    assert {"sample_id", "input", "reference", "prompt_sha256", "output", "parsed", "finish_reason", "prompt_tokens",
            "completion_tokens", "stats", "explanation", "details"} <= set(row)
    assert all(len(rows) == 4 for rows in cases.values())
    assert [n["score"] for n in row["details"]["nearest_train"]] and len(row["details"]["nearest_train"]) == 3
    assert "predicted" in cases["tiny-random-llama::iris"][0]["details"]


def test_the_board_points_at_its_run_and_logs(tiny_bench_run):
    board = json.loads((tiny_bench_run / "lb.json").read_text())
    assert (tiny_bench_run / board["samples_dir"]).resolve() == _run_dir(tiny_bench_run).resolve()
    assert board["run_id"] == _run_dir(tiny_bench_run).name


def test_reloading_from_the_store_gives_the_same_report(tiny_bench_run, tmp_path, capsys):
    written = (tiny_bench_run / "report.html").read_text(encoding="utf-8")
    out = tmp_path / "again.html"
    assert cli_main(["report", str(tiny_bench_run / "results.db"), "--out", str(out)]) == 0
    assert out.read_text(encoding="utf-8") == written
    assert "3 cases, 12 sample rows" in capsys.readouterr().out


def test_report_cli_names_a_missing_run(tiny_bench_run, tmp_path, capsys):
    code = cli_main(["report", "no-such-run", "--store", str(tiny_bench_run / "results.db"), "--out", str(tmp_path / "r.html")])
    assert code == 2 and "no run 'no-such-run'; latest runs:" in capsys.readouterr().err


def test_report_shows_tables_samples_confusion_neighbours_and_loss_curve(tiny_bench_run):
    page = (tiny_bench_run / "report.html").read_text(encoding="utf-8")
    for part in ('id="summary"', 'id="task-iris"', "confusion matrix", 'class="neighbours"', "lora-fast",
                 'id="adapters"', "kept: epoch 1", 'id="provenance"', "<svg", 'data-sample="iris-test-001"'):
        assert part in page, part
    external = re.findall(r"""(?:src|href)\s*=\s*["'](?!#)|url\((?!#)|@import""", page)
    assert external == []  # self-contained: no resource outside the page


def test_compare_prints_paired_deltas_for_matching_samples(tiny_bench_run, tmp_path, capsys):
    board = json.loads((tiny_bench_run / "lb.json").read_text())
    assert cli_main(["compare", str(tiny_bench_run / "lb.json"), str(tiny_bench_run / "lb.json")]) == 0
    table = capsys.readouterr().out
    assert "| tiny-random-llama::iris" in table and "+0.000 [+0.000, +0.000]" in table and "unpaired" not in table.split("Δ in")[0]
    board["rows"] = board["rows"][:1]
    board["samples_dir"] = None
    (tmp_path / "old.json").write_text(json.dumps(board))
    assert cli_main(["compare", str(tmp_path / "old.json"), str(tiny_bench_run / "lb.json")]) == 0
    table = capsys.readouterr().out
    assert "(unpaired)" in table and "Only in NEW: tiny-random-llama+lora-fast::iris, tiny-random-llama::products" in table


def test_compare_rejects_a_file_that_is_not_a_leaderboard(tmp_path, capsys):
    (tmp_path / "x.json").write_text('{"rows": 3}')
    assert cli_main(["compare", str(tmp_path / "x.json"), str(tmp_path / "x.json")]) == 2
    assert "x.json: not a leaderboard JSON" in capsys.readouterr().err


def hostile_run(tiny_bench_run: Path) -> tuple[list[dict], dict[str, list[dict]]]:
    """The tiny run with hostile text in outputs, explanations and references, and one sample the adapter fixed."""
    run = run_loader.load_run(tiny_bench_run / "results.db")
    for rows in run.samples.values():
        rows[0].update(output=" ".join(XSS), explanation=XSS[1], reference=XSS[2])
    fixed = run.samples["tiny-random-llama+lora-fast::iris"][1]
    fixed["stats"] = {**fixed["stats"], "correct": 1.0}
    run.samples["tiny-random-llama::iris"][1]["stats"]["correct"] = 0.0
    return run.records, run.samples


def test_model_output_is_escaped(tiny_bench_run):
    records, samples = hostile_run(tiny_bench_run)
    page = html_report.render_report(records, samples, "hostile")
    assert "<script>alert(1)" not in page and "<img src=x" not in page and "</td></pre></article>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own filter script


def _old_store(path: Path) -> None:
    """A results.db as the previous slmbench wrote it: the results table only."""
    with sqlite3.connect(path) as db:
        db.execute(store.SCHEMA)
        db.execute("INSERT INTO results VALUES ('old-run', '2026-01-01T00:00:00+00:00', 'm::iris', 'm', 'base', 'iris', "
                   "'test', 3, 'accuracy', 0.5, 0.1, 0.9, 'h', NULL, '1', 'd', '{}', '{}', 'abc')")
        db.execute("INSERT INTO results VALUES ('old-run', '2026-01-01T00:00:00+00:00', 'm::iris', 'm', 'base', 'iris', "
                   "'test', 3, 'tokens_per_sec', 12.5, NULL, NULL, 'h', NULL, '1', 'd', '{}', '{}', 'abc')")


def test_a_store_from_the_previous_version_keeps_working(tmp_path):
    path = tmp_path / "results.db"
    _old_store(path)
    record = {"case_id": "m::iris", "model": "m", "variant": "base", "task": "iris", "split": "test", "n": 1,
              "metrics": {"accuracy": {"value": 1.0, "low": 1.0, "high": 1.0}}, "speed": {"tokens_per_sec": 3.0},
              "provenance": {"created": "2026-02-01T00:00:00+00:00"}, "sample_stats": {"s1": {"correct": 1.0}}}
    store.append_record(path, "new-run", record, [{"case_id": "m::iris", "sample_id": "s1", "stats": {"correct": 1.0}}])
    old = run_loader.load_run(path, "old-run")
    assert old.records[0]["metrics"] == {"accuracy": {"value": 0.5, "low": 0.1, "high": 0.9}}
    assert old.records[0]["speed"]["tokens_per_sec"] == 12.5 and old.samples == {}
    new = run_loader.load_run(path)
    assert new.run_id == "new-run" and new.samples["m::iris"][0]["sample_id"] == "s1"
    assert "m::iris" in html_report.render_report(old.records, old.samples, old.run_id)


def test_two_xdist_workers_write_disjoint_logs_and_one_report(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "SLMBENCH_CACHE": str(tmp_path / "cache"), "SLMBENCH_ADAPTERS": str(tmp_path / "none")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(ROOT / "bench"), "-p", "no:cacheprovider", "-q", "-n", "2", "--dist",
         "loadgroup", "--bench-models", "tiny-random-llama,tiny-random-qwen2", "--bench-tasks", "iris",
         "--bench-limit", "2", "--bench-fewshot", "0", "--bench-classical", "none",
         "--bench-leaderboard", str(out / "lb.md"), "--bench-json", str(out / "lb.json"),
         "--bench-store", str(out / "results.db"), "-k", "json_valid"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode in (0, 1), result.stdout[-3000:]
    logs = sorted(p.name for p in _run_dir(out).glob("*.jsonl"))
    rows = samples_log.read_run(_run_dir(out))
    assert len(logs) == 2 and sorted(rows) == ["tiny-random-llama::iris", "tiny-random-qwen2::iris"]
    workers = {r["provenance"]["worker"] for r in json.loads((out / "lb.json").read_text())["rows"]}
    assert workers == {"gw0", "gw1"}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count('data-sample="iris-test-001"') == 2 and "tiny-random-qwen2" in page


def test_a_killed_run_leaves_no_half_written_log_or_report(tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "SLMBENCH_CACHE": str(tmp_path / "cache"), "SLMBENCH_ADAPTERS": str(tmp_path / "none")}
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(ROOT / "bench"), "-p", "no:cacheprovider", "-q",
         "--bench-models", "tiny-random-llama,tiny-random-qwen2,tiny-random-mistral", "--bench-tasks", "iris",
         "--bench-limit", "3", "--bench-fewshot", "0", "--bench-classical", "none",
         "--bench-leaderboard", str(out / "lb.md"), "--bench-json", str(out / "lb.json"),
         "--bench-store", str(out / "results.db"), "-k", "json_valid"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while not list((out / "results").glob("*/*.jsonl")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    logs = list((out / "results").glob("*/*.jsonl"))
    assert logs, "the run was killed before it wrote any log"
    assert all(len(samples_log.read_log(log)) == 3 for log in logs)
    assert not (out / "report.html").exists() or "</html>" in (out / "report.html").read_text(encoding="utf-8")


def test_a_run_of_a_task_this_process_cannot_find_still_renders():
    record = {"case_id": "m::someone_elses", "model": "m", "variant": "base", "task": "someone_elses", "split": "test",
              "n": 1, "metrics": {"score": {"value": 0.5, "low": 0.0, "high": 1.0}}, "speed": {},
              "provenance": {"created": "2026-02-01T00:00:00+00:00"}, "sample_stats": {"s1": {"score": 0.5}}}
    rows = [{"case_id": "m::someone_elses", "sample_id": "s1", "input": "in", "reference": "ref", "output": "out",
             "stats": {"score": 0.5}, "explanation": "half"}]
    page = html_report.render_report([record], {"m::someone_elses": rows}, "run")
    assert 'id="task-someone_elses"' in page and 'data-sample="s1"' in page


def test_a_word_diff_rebuilds_both_texts_and_shows_a_change_as_deleted_then_inserted():
    import random

    from slmbench.bench.report_samples import word_diff

    assert word_diff("the cat sat", "the dog sat") == [("equal", "the "), ("delete", "cat"), ("insert", "dog"),
                                                       ("equal", " sat")]
    rng = random.Random(0)
    for _ in range(200):
        old = " ".join(rng.choice("a b c d, e.") for _ in range(rng.randrange(0, 30)))
        new = " ".join(rng.choice("a b c x, e.") for _ in range(rng.randrange(0, 30)))
        segments = word_diff(old, new)
        assert "".join(text for kind, text in segments if kind != "insert") == old
        assert "".join(text for kind, text in segments if kind != "delete") == new
