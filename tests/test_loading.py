import json

import pytest
from peft import LoraConfig, get_peft_model

from slmbench.errors import AdapterError
from slmbench.generation import DecodingConfig, generate
from slmbench.loading import load_model


def save_adapter(base_name, directory, targets=("q_proj", "v_proj"), recorded_base="same"):
    """Write a freshly initialised (non-zero) LoRA adapter for a tiny model."""
    loaded = load_model(base_name, dtype="float32")
    config = LoraConfig(r=4, lora_alpha=8, target_modules=list(targets), init_lora_weights=False)
    peft_model = get_peft_model(loaded.model, config)
    peft_model.peft_config["default"].base_model_name_or_path = base_name if recorded_base == "same" else recorded_base
    peft_model.save_pretrained(directory)
    return directory


def test_adapter_applies_and_changes_label_hash_and_outputs(tmp_path):
    adapter = save_adapter("tiny-random-llama", tmp_path / "adapter")
    base = load_model("tiny-random-llama", dtype="float32")
    adapted = load_model("tiny-random-llama", dtype="float32", adapter=adapter)
    assert adapted.label == "tiny-random-llama+adapter" and adapted.adapter_hash
    decoding = DecodingConfig(max_new_tokens=8)
    assert generate(adapted, ["hello"], decoding).completions[0].text != generate(base, ["hello"], decoding).completions[0].text


def test_directory_that_is_not_an_adapter(tmp_path):
    (tmp_path / "weights.txt").write_text("nothing")
    with pytest.raises(AdapterError, match="is not a PEFT adapter: no adapter_config.json"):
        load_model("tiny-random-llama", adapter=tmp_path)


def test_adapter_recorded_for_another_base(tmp_path):
    adapter = save_adapter("tiny-random-llama", tmp_path / "adapter")
    with pytest.raises(AdapterError, match="trained on base model 'tiny-random-llama', not on tiny-random-mistral"):
        load_model("tiny-random-mistral", adapter=adapter)


def test_adapter_trained_on_another_checkpoint_by_hash(tmp_path):
    adapter = save_adapter("tiny-random-llama", tmp_path / "adapter")
    (adapter / "training_config.json").write_text(json.dumps({"base_weights_hash": "sha256:0123"}))
    with pytest.raises(AdapterError, match="trained on another base checkpoint"):
        load_model("tiny-random-llama", adapter=adapter)


def test_adapter_whose_modules_do_not_exist_in_the_base(tmp_path):
    adapter = save_adapter("tiny-random-phi3", tmp_path / "adapter", targets=("qkv_proj",), recorded_base=None)
    with pytest.raises(AdapterError, match="does not fit tiny-random-llama"):
        load_model("tiny-random-llama", adapter=adapter)


def test_merged_adapter_gives_the_same_float32_outputs_as_separate_lora_layers(tmp_path):
    from slmbench.cache import generation_key

    adapter = save_adapter("tiny-random-llama", tmp_path / "adapter")
    merged = load_model("tiny-random-llama", dtype="float32", adapter=adapter, merge_adapter=True)
    separate = load_model("tiny-random-llama", dtype="float32", adapter=adapter)
    assert (merged.adapter_merged, separate.adapter_merged) == (True, False)
    assert not any("lora_" in name for name, _ in merged.model.named_parameters())
    assert any("lora_" in name for name, _ in separate.model.named_parameters())
    assert (merged.label, merged.adapter_hash) == (separate.label, separate.adapter_hash)
    decoding, prompts = DecodingConfig(max_new_tokens=12), ["hello", "a longer prompt about irises"]
    assert [c.text for c in generate(merged, prompts, decoding).completions] == \
        [c.text for c in generate(separate, prompts, decoding).completions]
    assert generation_key(merged, "hello", decoding) != generation_key(separate, "hello", decoding)


def test_lm_head_gets_a_contiguous_input_when_weights_are_frozen():
    """Prefill projects `hidden[:, -1:]`, a strided view; with frozen weights torch would expand the whole
    LM head per batch row (20 s of a 23 s Gemma generate call). load_model makes that input contiguous."""
    loaded = load_model("tiny-random-gemma3", dtype="float32")
    for parameter in loaded.model.parameters():
        parameter.requires_grad_(False)  # as PEFT and merged adapters leave them
    seen = []
    loaded.model.get_output_embeddings().register_forward_pre_hook(lambda module, args: seen.append(args[0].is_contiguous()))
    generate(loaded, ["a b c d", "a"], DecodingConfig(max_new_tokens=3), batch_size=2, progress=False)
    assert seen and all(seen), seen


