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


def mask_size(tokenizer, logits_size: int) -> int:
    """Token ids the grammar masks: the model's logits, or more where the tokenizer has ids past them
    (llguidance refuses a vocabulary smaller than its tokenizer; the extra ids are trimmed off)."""
    return max(logits_size, len(tokenizer))


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

    One instance serves one `generate` call (the matchers follow its rows). `schema_json` keeps the
    schema's property order: the grammar writes properties in that order. A row whose JSON value is
    complete may only end (EOS); a finished row is padded by transformers and consumes nothing more.
    """

    def __init__(self, tokenizer, schema_json: str, eos_id: int, logits_size: int):
        # the grammar and the llguidance tokenizer are built here, before the timed decoding starts
        self.grammar = _grammar(schema_json)  # fails before any decoding on a schema it cannot compile
        self.ll_tokenizer = _ll_tokenizer(tokenizer, mask_size(tokenizer, logits_size), eos_id)
        self.new_matcher = _llguidance().LLMatcher
        self.matchers: list | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, vocab = scores.shape
        if self.matchers is None:  # first step: nothing generated yet
            self.matchers = [self.new_matcher(self.ll_tokenizer, self.grammar) for _ in range(batch)]
        else:
            for row, matcher in enumerate(self.matchers):
                if not matcher.is_stopped() and not matcher.is_error():
                    matcher.consume_token(int(input_ids[row, -1]))
        size = self.ll_tokenizer.vocab_size
        bitmask = np.full((batch, (size + 31) // 32), -1, dtype=np.int32)  # all allowed
        for row, matcher in enumerate(self.matchers):
            if matcher.is_error():  # cannot happen when every token came through the mask; never hide it
                log.warning("structured outputs: row %d left unconstrained: %s", row, matcher.get_error())
            else:  # a stopped matcher (complete JSON) allows only EOS
                line = bitmask[row]
                matcher.unsafe_compute_mask_ptr(line.ctypes.data, line.nbytes)
        # bit k of 32-bit word w is token 32w + k; x86 is little-endian, so the bytes unpack in token order
        allowed = np.unpackbits(bitmask.view(np.uint8), axis=1, bitorder="little")[:, :vocab].astype(bool)
        return scores.masked_fill(~torch.from_numpy(allowed).to(scores.device), float("-inf"))
