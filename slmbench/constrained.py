"""Structured outputs on the hf backend: decoding constrained to a task's JSON Schema.

At each step a grammar matcher (llguidance, the engine vLLM and llama.cpp also use) says which
tokens keep the completion a valid prefix of a JSON value the schema accepts; every other token's
logit is set to -inf before the greedy pick. We chose llguidance over xgrammar and outlines: a 3 MB
wheel with no dependencies (xgrammar pulls triton, hundreds of MB, on any Linux x86 machine), and
it computes a mask for Gemma's 262k-token vocabulary in well under a millisecond.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import torch
from transformers import LogitsProcessor

from slmbench.errors import SlmbenchError

log = logging.getLogger(__name__)


class StructuredOutputsMissing(SlmbenchError):
    """Structured outputs were asked for on the hf backend, and llguidance is not installed."""


def _llguidance():
    try:
        import llguidance
        import llguidance.hf
    except ImportError:
        raise StructuredOutputsMissing(
            "structured outputs on the hf backend need llguidance: pip install 'slmbench[structured]'") from None
    return llguidance


@lru_cache(maxsize=4)  # building it reads the whole vocabulary (about a second for Gemma's 262k tokens)
def _ll_tokenizer(tokenizer, vocab_size: int, eos_id: int):
    return _llguidance().hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=eos_id)


# The layout of json.dumps, which renders every training target and few-shot answer. Without it the
# grammar allows any whitespace between tokens, and on tiny random models we saw greedy decoding spend
# the whole token budget on tabs and newlines inside an unfinished object.
LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


@lru_cache(maxsize=16)
def _grammar(schema_json: str) -> str:
    llguidance = _llguidance()
    grammar = llguidance.LLMatcher.grammar_from_json_schema(schema_json, overrides=LAYOUT)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar)
    if is_error:
        raise SlmbenchError(f"the task's JSON Schema cannot constrain decoding: {'; '.join(messages)}")
    return grammar


class SchemaLogitsProcessor(LogitsProcessor):
    """Masks, for each row of a batch, the tokens that would leave the task's JSON Schema.

    One instance serves one `generate` call (the matchers follow its rows). A row whose matcher
    has stopped (its EOS was taken) is left alone; transformers pads finished rows itself.
    """

    def __init__(self, tokenizer, schema_json: str, eos_id: int):
        self.tokenizer, self.eos_id = tokenizer, eos_id
        self.grammar = _grammar(schema_json)  # fails before any decoding on a schema it cannot compile
        self.matchers: list | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        llguidance = _llguidance()
        batch, vocab = scores.shape
        if self.matchers is None:  # first step: nothing generated yet
            ll_tokenizer = _ll_tokenizer(self.tokenizer, vocab, self.eos_id)
            self.matchers = [llguidance.LLMatcher(ll_tokenizer, self.grammar) for _ in range(batch)]
        else:
            for row, matcher in enumerate(self.matchers):
                if not matcher.is_stopped() and not matcher.is_error():
                    matcher.consume_token(int(input_ids[row, -1]))
        bitmask = np.full((batch, (vocab + 31) // 32), -1, dtype=np.int32)  # all allowed
        for row, matcher in enumerate(self.matchers):
            if matcher.is_error():  # cannot happen when every token came through the mask; never hide it
                log.warning("structured outputs: row %d left unconstrained: %s", row, matcher.get_error())
            elif not matcher.is_stopped():
                line = bitmask[row]
                matcher.unsafe_compute_mask_ptr(line.ctypes.data, line.nbytes)
        # bit k of 32-bit word w is token 32w + k; x86 is little-endian, so the bytes unpack in token order
        allowed = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")[:, :vocab].astype(bool)
        return scores.masked_fill(~torch.from_numpy(allowed).to(scores.device), float("-inf"))
