"""training/: config checks, examples and masking, the loss, the recipe end to end, merging, the CLI.

Tiny random models keep this fast; one test trains the real SmolLM2 for a few steps.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import load_file
from transformers.cache_utils import Cache

from slmbench.tasks import core as task_core
from slmbench.cli import main as slmbench_main
from slmbench.errors import TrainingConfigError
from slmbench.generation import DecodingConfig, generate
from slmbench.loading import load_model
from slmbench.registry import MODELS, model_status
from slmbench.tasks import TASKS
from slmbench.training.cli import main as training_main
from slmbench.training.config import TARGET_MODULES, accumulation, make_config, target_modules_for, with_target_modules
from slmbench.training.compiled import decoder_layers
from slmbench.training.data import IGNORE, PadCollator, StepSampler, build_examples, encode_example
from slmbench.training.loss import causal_lm_loss
from slmbench.adapters import finished_adapters
from slmbench.training.lora import train, wrap_with_lora
from slmbench.training.merge import merge_adapter
from slmbench.training.progress import PairStatus

REPO_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY = ["tiny-random-llama", "tiny-random-qwen2", "tiny-random-mistral", "tiny-random-phi3", "tiny-random-gemma3"]
LLAMA_LIKE = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
PHI3 = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}
DECODING = DecodingConfig(max_new_tokens=24)


def write_small_iris(root: Path, train: int = 4, val: int = 2) -> Path:
    """A fixtures folder whose iris task has only the first few samples of each split."""
    for split, count in (("train", train), ("val", val)):
        lines = (REPO_FIXTURES / "iris" / f"{split}.jsonl").read_text().splitlines()[:count]
        (root / "iris").mkdir(parents=True, exist_ok=True)
        (root / "iris" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return root


def greedy_texts(loaded, prompts):
    return [c.text for c in generate(loaded, prompts, DECODING, progress=False).completions]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: tiny models gain nothing from more, and on a CPU shared with other runs
    two OpenMP threads stall each other (measured 8x slower training here under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def small_iris(tmp_path_factory):
    """slmbench.tasks.core.FIXTURES pointed at a 4-train / 2-val iris for the whole module's trainings."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task_core, "FIXTURES", write_small_iris(tmp_path_factory.mktemp("fixtures")))
        yield TASKS["iris"]


def trained_config():
    return make_config("tiny-random-qwen2", "iris", "fast", epochs=20, batch_size=4, micro_batch_size=2, lr=1e-2,
                       bf16=False)


@pytest.fixture(scope="module")
def trained(small_iris, tmp_path_factory):
    """One short, fast-learning run on a chat-template tiny model (float32 for exact comparisons).

    Batches of 4 in passes of 2: every end-to-end check below also covers gradient accumulation.
    """
    return train(trained_config(), out_root=tmp_path_factory.mktemp("adapters"))


# --- config: checked before any model is loaded

@pytest.mark.parametrize("preset, overrides, message", [
    ("turbo", {}, "unknown preset 'turbo'; choose one of fast, balanced, quality"),
    ("fast", {"lora_r": 0}, "lora_r must be a positive number, got 0"),
    ("fast", {"lr": -1e-4}, "lr must be a positive number"),
    ("fast", {"epochs": 0}, "epochs must be a positive number"),
    ("fast", {"warmup": 10}, "unknown training setting 'warmup'"),
    ("fast", {"lora_dropout": 1.0}, r"lora_dropout must be in \[0, 1\)"),
    ("fast", {"micro_batch_size": 0}, "micro_batch_size must be a positive number, got 0"),
    ("fast", {"attn_implementation": "flash"}, "attn_implementation must be one of eager, sdpa, got 'flash'"),
])
def test_bad_settings_fail_before_loading(monkeypatch, tmp_path, preset, overrides, message):
    monkeypatch.setattr("slmbench.training.lora.load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    with pytest.raises(TrainingConfigError, match=message):
        train(make_config("tiny-random-llama", "iris", preset, **overrides), out_root=tmp_path)


def test_unknown_task_names_the_known_ones():
    with pytest.raises(TrainingConfigError, match="unknown task 'nope'; choose one of it_entities, .*iris"):
        make_config("tiny-random-llama", "nope", "fast")


def test_task_without_a_train_split(monkeypatch, tmp_path):
    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "val.jsonl").write_text((REPO_FIXTURES / "iris" / "val.jsonl").read_text())
    monkeypatch.setattr(task_core, "FIXTURES", tmp_path)
    with pytest.raises(TrainingConfigError, match=r"task 'iris' has no train split to train on: .*iris/train.jsonl"):
        make_config("tiny-random-llama", "iris", "fast")


