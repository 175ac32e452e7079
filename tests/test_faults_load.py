"""Fault injection on loading, the generation cache, adapters, training and the CLI (issue 16).

Each test plays a hostile user or a broken machine on tiny random models in temporary folders and
checks the exit status, that the message names the file or option, that no traceback escapes, and
what was kept (cache entries, adapters byte-identical).
"""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from slmbench.adapters import find_adapters
from slmbench.cache import GenerationCache, generation_key
from slmbench.cli import main as slmbench_main
from slmbench.console import INTERRUPTED_MESSAGE
from slmbench.errors import AdapterError, SlmbenchWarning
from slmbench.generation import DecodingConfig, generate
from slmbench.loading import load_model
from slmbench.tasks import core as task_core
from slmbench.tiny import build_tiny_model
from slmbench.training.cli import main as training_main
from slmbench.training.config import make_config
from slmbench.training.lora import train

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
FIXTURES = ROOT / "fixtures"
PROMPTS = ["one", "two two", "three three three"]
DECODING = DecodingConfig(max_new_tokens=6)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models gain nothing from more threads; on a shared CPU two threads stall each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def small_iris(tmp_path_factory):
    """The fixtures, with iris cut to 4 train and 2 val samples so each training below takes seconds."""
    root = shutil.copytree(FIXTURES, tmp_path_factory.mktemp("fixtures") / "fixtures")
    for split, count in (("train", 4), ("val", 2)):
        lines = (FIXTURES / "iris" / f"{split}.jsonl").read_text().splitlines()[:count]
        (root / "iris" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(task_core, "FIXTURES", root)
        yield root


@pytest.fixture(scope="module")
def trained(small_iris, tmp_path_factory):
    """A one-step adapter of tiny-random-llama on iris, as `slmbench train` writes it."""
    root = tmp_path_factory.mktemp("adapters")
    result = train(make_config("tiny-random-llama", "iris", "fast", max_steps=1), out_root=root)
    return result.adapter_dir


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny model saved as a checkpoint directory (weights, config, tokenizer, generation config)."""
    directory = tmp_path_factory.mktemp("models") / "tiny-llama-dir"
    model, tokenizer = build_tiny_model("llama", chat=False)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder with its bytes: compare before and after to prove nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_adapter(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = slmbench_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_refuses_a_prompt_longer_than_the_context_instead_of_printing_an_empty_line(capsys):
    code, out, err = cli(capsys, "generate", "--model", "tiny-random-llama", "--no-cache",
                         "--prompt", "hi", "--prompt", "x" * 5000, "--max-new-tokens", "4")
    assert (code, out) == (2, "")
    assert "--prompt 2: not generated: prompt is" in err and "context 1024" in err and "Traceback" not in err


# --- data loss 4: the generation cache degrades, never aborts, never loses finished work

def test_cache_entry_that_is_a_directory_is_replaced_not_fatal(tmp_path):
    loaded = load_model("tiny-random-llama", dtype="float32")
    cache = GenerationCache(tmp_path / "generations")
    first = generate(loaded, PROMPTS, DECODING, cache=cache)
    entry = cache._path(generation_key(loaded, loaded.render(PROMPTS[0]), DECODING))
    entry.unlink()
    (entry / "junk").mkdir(parents=True)
    for _ in range(2):  # before the fix every later run failed the same way
        again = generate(loaded, PROMPTS, DECODING, cache=cache)
        assert [c.text for c in again.completions] == [c.text for c in first.completions]
    assert entry.is_file() and again.cache_hits == len(PROMPTS)


@pytest.fixture
def mounted_tmpfs(tmp_path):
    """A small tmpfs we can fill or make read-only: real ENOSPC / EROFS, not a mock (needs root)."""
    mount_point = tmp_path / "tmpfs"
    mount_point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(folder: Path) -> None:
    """Write zeros until the filesystem says ENOSPC."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


@pytest.mark.parametrize("fault", ["full disk", "read-only"])
def test_unwritable_cache_warns_once_keeps_outputs_and_entries(mounted_tmpfs, fault):
    loaded = load_model("tiny-random-llama", dtype="float32")
    expected = [c.text for c in generate(loaded, PROMPTS, DECODING).completions]
    cache = GenerationCache(mounted_tmpfs / "generations")
    generate(loaded, PROMPTS[:1], DECODING, batch_size=1, cache=cache)  # one finished entry before the fault
    kept = snapshot(cache.root)
    if fault == "full disk":
        fill(mounted_tmpfs)
    else:
        subprocess.run(["mount", "-o", "remount,ro", str(mounted_tmpfs)], check=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run = generate(loaded, PROMPTS, DECODING, batch_size=1, cache=cache)
    ours = [w for w in caught if issubclass(w.category, SlmbenchWarning)]
    assert [c.text for c in run.completions] == expected and run.cache_hits == 1
    assert len(ours) == 1 and str(cache.root) in str(ours[0].message), [str(w.message) for w in caught]
    assert snapshot(cache.root) == kept


def test_cache_root_that_is_a_file_still_generates(tmp_path, monkeypatch, capsys, model_dir):
    not_a_folder = tmp_path / "cache-file"
    not_a_folder.write_text("I am a file")
    monkeypatch.setenv("SLMBENCH_CACHE", str(not_a_folder))
    code, out, err = cli(capsys, "generate", "--model", str(model_dir), "--prompt", "hi", "--max-new-tokens", "4")
    assert code == 0 and "Traceback" not in err, err
    assert "slmbench: warning: generation cache" in err and str(not_a_folder) in err
    assert not_a_folder.read_text() == "I am a file"


# --- data loss 5: retraining a preset with other settings says what it replaces

def test_retraining_with_other_settings_says_what_it_replaces(small_iris, tmp_path, capsys, caplog):
    common = ["--model", "tiny-random-llama", "--task", "iris", "--preset", "fast", "--out", str(tmp_path)]
    assert training_main([*common, "--max-steps", "1"]) == 0
    first = capsys.readouterr().out
    caplog.clear()
    assert training_main([*common, "--max-steps", "2"]) == 0
    second = capsys.readouterr().out
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert "trained (new adapter)" in first, first
    assert "trained, replacing the earlier adapter (settings changed: max_steps 1 -> 2)" in second, second
    assert any("is replaced when this run finishes" in m and "max_steps 1 -> 2" in m for m in warned), warned


# --- data loss 6: the base identity does not depend on the load dtype

def test_fresh_tiny_adapter_loads_at_the_default_dtype(trained):
    loaded = load_model("tiny-random-llama", adapter=trained)  # bfloat16; training ran in float32
    assert loaded.dtype == "bfloat16" and loaded.adapter_dir == trained
    assert load_model("tiny-random-llama", dtype="float32").weights_hash == loaded.weights_hash


def bench_run(pytester, adapters_root: Path, *extra):
    os.environ["SLMBENCH_ADAPTERS"] = str(adapters_root)  # pytester restores os.environ afterwards
    out = pytester.path
    return pytester.runpytest(
        str(BENCH), "-p", "no:cacheprovider", "--bench-models", "tiny-random-llama", "--bench-tasks", "iris",
        "--bench-split", "val", "--bench-limit", "2", "--bench-leaderboard", str(out / "lb.md"),
        "--bench-fewshot", "0", "--bench-classical", "none",  # only the rows these tests are about (iris is cut to 4)
        "--bench-json", str(out / "lb.json"), "--bench-store", str(out / "results.db"), *extra)


def test_bench_runs_the_auto_adapter_case_at_the_default_dtype(trained, pytester, monkeypatch):
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(trained.parents[2]))
    result = bench_run(pytester, trained.parents[2], "-k", "json_valid")
    assert result.parseoutcomes().get("errors", 0) == 0, result.stdout.str()
    assert "tiny-random-llama+lora-fast::iris" in result.stdout.str()


# --- data loss 7: one damaged adapter is skipped by name; hidden folders are never adapters

@pytest.fixture
def damaged_root(trained, tmp_path):
    """A good `fast` adapter, a `balanced` one with garbage training_config.json, and a killed run's leftovers."""
    root = tmp_path / "adapters"
    folder = root / "tiny-random-llama" / "iris"
    copy_adapter(trained, folder / "fast")
    broken = copy_adapter(trained, folder / "balanced")
    (broken / "training_config.json").write_text('{"preset": "balanced", ')
    for hidden in (".fast.partial", ".fast.old"):
        copy_adapter(trained, folder / hidden)
    return root


def test_find_adapters_skips_the_damaged_one_naming_its_file(damaged_root):
    with pytest.warns(SlmbenchWarning, match=r"balanced/training_config\.json:1: not valid JSON"):
        found = find_adapters(damaged_root)
    assert [info.label for info in found] == ["lora-fast"]


def test_slmbench_adapters_lists_the_rest_and_names_the_damaged_file(damaged_root, capsys):
    code, out, err = cli(capsys, "adapters", "--out", str(damaged_root))
    assert code == 0 and out.count("tiny-random-llama") == 1 and "| fast" in out, out
    assert "slmbench: warning: skipped adapter" in err and "balanced/training_config.json" in err, err


def test_bench_collects_every_case_but_the_damaged_adapter_once_each(damaged_root, pytester):
    result = bench_run(pytester, damaged_root, "--collect-only", "-q")
    text = result.stdout.str()
    assert result.ret == 0, text
    assert text.count("test_json_valid[tiny-random-llama+lora-fast::iris]") == 1, text
    assert "test_json_valid[tiny-random-llama::iris]" in text and "balanced/training_config.json" in text


# --- data loss 8: evaluate checks --output before doing the work

@pytest.mark.parametrize("kind", ["directory", "under a file"])
def test_evaluate_refuses_a_bad_output_path_before_generating(tmp_path, capsys, kind):
    blocker = tmp_path / "out"
    if kind == "directory":
        blocker.mkdir()
        output = blocker
    else:
        blocker.write_text("a file")
        output = blocker / "metrics.json"
    code, _, err = cli(capsys, "evaluate", "--model", "tiny-random-llama", "--task", "iris", "--limit", "2",
                       "--output", str(output))
    assert code == 2 and f"--output {output}" in err, err
    assert not (tmp_path / "cache" / "generations").exists()  # nothing was generated


# --- tracebacks that became clear errors: model and adapter files

def damage_model(directory: Path, kind: str) -> Path:
    weights = directory / "model.safetensors"
    if kind == "garbage weights":
        weights.write_bytes(b"\x00not safetensors at all" * 10)
        return weights
    if kind == "truncated weights":
        weights.write_bytes(weights.read_bytes()[:-1000])
        return weights
    (directory / "tokenizer.json").unlink()
    (directory / "tokenizer_config.json").unlink()
    return directory


@pytest.mark.parametrize("kind", ["garbage weights", "truncated weights", "no tokenizer"])
def test_damaged_model_directory_is_a_clear_error(model_dir, tmp_path, capsys, kind):
    directory = shutil.copytree(model_dir, tmp_path / "model")
    named = damage_model(directory, kind)
    code, _, err = cli(capsys, "generate", "--model", str(directory), "--prompt", "hi")
    assert code == 2 and f"slmbench: error: {named}" in err and "Traceback" not in err, err


def damage_adapter(folder: Path, kind: str) -> Path:
    weights, config = folder / "adapter_model.safetensors", folder / "adapter_config.json"
    if kind == "only adapter_config.json":
        weights.unlink()
        return folder
    if kind == "garbage weights":
        weights.write_bytes(b"garbage" * 50)
        return weights
    if kind == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: len(weights.read_bytes()) // 2])
        return weights
    if kind == "flipped bytes":
        data = bytearray(weights.read_bytes())
        data[-8:] = bytes(b ^ 0xFF for b in data[-8:])  # tensor data, the header still parses
        weights.write_bytes(bytes(data))
        return weights
    if kind == "invalid adapter_config.json":
        config.write_text('{"r": 4,, }')
        return config
    config.write_text(json.dumps({**json.loads(config.read_text()), "r": "four"}))  # valid JSON, wrong type
    return folder


@pytest.mark.parametrize("kind", ["only adapter_config.json", "garbage weights", "truncated weights", "flipped bytes",
                                  "invalid adapter_config.json", "adapter_config.json with a wrong type"])
def test_damaged_adapter_is_a_clear_error_and_stays_as_it_was(trained, tmp_path, capsys, kind):
    folder = copy_adapter(trained, tmp_path / "adapter")
    named = damage_adapter(folder, kind)
    before = snapshot(folder)
    code, _, err = cli(capsys, "generate", "--model", "tiny-random-llama", "--adapter", str(folder), "--prompt", "hi")
    assert code == 2 and f"slmbench: error: {named}" in err and "Traceback" not in err, err
    assert snapshot(folder) == before


def test_flipped_adapter_bytes_are_refused_by_load_model(trained, tmp_path):
    folder = copy_adapter(trained, tmp_path / "adapter")
    damage_adapter(folder, "flipped bytes")
    with pytest.raises(AdapterError, match="adapter_model.safetensors does not match the sha256 recorded"):
        load_model("tiny-random-llama", adapter=folder)


# --- tracebacks that became clear errors: options and input

@pytest.mark.parametrize("argv, option", [
    (["generate", "--model", "tiny-random-llama", "--prompt", "hi", "--batch-size", "-3"], "--batch-size"),
    (["generate", "--model", "tiny-random-llama", "--prompt", "hi", "--max-new-tokens", "0"], "--max-new-tokens"),
    (["generate", "--model", "tiny-random-llama", "--prompt", ""], "--prompt"),
    (["evaluate", "--model", "tiny-random-llama", "--task", "iris", "--batch-size", "-3"], "--batch-size"),
    (["evaluate", "--model", "tiny-random-llama", "--task", "iris", "--limit", "0"], "--limit"),
    (["infer", "--model", "tiny-random-llama", "--task", "iris", "--document", "{}", "--batch-size", "0"],
     "--batch-size"),
])
def test_bad_numbers_and_empty_prompts_are_usage_errors(capsys, argv, option):
    with pytest.raises(SystemExit) as exit_info:
        slmbench_main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"argument {option}" in err and "Traceback" not in err, err


def test_interactive_latin1_line_is_reported_by_number_and_the_rest_runs(monkeypatch, capsys):
    stdin = "Caffè moka".encode("latin-1") + b"\nKettle 1.7 l\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    code, out, err = cli(capsys, "infer", "--model", "tiny-random-llama", "--task", "products", "--interactive")
    assert code == 2 and "stdin line 1 is not UTF-8 text" in err and "Traceback" not in err, err
    assert out.count("\n") == 1, err  # line 2 was answered (a random model may well answer with whitespace)


# --- Ctrl-C: one line, exit 130, nothing half-written, a rerun resumes

def test_ctrl_c_in_evaluate_keeps_finished_batches_and_the_rerun_resumes(tmp_path, capsys):
    entries = lambda: list((tmp_path / "cache").glob("generations/*/*.json"))  # noqa: E731
    argv = ["evaluate", "--model", "tiny-random-llama", "--task", "products", "--split", "test",
            "--batch-size", "1", "--limit", "8"]
    put = GenerationCache.put

    def put_then_ctrl_c(self, key, record):  # a real SIGINT right after the first finished batch is stored
        put(self, key, record)
        if len(entries()) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # what a user's shell gives: Ctrl-C raises
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(GenerationCache, "put", put_then_ctrl_c)
            code, _, err = cli(capsys, *argv)
    finally:
        signal.signal(signal.SIGINT, previous)
    kept = len(entries())
    assert code == 130 and err.strip().splitlines()[-1] == INTERRUPTED_MESSAGE and "Traceback" not in err, err
    assert 1 <= kept < 8 and not list((tmp_path / "cache").rglob("*.tmp"))  # no half-written entry
    code, out, _ = cli(capsys, *argv)
    assert code == 0 and f"N=8, {kept} from cache" in out, out


def test_ctrl_c_in_train_is_one_line_and_keeps_the_previous_adapter(small_iris, tmp_path, capsys, monkeypatch):
    common = ["--model", "tiny-random-llama", "--task", "iris", "--preset", "fast", "--out", str(tmp_path)]
    assert training_main([*common, "--max-steps", "1"]) == 0
    folder = tmp_path / "tiny-random-llama" / "iris"
    before = snapshot(folder)
    capsys.readouterr()

    def ctrl_c(*args, **kwargs):  # what Python raises when SIGINT arrives mid-step
        raise KeyboardInterrupt

    monkeypatch.setattr("slmbench.training.lora.causal_lm_loss", ctrl_c)
    code = training_main([*common, "--max-steps", "2"])
    err = capsys.readouterr().err
    assert code == 130 and err.strip().splitlines()[-1] == INTERRUPTED_MESSAGE, err
    assert snapshot(folder) == before and [p.name for p in folder.iterdir()] == ["fast"]


# --- from code review: cache key material, a loadable base in adapter_config.json

@pytest.mark.parametrize("edit", ["generation_config.json", "tokenizer_config.json"])
def test_cache_key_changes_with_the_tokenizer_and_generation_config(model_dir, tmp_path, edit):
    copy = shutil.copytree(model_dir, tmp_path / "model")
    before = load_model(str(copy), dtype="float32")
    path = copy / edit
    settings = json.loads(path.read_text())
    if edit == "generation_config.json":
        settings["eos_token_id"] = [settings["eos_token_id"], 65]  # 'A' now ends completions
    else:
        settings["chat_template"] = "{{ messages[0]['content'] }}!"
    path.write_text(json.dumps(settings))
    after = load_model(str(copy), dtype="float32")
    assert before.weights_hash == after.weights_hash
    assert generation_key(before, "hi", DECODING) != generation_key(after, "hi", DECODING)


def test_adapter_of_a_local_checkpoint_loads_with_auto_peft(small_iris, model_dir, tmp_path):
    from peft import AutoPeftModelForCausalLM

    result = train(make_config(str(model_dir), "iris", "fast", max_steps=1), out_root=tmp_path)
    recorded = json.loads((result.adapter_dir / "adapter_config.json").read_text())["base_model_name_or_path"]
    training = json.loads((result.adapter_dir / "training_config.json").read_text())
    model = AutoPeftModelForCausalLM.from_pretrained(result.adapter_dir)
    assert recorded == str(model_dir.resolve()) and training["base_model_name"] == model_dir.name
    assert type(model).__name__ == "PeftModelForCausalLM"
    assert load_model(str(model_dir), adapter=result.adapter_dir).adapter_dir == result.adapter_dir


def test_train_with_a_negative_batch_size_is_an_error_naming_it(capsys):
    code = training_main(["--model", "tiny-random-llama", "--task", "iris", "--batch-size", "-3"])
    err = capsys.readouterr().err
    assert code == 2 and "batch_size must be a positive number, got -3" in err and "Traceback" not in err, err
