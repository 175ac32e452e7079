import pytest

from slmbench.cache import GenerationCache, generation_key
from slmbench.generation import DecodingConfig, generate
from slmbench.loading import load_model

PROMPTS = ["one", "two two", "three three three", "four"]
DECODING = DecodingConfig(max_new_tokens=6)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-random-qwen2", dtype="float32")


def test_rerun_with_nothing_changed_generates_nothing(tiny, cache):
    first = generate(tiny, PROMPTS, DECODING, cache=cache)
    second = generate(tiny, PROMPTS, DECODING, cache=cache)
    assert first.cache_hits == 0 and second.cache_hits == len(PROMPTS) and second.generated_tokens == 0
    assert [c.text for c in first.completions] == [c.text for c in second.completions]
    assert all(c.cached for c in second.completions)


def test_key_changes_with_every_output_relevant_setting(tiny):
    base = generation_key(tiny, "p", DECODING)
    assert generation_key(tiny, "p ", DECODING) != base
    assert generation_key(tiny, "p", DecodingConfig(max_new_tokens=7)) != base
    assert generation_key(tiny, "p", DecodingConfig(max_new_tokens=6, stop_at_json_end=True)) != base
    assert generation_key(load_model("tiny-random-qwen2", dtype="bfloat16"), "p", DECODING) != base
    assert generation_key(load_model("tiny-random-phi3", dtype="float32"), "p", DECODING) != base
    assert generation_key(tiny, "p", DECODING, batch_size=64) != base  # bf16 outputs move with the batch's padding


def test_rerun_at_another_batch_size_generates_again(tiny, cache):
    first = generate(tiny, PROMPTS, DECODING, batch_size=2, cache=cache)
    again = generate(tiny, PROMPTS, DECODING, batch_size=2, cache=cache)
    other = generate(tiny, PROMPTS, DECODING, batch_size=4, cache=cache)
    assert (first.cache_hits, again.cache_hits, other.cache_hits) == (0, len(PROMPTS), 0)
    assert other.generated_tokens > 0


class InterruptingCache(GenerationCache):
    """Simulates Ctrl-C after `allowed` completions were stored."""

    def __init__(self, root, allowed):
        super().__init__(root)
        self.allowed = allowed

    def put(self, key, record):
        if self.allowed == 0:
            raise KeyboardInterrupt
        self.allowed -= 1
        super().put(key, record)


def test_interrupted_run_keeps_what_it_finished_and_resumes(tiny, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        generate(tiny, PROMPTS, DECODING, batch_size=1, cache=InterruptingCache(tmp_path, allowed=2))
    resumed = generate(tiny, PROMPTS, DECODING, batch_size=1, cache=GenerationCache(tmp_path))
    assert resumed.cache_hits == 2
    fresh = generate(tiny, PROMPTS, DECODING)
    assert [c.text for c in resumed.completions] == [c.text for c in fresh.completions]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "tamper"])
def test_corrupt_entry_is_regenerated_never_returned(tiny, cache, damage):
    first = generate(tiny, PROMPTS, DECODING, cache=cache)
    entry = cache._path(generation_key(tiny, tiny.render(PROMPTS[0]), DECODING))
    text = entry.read_text()
    entry.write_text({"truncate": text[: len(text) // 2], "garbage": "\x00\x01",
                      "tamper": text.replace('"text": "', '"text": "X', 1)}[damage])
    assert cache.get(generation_key(tiny, tiny.render(PROMPTS[0]), DECODING)) is None
    again = generate(tiny, PROMPTS, DECODING, cache=cache)
    assert again.cache_hits == len(PROMPTS) - 1
    assert [c.text for c in again.completions] == [c.text for c in first.completions]


def test_atomic_writes_make_ordinary_files(tmp_path):
    import os
    import stat

    from slmbench.atomic import write_text_atomic

    mask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "board.md", "x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "board.md").stat().st_mode) == 0o644


def test_server_keys_change_with_the_requests_in_flight(tiny):
    from slmbench.generation import generation_keys
    from slmbench.server_engine import ServerEngine

    def key(concurrency: int, batch_size: int = 16) -> str:
        server = ServerEngine("http://127.0.0.1:9/v1", version="test 1.0", concurrency=concurrency)
        return generation_keys(tiny, ["p"], DECODING, server, batch_size=batch_size)[0]

    assert key(4) != key(64)  # the server batches what is in flight together
    assert key(4, batch_size=16) == key(4, batch_size=64)  # the hf engine's batch size is not the server's