def test_a_local_checkpoints_tokenizer_loads_without_reading_its_weights(tmp_path, monkeypatch):
    from slmbench.loading import load_tokenizer

    loaded = load_model("tiny-random-qwen2", dtype="float32")
    loaded.model.save_pretrained(tmp_path / "model")
    loaded.tokenizer.save_pretrained(tmp_path / "model")
    expected = load_model(str(tmp_path / "model"), dtype="float32")
    monkeypatch.setattr("slmbench.loading.files_sha256", lambda *a: pytest.fail("hashed the weights"))
    tokenizer_only = load_tokenizer(str(tmp_path / "model"))
    prompt = "Name the capital of France."
    assert (tokenizer_only.model, tokenizer_only.chat, tokenizer_only.tokenizer(tokenizer_only.render(prompt))["input_ids"]) == (
        None, expected.chat, expected.tokenizer(expected.render(prompt))["input_ids"])


def _identity(loaded) -> tuple:
    """What keys a loaded model's outputs and records (see slmbench.cache.generation_key)."""
    from slmbench.cache import generation_key

    return (loaded.label, loaded.weights_hash, loaded.adapter_hash, loaded.tokenizer_hash, loaded.dtype, loaded.device,
            loaded.render("hello"), generation_key(loaded, loaded.render("hello"), DecodingConfig(max_new_tokens=8)))


@pytest.mark.parametrize("with_adapter", [False, True])
def test_deferred_weights_load_on_first_use_with_the_identity_of_eager_ones(tiny_checkpoint, weight_loads, with_adapter):
    directory, adapter = tiny_checkpoint
    options = {"dtype": "float32", "adapter": adapter if with_adapter else None}
    deferred = load_model(str(directory), defer_weights=True, **options)
    assert not deferred.weights_loaded and not weight_loads  # hashed, tokenizer loaded: no weights read
    eager = load_model(str(directory), **options)
    assert eager.weights_loaded and _identity(deferred) == _identity(eager)
    weight_loads.clear()
    decoding = DecodingConfig(max_new_tokens=8)
    texts = [c.text for c in generate(deferred, ["hello", "a longer prompt"], decoding).completions]
    assert weight_loads == ({"model": 1, "adapter": 1} if with_adapter else {"model": 1}) and deferred.weights_loaded
    assert texts == [c.text for c in generate(eager, ["hello", "a longer prompt"], decoding).completions]
    assert _identity(deferred) == _identity(eager)


@pytest.mark.parametrize("generation_config_file", [True, False])
def test_the_tokenizer_hash_read_without_weights_is_that_of_the_loaded_model(tiny_checkpoint, tmp_path,
                                                                            generation_config_file):
    """The generation config (EOS ids) is read from the files, as from_pretrained reads it for the model."""
    import shutil

    from slmbench.hashing import tokenizer_sha256

    directory = shutil.copytree(tiny_checkpoint[0], tmp_path / "ckpt")
    if not generation_config_file:  # transformers then derives it from config.json
        (directory / "generation_config.json").unlink()
    loaded = load_model(str(directory), dtype="float32")
    assert loaded.tokenizer_hash == tokenizer_sha256(loaded.tokenizer, loaded.model.generation_config)


def test_loads_of_one_checkpoint_read_its_tokenizer_once(tiny_checkpoint, monkeypatch):
    """A bench loads a base once per adapter; the tokenizer (seconds for Gemma's) is read and hashed once."""
    from slmbench import loading

    directory, adapter = tiny_checkpoint
    loading._checkpoint_tokenizer.cache_clear()
    reads = []
    real = loading._tokenizer
    monkeypatch.setattr(loading, "_tokenizer", lambda *args: reads.append(args) or real(*args))
    base = load_model(str(directory), dtype="float32", defer_weights=True)
    adapted = load_model(str(directory), dtype="float32", adapter=adapter, defer_weights=True)
    assert len(reads) == 1 and adapted.tokenizer is base.tokenizer
    assert (adapted.tokenizer_hash, adapted.render("hello")) == (base.tokenizer_hash, base.render("hello"))
