"""Structured outputs on the hf backend: decoding constrained to a task's JSON Schema.

At each step a grammar matcher (llguidance, the engine vLLM and llama.cpp also use) says which
tokens keep the completion a valid prefix of a JSON value the schema accepts; every other token's
logit is set to -inf before the greedy pick. We chose llguidance over xgrammar and outlines: a 3 MB
wheel with no dependencies (xgrammar pulls triton, hundreds of MB, on any Linux x86 machine), and
it computes a mask for Gemma's 262k-token vocabulary in well under a millisecond.
"""

from __future__ import annotations

import json
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


def minimal_instance(schema: dict):
    """The shortest value the schema accepts, for the closing budget (None where the schema's
    keywords are beyond what this reads: $ref, patterns, formats, not)."""
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return min(schema["enum"], key=lambda value: len(json.dumps(value)))
    for branches in ("anyOf", "oneOf"):
        if branches in schema:
            options = [minimal_instance(branch) for branch in schema[branches]]
            return None if any(o is None for o in options) else min(options, key=lambda o: len(json.dumps(o)))
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object":
        value = {}
        for name in schema.get("required", []):
            value[name] = minimal_instance(schema.get("properties", {}).get(name, {}))
            if value[name] is None:
                return None
        return value
    if kind == "array":
        count = schema.get("minItems", 0)
        item = minimal_instance(schema.get("items", {})) if count else None
        return [] if not count else None if item is None else [item] * count
    if kind == "string":
        return "x" * schema.get("minLength", 0) if "pattern" not in schema and "format" not in schema else None
    if kind in ("number", "integer"):
        return 0
    if kind == "boolean":
        return False
    return None  # null, {} (anything), $ref and the rest: not bounded here


def value_depth(schema: dict) -> int:
    """How deep the schema's values nest: 1 for a scalar, one more per object or array around it."""
    inner = [*schema.get("properties", {}).values()] + [schema[key] for key in ("items",) if isinstance(schema.get(key), dict)]
    inner += [branch for key in ("anyOf", "oneOf") for branch in schema.get(key, [])]
    return 1 + max((value_depth(child) for child in inner), default=0)


def closing_reserve(schema: dict, tokenizer) -> int | None:
    """Tokens kept back to close an unfinished value once the budget runs short (None: unknown).

    Closing writes at most the schema's shortest value (the required keys, which the grammar forces
    in its own tokens, with the shortest values) plus one closing quote or bracket per nesting level;
    one more of each for margin, and the EOS.
    """
    shortest = minimal_instance(schema)
    if shortest is None:
        return None
    return len(tokenizer.encode(json.dumps(shortest), add_special_tokens=False)) + 2 * value_depth(schema) + 1


# Closing a value early: the characters that end a string, an array or an object, move on to the next
# required key, or open a required string. Outside a string they are tried in this order.
CLOSERS = ("]", "}", ",", ", ", '"')


