"""Seed variance: `slmbench train --seeds` (training/cli.py) and the across-seed rows (bench/seeds.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from slmbench.bench.leaderboard import render_markdown, to_json
from slmbench.bench.seeds import seed_summaries, t_half_width, variant_family
from slmbench.cli import main as slmbench_main
from slmbench.adapters import adapter_label
from slmbench.tasks import core as task_core

REPO_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
BENCH = Path(__file__).resolve().parents[1] / "bench"


def record(variant: str, accuracy: float, model: str = "m") -> dict:
    return {"case_id": f"{model}+{variant}::iris", "model": model, "variant": variant, "task": "iris",
            "split": "test", "limit": None, "n": 30, "random_weights": False,
            "metrics": {"accuracy": {"value": accuracy, "low": accuracy - 0.1, "high": accuracy + 0.1}},
            "speed": {"tokens_per_sec": 1.0, "eval_seconds": 1.0}, "provenance": {"data_hash": "d"},
            "sample_stats": {}}


def test_variant_family_strips_the_seed():
    assert [variant_family(v) for v in ("lora-fast", "lora-fast-seed2")] == [("lora-fast", 0), ("lora-fast", 2)]
    # a structured row's seeds form their own family, apart from the free rows
    assert [variant_family(v) for v in ("lora-fast+structured", "lora-fast-seed2+structured")] == [
        ("lora-fast+structured", 0), ("lora-fast+structured", 2)]


def test_three_seeds_give_mean_t_interval_and_min_max():
    runs = [record("lora-fast", 0.6), record("lora-fast-seed1", 0.333), record("lora-fast-seed2", 0.5),
            record("base", 0.3), record("lora-quality", 0.9)]
    (summary,) = seed_summaries(runs)
    accuracy = summary["metrics"]["accuracy"]
    half = 4.302653 * np.std([0.6, 0.333, 0.5], ddof=1) / np.sqrt(3)  # t(0.975, 2 df) by hand
    assert (summary["variant"], summary["seeds"]) == ("lora-fast", [0, 1, 2])
    assert accuracy["value"] == pytest.approx(0.47766, abs=1e-5)
    assert (accuracy["high"] - accuracy["value"], accuracy["min"], accuracy["max"]) == (
        pytest.approx(half, rel=1e-5), 0.333, 0.6)


def test_the_board_shows_each_run_and_the_seed_row():
    markdown = render_markdown(to_json([record("lora-fast", 0.6), record("lora-fast-seed1", 0.4)]))
    assert "lora-fast-seed1" in markdown and "lora-fast: 2 seeds" in markdown
    assert "0.500 [" in markdown and "(0.400–0.600)" in markdown


def test_one_seed_has_no_spread_row():
    assert seed_summaries([record("lora-fast", 0.6)]) == [] and t_half_width(np.array([1.0, 1.0])) == 0.0


def test_bad_seeds_are_refused(capsys):
    with pytest.raises(SystemExit):
        slmbench_main(["train", "--model", "tiny-random-llama", "--task", "iris", "--seeds", "0,x"])
    assert "expected whole numbers separated by commas" in capsys.readouterr().err


@pytest.fixture
def small_iris(tmp_path, monkeypatch):
    root = tmp_path / "fixtures" / "iris"
    root.mkdir(parents=True)
    for split, count in (("train", 4), ("val", 2), ("test", 3)):
        lines = (REPO_FIXTURES / "iris" / f"{split}.jsonl").read_text().splitlines()[:count]
        (root / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(task_core, "FIXTURES", root.parent)
    monkeypatch.setenv("SLMBENCH_FIXTURES", str(root.parent))  # for the pytester run
    return root.parent


def test_train_seeds_then_bench_them_as_one_variant(small_iris, tmp_path, monkeypatch, pytester, capsys):
    adapters = tmp_path / "adapters"
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(adapters))
    assert slmbench_main(["train", "--model", "tiny-random-llama", "--task", "iris", "--preset", "fast",
                          "--seeds", "0,1", "--max-steps", "2", "--batch-size", "2", "--fp32"]) == 0
    folders = sorted(p.name for p in (adapters / "tiny-random-llama" / "iris").iterdir())
    seeds = [json.loads((adapters / "tiny-random-llama" / "iris" / f / "training_config.json").read_text())
             ["settings"]["seed"] for f in folders]
    assert (folders, seeds) == (["fast", "fast-seed1"], [0, 1])
    assert adapter_label(adapters / "tiny-random-llama" / "iris" / "fast-seed1") == "lora-fast-seed1"
    board = tmp_path / "lb.json"
    pytester.runpytest(str(BENCH), "-p", "no:cacheprovider", "-k", "test_metric", "--bench-models",
                       "tiny-random-llama", "--bench-tasks", "iris", "--bench-dtype", "float32",
                       "--bench-leaderboard", str(tmp_path / "lb.md"),
                       "--bench-json", str(board), "--bench-store", "none", "--bench-fewshot", "0",
                       "--bench-classical", "none")
    (summary,) = json.loads(board.read_text())["seed_summaries"]
    assert (summary["variant"], summary["seeds"], summary["case_ids"]) == (
        "lora-fast", [0, 1], ["tiny-random-llama+lora-fast::iris", "tiny-random-llama+lora-fast-seed1::iris"])
