import pytest

from slmbench.errors import ModelLoadError, UnknownModelError
from slmbench.generation import DecodingConfig, generate
from slmbench.loading import load_model
from slmbench.registry import MODELS, model_status, resolve

TINY = [name for name, spec in MODELS.items() if spec.kind == "random"]
HUB = [name for name, spec in MODELS.items() if spec.kind == "hub"]


def test_registry_has_every_required_entry():
    required = {"gemma3-270m", "smollm2-135m-instruct", "qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct",
                "phi-3-mini-4k-instruct", "mistral-7b-instruct-v0.3", "gemma-2b", "gemma-3-1b-it",
                "llama-3.2-1b-instruct", "tiny-random-qwen2", "tiny-random-llama", "tiny-random-gemma3",
                "tiny-random-phi3", "tiny-random-mistral"}
    assert required <= set(MODELS)


@pytest.mark.parametrize("name", TINY)
def test_tiny_model_loads_generates_and_is_labelled_random(name):
    loaded = load_model(name, dtype="float32")
    run = generate(loaded, ["hello there", "x"], DecodingConfig(max_new_tokens=5), progress=False)
    assert [c.completion_tokens for c in run.completions] and all(1 <= c.completion_tokens <= 5 for c in run.completions)
    assert "random" in loaded.spec.label and loaded.weights_hash.startswith("random:")


def test_tiny_models_are_deterministic_and_distinct():
    first, again = load_model("tiny-random-llama"), load_model("tiny-random-llama")
    other = load_model("tiny-random-mistral")
    assert first.weights_hash == again.weights_hash != other.weights_hash


@pytest.mark.parametrize("name", HUB)
def test_hub_entries_report_not_cached_and_refuse_cleanly(name, empty_hf_cache):
    assert model_status(MODELS[name]) == "not cached"
    with pytest.raises(ModelLoadError, match="not cached locally.*huggingface-cli download"):
        load_model(name)


def test_unknown_name_lists_known_names():
    with pytest.raises(UnknownModelError, match="Known names: .*smollm2-135m-instruct"):
        resolve("no-such-model")


def test_local_directory_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelLoadError, match="is not a model directory: it has no config.json"):
        load_model(str(tmp_path))


def test_unknown_dtype_is_refused():
    with pytest.raises(ModelLoadError, match="unknown dtype 'int3'"):
        load_model("tiny-random-llama", dtype="int3")


def test_local_checkpoint_directory_loads_like_a_registry_model(tmp_path):
    tiny = load_model("tiny-random-qwen2", dtype="float32")
    tiny.model.save_pretrained(tmp_path / "ckpt")
    tiny.tokenizer.save_pretrained(tmp_path / "ckpt")
    local = load_model(str(tmp_path / "ckpt"), dtype="float32")
    decoding = DecodingConfig(max_new_tokens=6)
    assert local.chat and local.weights_hash.startswith("sha256:")
    assert generate(local, ["hi"], decoding).completions[0].text == generate(tiny, ["hi"], decoding).completions[0].text
