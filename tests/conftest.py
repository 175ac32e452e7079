"""Shared fixtures for the harness's own tests."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

# pytester's in-process runs put sys.modules back as they found it after each run, so a module first
# imported inside one is imported afresh by the next. For torch that second import crashes the
# interpreter (a segfault in a later garbage collection). The bench plugin imports torch only when a
# case runs, so the heavy modules are imported here, before any pytester run, and stay in every snapshot.
import slmbench.bench.classical  # noqa: F401,E402  (scikit-learn, python-crfsuite, sentence-transformers)
import slmbench.bench.html_report  # noqa: F401,E402  (matplotlib, jinja2)
import slmbench.bench.records  # noqa: F401,E402
import slmbench.bench.samples_log  # noqa: F401,E402
import slmbench.evaluation  # noqa: F401,E402  (torch, transformers)
import slmbench.loading  # noqa: F401,E402
from slmbench.cache import GenerationCache

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"


@pytest.fixture
def cache(tmp_path):
    """A generation cache private to one test."""
    return GenerationCache(tmp_path / "generations")


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, so hub models are certainly absent."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    return tmp_path / "hf-hub"


@pytest.fixture
def bench(pytester, tmp_path, monkeypatch):
    """Run `pytest bench` in a scratch directory with a private cache; returns (run, outputs dir).

    tests/test_faults_bench.py has its own `bench`, on one fixed model and task."""
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(tmp_path / "adapters"))
    # subprocess runs import this checkout's code, not whichever checkout the venv's editable install names
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(BENCH.parent), os.environ.get("PYTHONPATH")])))
    out = tmp_path / "out"
    out.mkdir()

    def run(*args, subprocess=False, limit="3"):
        # K-shot and classical rows are off here (tests/test_fewshot.py and test_classical.py cover them)
        options = [str(BENCH), "-p", "no:cacheprovider", "-rs", "--bench-limit", limit,
                   "--bench-fewshot", "0", "--bench-classical", "none",
                   "--bench-leaderboard", str(out / "lb.md"), "--bench-json", str(out / "lb.json"),
                   "--bench-store", str(out / "results.db"), *args]
        return pytester.runpytest_subprocess(*options) if subprocess else pytester.runpytest(*options)

    return run, out


@pytest.fixture(scope="session")
def without_engine():
    """`without_engine(error)` for an EngineMissing: skips the test, or fails it where .ci/run set
    SLMBENCH_REQUIRE_ENGINES (CI must run the engines suite, not skip it)."""
    def handle(error):
        if os.environ.get("SLMBENCH_REQUIRE_ENGINES"):
            pytest.fail(f"SLMBENCH_REQUIRE_ENGINES is set but {error}", pytrace=False)
        pytest.skip(str(error))
    return handle


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A tiny random llama saved as a checkpoint directory (loaded by path, like a real model), and a LoRA
    adapter for it on iris recording the checkpoint's weights hash, as `slmbench train` writes it."""
    from peft import LoraConfig, get_peft_model

    from slmbench.loading import load_model
    from slmbench.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("checkpoint")
    directory, adapter = root / "tiny-llama-ckpt", root / "adapter"
    model, tokenizer = build_tiny_model("llama", chat=False)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    base = load_model(str(directory), dtype="float32")
    get_peft_model(base.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                          init_lora_weights=False)).save_pretrained(adapter)
    (adapter / "training_config.json").write_text(json.dumps({
        "base_model_name": base.spec.location, "base_weights_hash": base.weights_hash, "task": "iris", "preset": "fast"}))
    return directory, adapter


@pytest.fixture
def weight_loads(monkeypatch):
    """Counts weight loads: "model" (AutoModelForCausalLM.from_pretrained), "adapter" (PeftModel.from_pretrained)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    loads = Counter()

    def counted(name, real):
        def from_pretrained(*args, **kwargs):
            loads[name] += 1
            return real(*args, **kwargs)
        return from_pretrained

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", counted("model", AutoModelForCausalLM.from_pretrained))
    monkeypatch.setattr(PeftModel, "from_pretrained", counted("adapter", PeftModel.from_pretrained))
    return loads


@pytest.fixture
def tiny_adapter():
    """`write_tiny_adapter`, for tests that place a tiny random adapter where `slmbench train` would."""
    return write_tiny_adapter


@pytest.fixture(scope="session")
def tiny_bench_run(tmp_path_factory):
    """One `pytest bench` run in a subprocess (tiny-random-llama on iris and products, plus a tiny iris
    adapter with a loss history), shared by the report tests: the folder holding lb.json, results.db,
    results/<run-id>/ and report.html."""
    out = tmp_path_factory.mktemp("tiny-bench")
    env = {**os.environ, "SLMBENCH_CACHE": str(out / "cache"), "SLMBENCH_ADAPTERS": str(out / "adapters")}
    write_tiny_adapter(out / "adapters", "tiny-random-llama", "iris", "fast")
    result = subprocess.run([sys.executable, "-m", "pytest", str(ROOT / "bench"), "-p", "no:cacheprovider", "-q",
                             "--bench-models", "tiny-random-llama", "--bench-tasks", "iris,products",
                             "--bench-limit", "4", "--bench-fewshot", "0", "--bench-classical", "none",
                             "--bench-leaderboard", str(out / "lb.md"),
                             "--bench-json", str(out / "lb.json"), "--bench-store", str(out / "results.db")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    return out


def write_tiny_adapter(root: Path, model: str, task: str, preset: str) -> Path:
    """A random LoRA adapter for a tiny model where `slmbench train` would put it, with a loss history."""
    from peft import LoraConfig, get_peft_model

    from slmbench.loading import load_model

    directory = root / model / task / preset
    peft_model = get_peft_model(load_model(model, dtype="float32").model,
                                LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft_model.peft_config["default"].base_model_name_or_path = model
    peft_model.save_pretrained(directory)
    (directory / "training_config.json").write_text(json.dumps({"base_model_name": model, "task": task, "preset": preset,
                                                                "settings": {"lr": 5e-4, "epochs": 1}}))
    (directory / "loss_history.json").write_text(json.dumps({
        "train": [{"step": s, "epoch": s / 4, "loss": 3.0 / s} for s in range(1, 5)],
        "val": [{"step": 4, "epoch": 1.0, "loss": 1.1}], "best": {"step": 4, "epoch": 1.0, "loss": 1.1}}))
    return directory