def test_presets_set_alpha_to_twice_r_unless_given():
    configs = [make_config("tiny-random-llama", "iris", "quality"),
               make_config("tiny-random-llama", "iris", "fast", lora_r=6),
               make_config("tiny-random-llama", "iris", "fast", lora_alpha=3)]
    assert [(c.lora_r, c.lora_alpha) for c in configs] == [(16, 32), (6, 12), (4, 3)]


@pytest.mark.parametrize("batch_size, micro_batch_size, expected", [
    (16, 4, (4, 4)), (8, 4, (4, 2)), (4, 4, (4, 1)), (2, 4, (2, 1)), (6, 4, (3, 2)), (7, 4, (1, 7)),
])
def test_micro_batches_add_up_to_the_batch(batch_size, micro_batch_size, expected):
    config = make_config("tiny-random-llama", "iris", "fast", batch_size=batch_size, micro_batch_size=micro_batch_size)
    assert accumulation(config) == expected


@pytest.mark.parametrize("batch_size, micro_batch_size, processes, expected", [
    (8, 2, 2, (2, 2)), (8, 4, 2, (4, 1)), (6, 4, 3, (2, 1)), (16, 4, 4, (4, 1)),
])
def test_the_batch_is_shared_out_over_processes_before_passes(batch_size, micro_batch_size, processes, expected):
    config = make_config("tiny-random-llama", "iris", "fast", batch_size=batch_size, micro_batch_size=micro_batch_size)
    assert accumulation(config, processes) == expected


def test_a_batch_the_processes_cannot_share_is_an_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")  # as torchrun --nproc_per_node 3 sets it
    with pytest.raises(TrainingConfigError, match="batch_size 8 does not split over 3 processes; choose a multiple of 3"):
        make_config("tiny-random-llama", "iris", "balanced")


def test_an_epoch_is_every_example_once_then_filler_to_whole_passes_of_every_process():
    order = list(StepSampler([3, 9, 4, 4, 7, 1, 2, 8, 5, 6], step_size=8, fill_to=4))
    assert (sorted(order[:10]), order[10:]) == (list(range(10)), [10, 10])


# --- target modules per architecture

def lora_layers(model) -> set[str]:
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}


@pytest.mark.parametrize("name", TINY)
def test_default_targets_cover_every_linear_layer_of_the_architecture(name):
    loaded = load_model(name, dtype="float32")
    expected = PHI3 if name == "tiny-random-phi3" else LLAMA_LIKE
    config = with_target_modules(make_config(name, "iris", "fast"), loaded.model.config.model_type)
    assert lora_layers(wrap_with_lora(loaded, config)) == expected


def test_target_modules_override():
    loaded = load_model("tiny-random-llama", dtype="float32")
    config = make_config("tiny-random-llama", "iris", "fast", target_modules="q_proj, v_proj")
    assert lora_layers(wrap_with_lora(loaded, config)) == {"q_proj", "v_proj"}


def test_unknown_architecture_asks_for_target_modules():
    with pytest.raises(TrainingConfigError, match="no default LoRA target modules for architecture 'bert'.*--target"):
        target_modules_for("bert")


def test_target_modules_missing_from_the_model():
    loaded = load_model("tiny-random-llama", dtype="float32")
    config = make_config("tiny-random-llama", "iris", "fast", target_modules="qkv_proj")
    with pytest.raises(TrainingConfigError, match="tiny-random-llama: LoRA target modules qkv_proj do not fit"):
        wrap_with_lora(loaded, config)


