"""Structured outputs: decoding constrained to a task's JSON Schema (slmbench.constrained on the hf
backend, the server's structured outputs on a server), and the +structured rows of the bench."""

import json
import sys

import jsonschema
import numpy as np
import pytest
import torch

from slmbench.cache import generation_key
from slmbench.generation import DecodingConfig, generate
from slmbench.loading import load_model
from slmbench.prompting import task_prompts
from slmbench.tasks import resolve_task

pytest.importorskip("llguidance")


def schema_valid(text: str, schema: dict) -> bool:
    try:
        jsonschema.validate(json.loads(text), schema)
    except (json.JSONDecodeError, jsonschema.ValidationError):
        return False
    return True


@pytest.mark.parametrize("model", ["tiny-random-llama", "tiny-random-qwen2", "tiny-random-gemma3"])
def test_every_constrained_output_is_in_the_schema_where_free_decoding_is_garbage(model):
    task = resolve_task("iris")
    prompts = task_prompts(task, task.samples("test")[:8])
    loaded = load_model(model)
    free = generate(loaded, prompts, DecodingConfig(max_new_tokens=24, stop_at_json_end=True), progress=False)
    constrained = generate(loaded, prompts, DecodingConfig(max_new_tokens=24, stop_at_json_end=True, structured=True),
                           schema=task.schema, progress=False)
    assert not all(schema_valid(c.text, task.schema) for c in free.completions)  # random weights: the mask does it
    assert all(schema_valid(c.text, task.schema) for c in constrained.completions)
    assert {c.finish_reason for c in constrained.completions} == {"json_end"}
    assert all(c.text == json.dumps(json.loads(c.text)) for c in constrained.completions)  # json.dumps layout


def test_properties_come_in_the_schema_s_order_and_a_complete_value_can_only_end():
    """The grammar writes properties in the schema's order (the prompt's and the training targets'), and
    once the value is complete only EOS is allowed, even without the JSON stop."""
    task = resolve_task("it_entities")
    first = next(iter(task.schema["properties"]))
    assert first != min(task.schema["properties"])  # not alphabetical: sorting would show
    loaded = load_model("tiny-random-qwen2")
    run = generate(loaded, task_prompts(task, task.samples("test")[:4]),
                   DecodingConfig(max_new_tokens=48, structured=True), schema=task.schema, progress=False)
    assert all(c.text.startswith(f'{{"{first}": [') for c in run.completions)
    iris = resolve_task("iris")
    ended = generate(loaded, task_prompts(iris, iris.samples("test")[:4]),
                     DecodingConfig(max_new_tokens=24, structured=True), schema=iris.schema, progress=False)
    assert all(c.finish_reason == "eos" and schema_valid(c.text, iris.schema) for c in ended.completions)


def test_the_mask_matches_llguidance_s_own_bit_order():
    import llguidance
    import llguidance.numpy

    from slmbench.constrained import SchemaLogitsProcessor, _grammar, _ll_tokenizer, mask_size

    loaded = load_model("tiny-random-qwen2")
    schema = json.dumps(resolve_task("iris").schema)
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    prefix = loaded.tokenizer('{"species": "', add_special_tokens=False)["input_ids"]
    processor = SchemaLogitsProcessor(loaded.tokenizer, schema, loaded.tokenizer.eos_token_id, vocab)
    scores = torch.randn(1, vocab)
    processor(torch.tensor([[0]]), scores)  # first step: the matcher starts
    for token in prefix:  # then each generated token is consumed before the next mask
        masked = processor(torch.tensor([[token]]), scores.clone())
    size = mask_size(loaded.tokenizer, vocab)
    reference = llguidance.LLMatcher(_ll_tokenizer(loaded.tokenizer, size, loaded.tokenizer.eos_token_id),
                                     _grammar(schema))
    assert reference.consume_tokens(prefix)
    bitmask = llguidance.numpy.allocate_token_bitmask(1, size)
    llguidance.numpy.fill_next_token_bitmask(reference, bitmask)
    expected = scores.numpy().copy()
    llguidance.numpy.apply_token_bitmask_inplace(expected, bitmask)
    assert np.array_equal(np.isinf(masked.numpy()), np.isinf(expected))
    assert 0 < np.isfinite(expected).sum() < vocab / 2  # a real constraint: the species' first tokens


def test_the_schema_and_the_switch_are_in_the_cache_key():
    loaded = load_model("tiny-random-llama")
    schema = resolve_task("iris").schema
    free = DecodingConfig(stop_at_json_end=True)
    on = DecodingConfig(stop_at_json_end=True, structured=True)
    keys = {generation_key(loaded, "p", free), generation_key(loaded, "p", on, schema=schema),
            generation_key(loaded, "p", on, schema={**schema, "required": []})}
    assert len(keys) == 3


def test_structured_decoding_without_llguidance_says_how_to_install_it(monkeypatch):
    from slmbench.constrained import StructuredOutputsMissing, _grammar

    _grammar.cache_clear()
    monkeypatch.setitem(sys.modules, "llguidance", None)  # import llguidance now raises ImportError
    task = resolve_task("iris")
    with pytest.raises(StructuredOutputsMissing, match=r"pip install 'slmbench\[structured\]'"):
        generate(load_model("tiny-random-llama"), task_prompts(task, task.samples("test")[:1]),
                 DecodingConfig(max_new_tokens=8, stop_at_json_end=True, structured=True), schema=task.schema)


def test_bench_structured_adds_constrained_rows_beside_the_free_ones_for_json_tasks_only(bench):
    run, out = bench
    result = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris,products", "--bench-structured")
    assert "errors" not in result.parseoutcomes()  # random weights fail thresholds; no case errors
    rows = {row["case_id"]: row for row in json.loads((out / "lb.json").read_text())["rows"]}
    assert set(rows) == {"tiny-random-llama::iris", "tiny-random-llama+structured::iris", "tiny-random-llama::products"}
    constrained, free = rows["tiny-random-llama+structured::iris"], rows["tiny-random-llama::iris"]
    assert constrained["structured"] and constrained["variant"] == "base+structured" and not free["structured"]
    assert constrained["metrics"]["schema_valid"]["value"] == 1.0 > free["metrics"]["schema_valid"]["value"]
    board = (out / "lb.md").read_text()
    assert "base+structured" in board
