"""slmbench/main_job.py (`slmbench main`, what `make main` runs): the plan, the estimates, the output.

The plan and the arithmetic are checked on made-up inputs; the output on tiny random models
trained for one step. Nothing here times anything.
"""

import json
import os
import platform
import re
from pathlib import Path

import pytest
import torch

from slmbench.cli import main as slmbench_main
from slmbench.errors import TrainingConfigError
from slmbench.main_job import (DEFAULT_TOKENS_PER_SEC, DEFAULT_TRAIN, Pair, measured_rates, plan_pairs, run_tokens,
                               seconds_left, tokens_per_sec, train_groups, train_pairs, with_token_counts)
from slmbench.loading import load_model
from slmbench.tasks import TASKS
from slmbench.tasks import core as task_core
from slmbench.training.config import make_config
from slmbench.training.data import build_examples
from slmbench.training.progress import format_duration, pair_seconds_left

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_fixtures(tmp_path, monkeypatch) -> Path:
    """Iris cut to 4 train, 2 val and 2 test examples, for this process and the bench's subprocess."""
    root = tmp_path / "fixtures"
    for split, count in (("train", 4), ("val", 2), ("test", 2)):
        lines = (ROOT / "fixtures" / "iris" / f"{split}.jsonl").read_text().splitlines()[:count]
        (root / "iris").mkdir(parents=True, exist_ok=True)
        (root / "iris" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(task_core, "FIXTURES", root)
    monkeypatch.setenv("SLMBENCH_FIXTURES", str(root))
    return root


def fake_adapter(root: Path, model: str, task: str, preset: str, **record) -> Path:
    """A folder that counts as a finished adapter (the three files), with `record` as its training_config.json."""
    folder = root / model / task / preset
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    (folder / "training_config.json").write_text(json.dumps({"base_model_name": model, "task": task, "preset": preset,
                                                             **record}))
    return folder


# --- the plan

def test_train_groups_read_preset_colon_tasks():
    assert train_groups("fast:iris,products  balanced:iris") == [("fast", ["iris", "products"]), ("balanced", ["iris"])]


@pytest.mark.parametrize("spec, message", [
    ("fast", "--train entry 'fast' is not PRESET:TASKS"),
    (":iris", "--train entry ':iris' is not PRESET:TASKS"),
    ("fast:iris,,products", "has an empty name"),
])
def test_a_malformed_train_spec_is_an_error_naming_the_entry(spec, message):
    with pytest.raises(TrainingConfigError, match=message):
        train_groups(spec)


def test_an_empty_train_spec_trains_nothing():
    assert plan_pairs(["tiny-random-llama"], train_groups(""), None) == []


def test_the_plan_skips_pairs_with_any_adapter_and_pairs_an_earlier_group_trains(tmp_path):
    existing = fake_adapter(tmp_path, "tiny-random-llama", "iris", "quality")
    pairs = plan_pairs(["tiny-random-llama", "tiny-random-qwen2"],
                       [("fast", ["iris", "products"]), ("balanced", ["iris"])], str(tmp_path))
    assert [(p.label, p.config.preset, p.skipped) for p in pairs] == [
        ("tiny-random-llama × iris", "fast", f"already has {existing}"),
        ("tiny-random-llama × products", "fast", None),
        ("tiny-random-qwen2 × iris", "fast", None),
        ("tiny-random-qwen2 × products", "fast", None),
        ("tiny-random-llama × iris", "balanced", f"already has {existing}"),
        ("tiny-random-qwen2 × iris", "balanced", "trained by this job with fast"),
    ]


def test_the_makefile_trains_what_slmbench_main_trains_by_default():
    assert f"TRAIN ?= {DEFAULT_TRAIN}\n" in (ROOT / "Makefile").read_text()


# --- the estimate

@pytest.mark.parametrize("max_steps, expected", [(-1, 3000), (2, 667), (6, 2000), (12, 3000)])
def test_a_run_goes_through_its_epochs_tokens_unless_max_steps_stops_it(max_steps, expected):
    config = make_config("tiny-random-llama", "iris", "fast", epochs=3, batch_size=4, max_steps=max_steps)
    assert run_tokens(1000, examples=10, config=config) == expected  # 3 steps an epoch


def test_train_tokens_are_counted_as_training_tokenizes_them_without_building_weights(small_fixtures, monkeypatch):
    loaded = load_model("tiny-random-qwen2", dtype="float32")  # a chat template: prompts are rendered as in training
    expected = 2 * build_examples(loaded, TASKS["iris"], "train", 512).tokens
    monkeypatch.setattr("slmbench.loading.build_tiny_model", lambda *a, **k: pytest.fail("built the model"))
    [pair] = with_token_counts([Pair(make_config("tiny-random-qwen2", "iris", "fast", epochs=2))])
    assert pair.tokens == expected


MEASURED = {"fast-model": (20_000, 100.0), "slow-model": (5_000, 100.0)}  # 200 and 50 tokens/s


@pytest.mark.parametrize("model, measured, expected", [
    ("fast-model", MEASURED, (200.0, "measured here")),
    ("new-model", MEASURED, (50.0, "the slowest model measured here")),
    ("new-model", {}, (DEFAULT_TOKENS_PER_SEC, "a guess until a pair is measured")),
])
def test_a_model_is_estimated_at_its_own_rate_else_the_slowest_else_a_guess(model, measured, expected):
    assert tokens_per_sec(model, measured) == expected


def test_seconds_left_adds_each_pairs_tokens_over_its_rate():
    work = [("fast-model", 4_000), ("slow-model", 1_000), ("new-model", 500)]
    assert seconds_left(work, MEASURED) == pytest.approx(4_000 / 200 + 1_000 / 50 + 500 / 50)


def test_rates_are_whole_runs_tokens_over_wall_seconds_on_this_machine(tmp_path):
    fake_adapter(tmp_path, "tiny-random-llama", "iris", "fast", train_tokens=3000, wall_seconds=10.0,
                 host=platform.node())
    fake_adapter(tmp_path, "tiny-random-llama", "products", "fast", train_tokens=1000, wall_seconds=10.0)  # no host
    fake_adapter(tmp_path, "tiny-random-llama", "bioqa", "fast", train_tokens=9000, wall_seconds=1.0, host="elsewhere")
    fake_adapter(tmp_path, "tiny-random-qwen2", "iris", "fast")  # not trained by `train`: no rate
    assert measured_rates(str(tmp_path)) == {"tiny-random-llama": (4000, 20.0)}


@pytest.mark.parametrize("steps_done, seconds, expected", [(0, 30.0, 70.0), (0, 150.0, 0.0), (2, 30.0, 120.0)])
def test_a_pair_has_its_estimate_left_until_a_step_then_its_own_pace(steps_done, seconds, expected):
    assert pair_seconds_left(steps_done, 10, seconds, estimate=100.0) == expected


@pytest.mark.parametrize("seconds, text", [(44.6, "45s"), (200, "3m20s"), (3900, "1h05m")])
def test_durations_read_short(seconds, text):
    assert format_duration(seconds) == text


# --- the output

def test_without_a_terminal_each_finished_pair_is_one_line_and_there_is_no_bar(small_fixtures, tmp_path, capsys):
    configs = [make_config(model, "iris", "fast", max_steps=1) for model in ("tiny-random-llama", "tiny-random-qwen2")]
    train_pairs(with_token_counts([Pair(config) for config in configs]), str(tmp_path))
    out, err = capsys.readouterr()
    pattern = (r"2 pairs to train, ~\S+ \(tiny-random-llama at \d+ train tok/s, a guess until a pair is measured; "
               r"tiny-random-qwen2 at \d+ train tok/s, a guess until a pair is measured\)\n"
               r"pair 1/2 tiny-random-llama × iris \(fast\): \S+, \d+ train tok/s, best val loss \d+\.\d{4} \(epoch \S+\); "
               r"training left ~\S+\n"
               r"pair 2/2 tiny-random-qwen2 × iris \(fast\): .*; training left ~0s\n"
               r"trained 2 pairs in \S+; now the bench\n")
    assert re.fullmatch(pattern, out) and "pair 1/2" not in err, out + err


def test_slmbench_main_trains_then_benches_with_a_line_per_case(small_fixtures, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    code = slmbench_main(["main", "--model", "tiny-random-llama", "--train", "fast:iris", "--max-steps", "1",
                          "--out", str(tmp_path / "adapters"), "--", "--pyargs", "slmbench.bench", "-q", "-p",
                          "no:cacheprovider", "--bench-models", "tiny-random-llama", "--bench-tasks", "iris",
                          "--bench-fewshot", "0", "--bench-classical", "none", "--bench-report", "none"])
    lines = capfd.readouterr().out.splitlines()
    cases = [line.split(" ")[:4] for line in lines if line.startswith("bench case ")]
    assert (code, cases) == (1, [["bench", "case", "1/2", "tiny-random-llama::iris"],
                                 ["bench", "case", "2/2", "tiny-random-llama+lora-fast::iris"]]), lines