def test_every_registered_default_is_a_llama_or_phi3_layout():
    assert {frozenset(v) for v in TARGET_MODULES.values()} == {frozenset(LLAMA_LIKE), frozenset(PHI3)}


# --- examples: masking and truncation

def test_prompt_tokens_are_masked_and_completion_ends_with_eos():
    loaded = load_model("tiny-random-qwen2", dtype="float32")
    task = TASKS["iris"]
    sample = task.samples("train")[0]
    example, cut = encode_example(loaded, task.prompt(sample), task.completion(sample), 512)
    prompt_ids = loaded.tokenizer(loaded.render(task.prompt(sample)), add_special_tokens=False)["input_ids"]
    completion_ids = loaded.tokenizer(task.completion(sample), add_special_tokens=False)["input_ids"]
    expected = [IGNORE] * len(prompt_ids) + completion_ids + [loaded.tokenizer.eos_token_id]
    assert (example["labels"], cut) == (expected, False)


def test_long_completions_are_cut_counted_and_kept():
    loaded = load_model("tiny-random-llama", dtype="float32")
    iris = TASKS["iris"]
    longest_prompt = max(len(loaded.tokenizer(iris.prompt(s))["input_ids"]) for s in iris.samples("val"))
    examples = build_examples(loaded, TASKS["iris"], "val", max_seq_len=longest_prompt + 5)
    assert (len(examples.examples), len(examples.truncated), max(len(e["input_ids"]) for e in examples.examples)) == (
        30, 30, longest_prompt + 5)


def test_a_prompt_longer_than_max_seq_len_is_an_error_naming_the_sample():
    loaded = load_model("tiny-random-llama", dtype="float32")
    with pytest.raises(TrainingConfigError, match="iris train sample iris-train-001: the prompt alone is .* is 32"):
        build_examples(loaded, TASKS["iris"], "train", max_seq_len=32)


# --- the loss

