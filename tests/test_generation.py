import pytest
import torch

from slmbench.generation import DecodingConfig, JsonEndCriteria, _completion_length, generate
from slmbench.loading import load_model
from slmbench.registry import MODELS

TINY = [name for name, spec in MODELS.items() if spec.kind == "random"]
PROMPTS = ["a", "a somewhat longer prompt that needs padding", "mid length one", "zz", "another prompt of text"]


@pytest.mark.parametrize("name", TINY)
def test_batched_outputs_equal_unbatched_under_greedy(name):
    loaded = load_model(name, dtype="float32")
    decoding = DecodingConfig(max_new_tokens=10)
    batched = generate(loaded, PROMPTS, decoding, batch_size=5, progress=False)
    one_by_one = generate(loaded, PROMPTS, decoding, batch_size=1, progress=False)
    assert [c.text for c in batched.completions] == [c.text for c in one_by_one.completions]
    assert [c.prompt for c in batched.completions] == PROMPTS  # original order restored after sorting


def test_static_and_dynamic_kv_cache_agree():
    loaded = load_model("tiny-random-gemma3", dtype="float32")
    decoding = DecodingConfig(max_new_tokens=8)
    static = generate(loaded, PROMPTS, decoding, static_cache=True)
    dynamic = generate(loaded, PROMPTS, decoding, static_cache=False)
    assert [c.text for c in static.completions] == [c.text for c in dynamic.completions]


def test_counts_and_throughput_are_reported():
    loaded = load_model("tiny-random-llama", dtype="float32")
    run = generate(loaded, PROMPTS[:2], DecodingConfig(max_new_tokens=7, min_new_tokens=7))
    assert [c.completion_tokens for c in run.completions] == [7, 7]
    assert [c.prompt_tokens for c in run.completions] == [1, len(PROMPTS[1].encode())]  # byte tokenizer
    assert run.generated_tokens == 14 and run.tokens_per_sec > 0


def test_chat_models_see_their_template_and_base_models_the_raw_prompt():
    chat, base = load_model("tiny-random-qwen2"), load_model("tiny-random-llama")
    assert chat.render("hi") == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert base.render("hi") == "hi"


def _ids(tokenizer, text):
    return torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])


def test_json_criterion_stops_right_after_the_value_closes():
    tokenizer = load_model("tiny-random-llama").tokenizer
    prompt = _ids(tokenizer, "P:")
    completion = '{"a": "}", "b": [1]}\nand then rambling'
    criterion = JsonEndCriteria(tokenizer, prompt_length=prompt.shape[1])
    closes_at = None
    for step in range(1, len(completion) + 1):  # byte tokenizer: one character per token
        ids = torch.cat([prompt, _ids(tokenizer, completion[:step])], dim=1)
        if criterion(ids, None)[0] and closes_at is None:
            closes_at = step
    assert closes_at == len('{"a": "}", "b": [1]}')
    assert criterion.stopped_at == {0: closes_at}


def test_json_criterion_waits_for_a_value_the_parser_accepts_and_decodes_only_at_closing_brackets():
    tokenizer = load_model("tiny-random-llama").tokenizer
    prompt = _ids(tokenizer, "P:")
    completion = 'Result [see below]: {"a": [1, 2]} and more'
    criterion = JsonEndCriteria(tokenizer, prompt_length=prompt.shape[1])
    full_decodes, decode = [], tokenizer.decode

    def counting_decode(ids, **kwargs):
        if len(ids) > 1:
            full_decodes.append(len(ids))
        return decode(ids, **kwargs)

    tokenizer.decode = counting_decode
    try:
        stops = [bool(criterion(torch.cat([prompt, _ids(tokenizer, completion[:step])], dim=1), None)[0])
                 for step in range(1, len(completion) + 1)]
    finally:
        del tokenizer.decode
    assert stops.index(True) + 1 == len('Result [see below]: {"a": [1, 2]}')  # not at "[see below]"
    assert len(full_decodes) == 3  # "]" of the prose, "]" of the list, "}" of the object: not every step


def test_completion_length_picks_the_first_stop():
    assert _completion_length([5, 6, 2, 0, 0], eos_ids=[2], json_stop=None) == (3, "eos")
    assert _completion_length([5, 6, 7, 2, 0], eos_ids=[2], json_stop=2) == (2, "json_end")
    assert _completion_length([5, 6, 7], eos_ids=[2], json_stop=None) == (3, "length")
