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


def test_the_greedy_pick_is_llguidance_s_masked_argmax_whether_or_not_the_best_token_is_allowed():
    """The processor masks only rows whose best token the grammar refuses; the pick must be the argmax
    of llguidance's own fully masked logits either way (which also checks the bit order)."""
    import llguidance
    import llguidance.numpy

    from slmbench.constrained import SchemaLogitsProcessor, _grammar, _ll_tokenizer, mask_size

    loaded = load_model("tiny-random-qwen2")
    schema = json.dumps(resolve_task("iris").schema)
    vocab = loaded.model.get_output_embeddings().weight.shape[0]
    prefix = loaded.tokenizer('{"species": "', add_special_tokens=False)["input_ids"]
    size = mask_size(loaded.tokenizer, vocab)
    reference = llguidance.LLMatcher(_ll_tokenizer(loaded.tokenizer, size, loaded.tokenizer.eos_token_id),
                                     _grammar(schema))
    assert reference.consume_tokens(prefix)
    bitmask = llguidance.numpy.allocate_token_bitmask(1, size)
    llguidance.numpy.fill_next_token_bitmask(reference, bitmask)
    generator = torch.Generator().manual_seed(0)
    best_was_allowed = []
    for draw in range(40):
        processor = SchemaLogitsProcessor(loaded.tokenizer, schema, loaded.tokenizer.eos_token_id, vocab, 24)
        scores = torch.randn(1, vocab, generator=generator)
        if draw % 2:  # half the draws: the best token is one the grammar allows
            allowed_ids = np.flatnonzero(np.unpackbits(bitmask.view(np.uint8), bitorder="little")[:vocab])
            scores[0, int(allowed_ids[draw % len(allowed_ids)])] = 10.0
        processor(torch.tensor([[0]]), scores.clone())  # first step: the matcher starts
        for token in prefix[:-1]:  # then each generated token is consumed before the next mask
            processor(torch.tensor([[token]]), scores.clone())
        picked = processor(torch.tensor([[prefix[-1]]]), scores.clone()).argmax(dim=1)
        expected = scores.numpy().copy()
        llguidance.numpy.apply_token_bitmask_inplace(expected, bitmask)
        assert int(picked) == int(expected.argmax())
        best_was_allowed.append(bool(np.isfinite(expected[0, int(scores.argmax())])))
    assert 0 < np.isfinite(expected).sum() < vocab / 2  # a real constraint: the species' first tokens
    assert any(best_was_allowed) and not all(best_was_allowed)  # both paths were taken


@pytest.mark.parametrize("model", ["tiny-random-llama", "tiny-random-qwen2", "tiny-random-gemma3"])
def test_a_value_still_open_when_the_budget_runs_short_is_closed_in_the_schema(model, monkeypatch):
    """Random weights never end a recipe's title on their own (as base models repeat list items):
    without the closing reserve the values end unfinished, with it every one is complete and valid."""
    import slmbench.constrained as constrained

    task = resolve_task("recipes")
    prompts = task_prompts(task, task.samples("test")[:6])
    loaded = load_model(model)
    config = DecodingConfig(max_new_tokens=96, stop_at_json_end=True, structured=True)
    closed = generate(loaded, prompts, config, schema=task.schema, progress=False)
    assert all(schema_valid(c.text, task.schema) for c in closed.completions), [c.text for c in closed.completions]
    assert {c.finish_reason for c in closed.completions} == {"json_end"}
    monkeypatch.setattr(constrained, "closing_reserve", lambda schema, tokenizer: 0)
    left_open = generate(loaded, prompts, config, schema=task.schema, progress=False)
    assert not any(schema_valid(c.text, task.schema) for c in left_open.completions)
    assert {c.finish_reason for c in left_open.completions} == {"length"}


def test_the_closing_reserve_covers_the_shortest_value_of_each_json_task():
    from slmbench.constrained import closing_reserve, minimal_instance

    loaded = load_model("tiny-random-llama")
    for name in ("iris", "it_entities", "recipes"):
        schema = resolve_task(name).schema
        jsonschema.validate(minimal_instance(schema), schema)
        shortest = len(loaded.tokenizer.encode(json.dumps(minimal_instance(schema)), add_special_tokens=False))
        assert shortest < closing_reserve(schema, loaded.tokenizer) <= shortest + 8
    assert closing_reserve({"$ref": "#/definitions/x"}, loaded.tokenizer) is None  # unknown: no promise


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


def test_the_structured_benchmark_times_the_processor_and_reports_both_decodings(tmp_path, capsys):
    from slmbench.bench import structured_benchmark
    from slmbench.constrained import SchemaLogitsProcessor

    original = SchemaLogitsProcessor.__call__
    out = tmp_path / "structured.json"
    assert structured_benchmark.main(["--models", "tiny-random-qwen2", "--tasks", "iris", "products", "--limit", "3",
                                      "--repeats", "2", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [(r["model"], r["task"]) for r in rows] == [("tiny-random-qwen2", "iris")]  # JSON tasks only
    row = rows[0]
    assert 0 < row["processor_share"] < 1 and row["processor_ms_per_step"] > 0
    assert row["structured_schema_valid"] == 1.0 and row["free_tok_s"] > 0
    assert SchemaLogitsProcessor.__call__ is original  # the clock is removed afterwards
    assert "processor % of time" in capsys.readouterr().out