class SchemaLogitsProcessor(LogitsProcessor):
    """Keeps greedy decoding, for each row of a batch, inside the task's JSON Schema, and closes the
    value before the token budget runs out.

    One instance serves one greedy `generate` call (the matchers follow its rows). `schema_json`
    keeps the schema's property order: the grammar writes properties in that order. A row whose
    JSON value is complete may only end (EOS); a finished row is padded by transformers.

    Greedy only: a row whose best token the grammar allows is left as it is (masking would not change
    the pick), so only rows that would leave the schema pay for applying the 262k-token mask.

    Closing: a grammar alone does not end a value. Base models repeat list items until the budget
    runs out, which leaves the JSON unfinished (measured: 1-17% valid on it_entities and recipes).
    Once no more than `closing_reserve` tokens are left, each row writes the first of CLOSERS the
    grammar allows: inside a string (where `"` and `,` are both allowed) the closing quote, else `]`,
    `}`, the separator before a required key, or `"` to open a required string; where none is allowed,
    the text the grammar forces (a key's name, an array's `[`). What is left to the model then (an enum's value, a
    number's digits) ends within a few tokens.
    """

    def __init__(self, tokenizer, schema_json: str, eos_id: int, logits_size: int, max_new_tokens: int):
        # the grammar and the llguidance tokenizer are built here, before the timed decoding starts
        self.grammar = _grammar(schema_json)  # fails before any decoding on a schema it cannot compile
        self.ll_tokenizer = _ll_tokenizer(tokenizer, mask_size(tokenizer, logits_size), eos_id)
        self.new_matcher = _llguidance().LLMatcher
        self.matchers: list | None = None
        self.steps_left = max_new_tokens
        reserve = closing_reserve(json.loads(schema_json), tokenizer)
        if reserve is None:
            log.warning("structured outputs: cannot bound the closing of this schema; values may end unfinished")
            reserve = 0
        elif reserve > max_new_tokens:  # closing from the first token on may still not fit
            log.warning("structured outputs: max_new_tokens=%d is below the %d tokens kept to close this schema's "
                        "shortest value; values may end unfinished", max_new_tokens, reserve)
        self.reserve = min(reserve, max_new_tokens)
        self.closers = closer_ids(tokenizer, logits_size)
        self.tokenizer = tokenizer

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        batch, vocab = scores.shape
        if self.matchers is None:  # first step: nothing generated yet
            self.matchers = [self.new_matcher(self.ll_tokenizer, self.grammar) for _ in range(batch)]
        else:
            for row, matcher in enumerate(self.matchers):
                if not matcher.is_stopped() and not matcher.is_error():
                    matcher.consume_token(int(input_ids[row, -1]))
        closing = self.steps_left <= self.reserve
        self.steps_left -= 1
        size = self.ll_tokenizer.vocab_size
        bitmask = np.full((batch, (size + 31) // 32), -1, dtype=np.int32)  # all allowed
        best = scores.argmax(dim=1).tolist()
        for row, matcher in enumerate(self.matchers):
            if matcher.is_error():  # cannot happen when every token came through the mask; never hide it
                log.warning("structured outputs: row %d left unconstrained: %s", row, matcher.get_error())
                continue
            line = bitmask[row]  # a stopped matcher (complete JSON) allows only EOS
            matcher.unsafe_compute_mask_ptr(line.ctypes.data, line.nbytes)
            pick = closing_token(line, matcher, self.closers, self.tokenizer) if closing else None
            if pick is not None:
                scores[row] = float("-inf")
                scores[row, pick] = 0.0
            elif not _allows(line, best[row]):
                # bit k of 32-bit word w is token 32w + k; x86 is little-endian: the bytes unpack in token order
                allowed = np.unpackbits(line.view(np.uint8), bitorder="little")[:vocab].view(bool)
                scores[row].masked_fill_(torch.from_numpy(~allowed).to(scores.device), float("-inf"))
        return scores


def closing_token(line: np.ndarray, matcher, closers: dict[str, int], tokenizer) -> int | None:
    """The token that moves a row fastest to the end of its value, or None (the model picks).

    `line` is the row's mask as llguidance wrote it, `closers` the ids of CLOSERS (`closer_ids`).
    """
    allowed = {text: token for text, token in closers.items() if _allows(line, token)}
    if '"' in allowed and "," in allowed:  # both are string content: inside a string, so end it
        return allowed['"']
    if allowed:
        return next(iter(allowed.values()))  # CLOSERS' order
    forced = matcher.compute_ff_tokens()  # a required key's name, in the tokenizer's own tokens
    if not forced:  # llguidance leaves out a forced ` [` that a longer token (` ["`) could extend
        text = matcher.compute_ff_bytes().decode("utf-8", errors="ignore")
        forced = tokenizer.encode(text, add_special_tokens=False) if text else []
    return forced[0] if forced and _allows(line, forced[0]) else None


def _allows(line: np.ndarray, token: int) -> bool:
    return bool((int(line[token >> 5]) >> (token & 31)) & 1)


def closer_ids(tokenizer, logits_size: int) -> dict[str, int]:
    """The token that is exactly each of CLOSERS, in their order (those the tokenizer lacks left out)."""
    ids = {}
    for text in CLOSERS:
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1 and encoded[0] < logits_size and tokenizer.decode(encoded) == text:
            ids[text] = encoded[0]
    return ids
