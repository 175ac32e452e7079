"""Real offline models end to end (no hub access: HF_HUB_OFFLINE=1 is set by conftest)."""

import os

import pytest

from slmbench.generation import DecodingConfig, generate
from slmbench.jsontext import parse_json_output
from slmbench.loading import load_model
from slmbench.registry import MODELS, model_status

pytestmark = pytest.mark.real_model


def require(name):
    if model_status(MODELS[name]) != "ready":
        pytest.skip(f"{name} is not installed: run `make setup`")
    return load_model(name)


def test_smollm2_answers_two_prompts_offline(cache):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    loaded = require("smollm2-135m-instruct")
    run = generate(loaded, ["What is the capital of France?", "Name one primary colour."],
                   DecodingConfig(max_new_tokens=24), cache=cache)
    first, second = run.completions
    assert "Paris" in first.text and first.finish_reason == "eos"
    assert any(colour in second.text.lower() for colour in ("red", "blue", "yellow"))


def test_smollm2_json_stop_ends_at_the_closing_brace(cache):
    loaded = require("smollm2-135m-instruct")
    prompt = 'Reply with only a JSON object with keys "name" and "age" for Anna, who is 31.'
    completion = generate(loaded, [prompt], DecodingConfig(max_new_tokens=80, stop_at_json_end=True),
                          cache=cache).completions[0]
    assert completion.finish_reason == "json_end", completion.text
    assert completion.text.rstrip().endswith("}"), completion.text  # nothing generated past the value
    assert parse_json_output(completion.text) == ({"name": "Anna", "age": 31}, None), completion.text


@pytest.mark.slow
def test_gemma3_continues_a_prompt_offline(cache):
    loaded = require("gemma3-270m")
    completion = generate(loaded, ["The capital of France is"], DecodingConfig(max_new_tokens=8), cache=cache).completions[0]
    assert "Paris" in completion.text or "capital" in completion.text