@pytest.mark.parametrize("name", TINY)
def test_completion_only_loss_equals_full_logits_loss(name):
    loaded = load_model(name, dtype="float32")
    model = get_peft_model(loaded.model, LoraConfig(r=4, target_modules=["o_proj"], init_lora_weights=False))
    task = TASKS["products"]  # completions of different lengths: uneven padding
    examples = build_examples(loaded, task, "val", 512).examples[:3]
    batch = PadCollator(loaded.tokenizer.pad_token_id)(examples)
    with torch.no_grad():
        losses = causal_lm_loss(model, batch, completion_only=True), causal_lm_loss(model, batch, completion_only=False)
    torch.testing.assert_close(*losses, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("completion_only", [True, False])
def test_the_training_forward_builds_no_kv_cache(name, completion_only):
    """Both models' configs say use_cache=True: a training forward that followed it would hand every decoder
    layer a KV cache, whose per-layer state made Dynamo recompile each compiled layer until its limit of 8,
    so the later layers of the offline models trained eager."""
    loaded = load_model(name, dtype="float32")
    assert loaded.model.config.use_cache
    model = get_peft_model(loaded.model, LoraConfig(r=4, target_modules=["o_proj"]))
    seen = []
    hooks = [layer.register_forward_pre_hook(lambda module, args, kwargs: seen.append([*args, *kwargs.values()]),
                                             with_kwargs=True) for layer in decoder_layers(model)]
    batch = PadCollator(loaded.tokenizer.pad_token_id)(build_examples(loaded, TASKS["products"], "val", 512).examples[:2])
    causal_lm_loss(model, batch, completion_only=completion_only).backward()
    for hook in hooks:
        hook.remove()
    assert len(seen) == loaded.model.config.num_hidden_layers
    assert not any(isinstance(value, Cache) for values in seen for value in values)


# --- the recipe end to end

def test_loss_falls(trained):
    history = json.loads((trained.adapter_dir / "loss_history.json").read_text())
    first, last = history["train"][0]["loss"], history["train"][-1]["loss"]
    assert last < 0.5 * first, f"train loss {first:.3f} -> {last:.3f}"


def test_adapter_folder_holds_adapter_provenance_and_plot(trained):
    record = json.loads((trained.adapter_dir / "training_config.json").read_text())
    names = {p.name for p in trained.adapter_dir.iterdir()}
    assert ({"adapter_model.safetensors", "adapter_config.json", "loss_history.json", "loss.png"} <= names
            and record["preset"] == "fast" and record["base_weights_hash"] == trained.loaded.weights_hash
            and len(record["train_data_sha256"]) == len(record["val_data_sha256"]) == 64
            and set(record["library_versions"]) >= {"torch", "transformers", "peft"}
            and record["best_epoch"] is not None
            and trained.adapter_dir.parts[-3:] == ("tiny-random-qwen2", "iris", "fast")), record


def test_nothing_but_the_adapter_is_left_beside_it(trained):
    assert [p.name for p in trained.adapter_dir.parent.iterdir()] == ["fast"]


def test_trained_model_is_handed_back_without_accelerate_wrappers(trained):
    """A leftover autocast wrapper or 'prepared' mark would change or skip a later run's precision."""
    assert not {"_original_forward", "_is_accelerate_prepared"} & set(vars(trained.loaded.model))


def test_saved_adapter_reproduces_the_trained_model(trained, small_iris):
    prompts = [small_iris.prompt(s) for s in small_iris.samples("val")]
    reloaded = load_model("tiny-random-qwen2", dtype="float32", adapter=trained.adapter_dir)
    expected = greedy_texts(trained.loaded, prompts)
    assert (greedy_texts(reloaded, prompts), reloaded.label) == (expected, "tiny-random-qwen2+lora-fast")


def test_merged_model_matches_base_plus_adapter(trained, small_iris, tmp_path):
    prompts = [small_iris.prompt(s) for s in small_iris.samples("val")]
    merged = load_model(str(merge_adapter(trained.adapter_dir, tmp_path / "merged")), dtype="float32")
    adapted = load_model("tiny-random-qwen2", dtype="float32", adapter=trained.adapter_dir)
    assert greedy_texts(merged, prompts) == greedy_texts(adapted, prompts)


def test_merge_never_overwrites_a_folder_it_did_not_write(trained, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(TrainingConfigError, match="exists and is not a merged model"):
        merge_adapter(trained.adapter_dir, tmp_path)


def test_rerun_reuses_the_adapter_without_training(trained, monkeypatch):
    monkeypatch.setattr("slmbench.training.lora.Trainer.train", lambda *a, **k: pytest.fail("trained again"))
    again = train(trained_config(), out_root=trained.adapter_dir.parents[2])
    assert (again.reused, again.adapter_dir, again.best_val_loss) == (True, trained.adapter_dir, trained.best_val_loss)


def test_the_trained_model_is_handed_back_on_the_attention_kernel_it_was_loaded_with(trained):
    """Training runs on TrainConfig.attn_implementation; evaluation after it uses the loading default."""
    fresh = load_model("tiny-random-qwen2", dtype="float32")
    assert trained_config().attn_implementation != fresh.model.config._attn_implementation
    assert trained.loaded.model.get_base_model().config._attn_implementation == fresh.model.config._attn_implementation


def test_the_best_epoch_is_the_one_kept(small_iris, monkeypatch, tmp_path):
    """Val losses forced to 3, 1, 2: the adapter saved must be the one of epoch 2."""
    forced_val_losses, real_loss, snapshots = iter([3.0, 1.0, 2.0]), causal_lm_loss, []

    def loss(model, batch, completion_only=True, num_items=None):
        value = real_loss(model, batch, completion_only, num_items)
        return value if model.training else torch.tensor(next(forced_val_losses))

    def snapshot(self, args, state, control, model=None, **kwargs):
        snapshots.append({k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()})

    monkeypatch.setattr("slmbench.training.lora.causal_lm_loss", loss)
    monkeypatch.setattr("slmbench.training.lora.TrainProgress.on_epoch_end", snapshot, raising=False)
    result = train(make_config("tiny-random-llama", "iris", "fast", epochs=3, batch_size=4, lr=1e-2), out_root=tmp_path)
    saved = load_file(result.adapter_dir / "adapter_model.safetensors")
    matches = [all(torch.equal(saved[k], weights[k]) for k in saved) for weights in snapshots]
    assert (matches, result.best_epoch, result.best_val_loss) == ([False, True, False], 2.0, 1.0)


def test_other_settings_replace_the_adapter(small_iris, tmp_path):
    first = train(make_config("tiny-random-llama", "iris", "fast", max_steps=1), out_root=tmp_path)
    second = train(make_config("tiny-random-llama", "iris", "fast", max_steps=2), out_root=tmp_path)
    record = json.loads((second.adapter_dir / "training_config.json").read_text())
    assert (second.reused, second.adapter_dir == first.adapter_dir, record["steps"],
            [p.name for p in second.adapter_dir.parent.iterdir()]) == (False, True, 2, ["fast"])


def test_each_optimizer_step_accumulates_micro_batches(small_iris, monkeypatch, tmp_path):
    passes = []

    def recording_loss(model, batch, completion_only=True, num_items=None):
        if model.training:
            passes.append(batch["input_ids"].shape[0])
        return causal_lm_loss(model, batch, completion_only, num_items)

    monkeypatch.setattr("slmbench.training.lora.causal_lm_loss", recording_loss)
    result = train(make_config("tiny-random-llama", "iris", "fast", epochs=1, batch_size=4, micro_batch_size=2),
                   out_root=tmp_path)
    record = json.loads((result.adapter_dir / "training_config.json").read_text())
    assert (passes, record["steps"], record["settings"]["micro_batch_size"]) == ([2, 2], 1, 2)


def test_interrupted_training_leaves_no_folder_behind(small_iris, monkeypatch, tmp_path):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("slmbench.training.lora.causal_lm_loss", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(make_config("tiny-random-llama", "iris", "fast", max_steps=2), out_root=tmp_path)
    assert list((tmp_path / "tiny-random-llama" / "iris").iterdir()) == []


def test_bf16_autocast_training_runs_and_learns(small_iris, tmp_path):
    config = make_config("tiny-random-gemma3", "iris", "fast", epochs=6, batch_size=4, lr=1e-2)  # bf16 by default
    result = train(config, out_root=tmp_path)
    history = json.loads((result.adapter_dir / "loss_history.json").read_text())
    assert history["train"][-1]["loss"] < history["train"][0]["loss"] and result.train_tokens_per_sec > 0, history


def test_a_pairs_bar_names_it_and_shows_the_jobs_training_time_left(small_iris, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("slmbench.training.progress.quiet_output", lambda: False)  # as in a terminal
    pair = PairStatus(index=2, total=5, label="tiny-random-llama × iris", estimate=10.0, later=3600.0)
    train(make_config("tiny-random-llama", "iris", "fast", max_steps=2), out_root=tmp_path, pair=pair)
    bar = capsys.readouterr().err
    assert "pair 2/5 tiny-random-llama × iris" in bar and "job_left=1h00m" in bar, bar


# --- command line

def test_cli_reports_errors_for_people(capsys):
    code = training_main(["--model", "tiny-random-llama", "--task", "iris", "--preset", "fast", "--lr", "0"])
    assert (code, capsys.readouterr().err) == (2, "slmbench: error: lr must be a positive number, got 0.0\n")


def test_cli_trains_what_is_missing_for_every_pair_then_reuses_it(small_iris, tmp_path, capsys, monkeypatch):
    """Several models x tasks; the second call reuses, and `--skip-trained` (make main) skips any preset."""
    argv = ["--model", "tiny-random-llama,tiny-random-qwen2", "--task", "iris", "--preset", "fast",
            "--max-steps", "1", "--out", str(tmp_path)]
    assert training_main(argv) == 0
    first = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(tmp_path))]
    assert [line.split(":")[0] for line in first] == [str(tmp_path / m / "iris" / "fast")
                                                      for m in ("tiny-random-llama", "tiny-random-qwen2")]
    assert all(": trained (new adapter);" in line for line in first), first
    monkeypatch.setattr("slmbench.training.lora.Trainer.train", lambda *a, **k: pytest.fail("trained again"))
    assert training_main(argv) == 0
    again = [line for line in capsys.readouterr().out.splitlines() if line.startswith(str(tmp_path))]
    assert len(again) == 2 and all(": reused" in line for line in again), again
    monkeypatch.setattr("slmbench.training.lora.load_model", lambda *a, **k: pytest.fail("loaded a model"))
    assert training_main(["--model", "tiny-random-llama,tiny-random-qwen2", "--task", "iris", "--preset", "quality",
                          "--skip-trained", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{m} on iris: skipped, already has {tmp_path / m / 'iris' / 'fast'}" for m in ("tiny-random-llama", "tiny-random-qwen2")]


@pytest.mark.parametrize("flags, message", [
    (["--task", "iris,nope"], "unknown task 'nope'"),
    (["--task", "iris,,bioqa"], "--task 'iris,,bioqa' has an empty name"),
    (["--task", "all", "--lora-r", "0"], "lora_r must be a positive number, got 0"),
])
def test_cli_checks_every_pair_before_loading_a_model(flags, message, capsys, monkeypatch):
    monkeypatch.setattr("slmbench.training.lora.load_model", lambda *a, **k: pytest.fail("loaded a model"))
    assert training_main(["--model", "tiny-random-llama,tiny-random-qwen2", *flags]) == 2
    assert message in capsys.readouterr().err


def test_adapters_command_lists_what_was_trained(trained, tmp_path, capsys):
    assert slmbench_main(["adapters", "--out", str(trained.adapter_dir.parents[2])]) == 0
    rows = [line.split("|")[1:4] for line in capsys.readouterr().out.splitlines()[2:]]
    assert [[cell.strip() for cell in row] for row in rows] == [["tiny-random-qwen2", "iris", "fast"]]
    assert slmbench_main(["adapters", "--out", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith(f"no adapters under {tmp_path}")


def test_a_staging_folder_is_never_taken_for_an_adapter(trained, tmp_path):
    """A run killed between writing its staging folder and renaming it leaves a complete-looking `.fast.partial`."""
    staging = tmp_path / "tiny-random-qwen2" / "iris" / ".fast.partial"
    shutil.copytree(trained.adapter_dir, staging)
    assert (finished_adapters(tmp_path), finished_adapters(trained.adapter_dir.parents[2])) == ([], [trained.adapter_dir])


def test_sigterm_leaves_no_folder_behind(tmp_path):
    """`kill` on a training run cleans up as Ctrl-C does (a killed CI job must not leave a half adapter)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "slmbench.training", "--model", "tiny-random-llama", "--task", "iris", "--preset", "fast",
               "--epochs", "1000", "--out", str(tmp_path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    pair = tmp_path / "tiny-random-llama" / "iris"
    deadline = time.monotonic() + 120
    while not (pair / ".fast.partial" / "checkpoints").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert list(pair.iterdir()) == []


# --- a real model

@pytest.mark.real_model
def test_smollm2_trains_a_few_steps_and_writes_a_loadable_adapter(small_iris, tmp_path):
    if model_status(MODELS["smollm2-135m-instruct"]) != "ready":
        pytest.skip("smollm2-135m-instruct is not installed: run `make setup`")
    config = make_config("smollm2-135m-instruct", "iris", "fast", max_steps=3, batch_size=2)
    result = train(config, out_root=tmp_path)
    adapted = load_model("smollm2-135m-instruct", adapter=result.adapter_dir)
    assert adapted.label == "smollm2-135m-instruct+lora-fast" and result.best_val_loss < 10, result
