"""The managed vLLM server's logits processor: the hf engine's JSON stop and structured closing, in vLLM.

A server cannot be told to stop when a JSON value closes, nor to close one before its token budget
runs out. Without this, a JSON task's request decodes to EOS or `max_tokens` and its text is cut
afterwards (steps wasted), and structured outputs repeat list items until the budget ends with the
value still open (measured before: 5-56% valid JSON on it_entities). `vllm serve --logits-processors
slmbench.vllm_logits:SlmbenchLogitsProcessor` (slmbench.vllm_server) loads it; each request asks
for what it needs in `vllm_xargs` (slmbench.server_engine):

- `slmbench_json_stop`: once the completion holds a JSON value the parser accepts (the hf engine's
  rule, slmbench.jsontext.json_value_end), the request's stop token is forced.
- `slmbench_schema`: the JSON Schema vLLM's structured outputs constrain the request to, with the
  json.dumps layout (`x-guidance`, the grammar slmbench.constrained builds on the hf backend). Once
  no more than `closing_reserve` tokens are left, `closing_token` is forced, as on the hf backend.

vLLM applies the grammar's mask before the sampler runs this, so where nothing is forced the model
picks among the tokens the grammar allows. This module runs in vLLM's own Python (torch,
transformers, numpy and llguidance are there); slmbench.vllm_server puts it and the three modules
it reads (constrained, jsontext, errors) on that Python's path, and nothing else of slmbench's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from slmbench import constrained
from slmbench.jsontext import json_value_end

try:
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor
except ImportError:  # outside vLLM's Python: the per-request parts below still import (and are tested)
    AdapterLogitsProcessor = object

JSON_STOP = "slmbench_json_stop"  # vllm_xargs keys
SCHEMA = "slmbench_schema"


@dataclass
class Vocabulary:
    """What every request's processor reads about the served model's tokens; built once per server."""

    tokenizer: object
    logits_size: int
    eos_id: int
    closers: dict[str, int] = field(init=False)
    may_close: dict[int, bool] = field(default_factory=dict)  # token id -> its text holds "}" or "]"

    def __post_init__(self):
        self.closers = constrained.closer_ids(self.tokenizer, self.logits_size)

    def closes(self, token_id: int) -> bool:
        # as slmbench.generation.JsonEndCriteria does (that module cannot be imported in vLLM's Python):
        # a JSON value can only close on such a token, so only then is the completion decoded and parsed
        if token_id not in self.may_close:
            piece = self.tokenizer.decode([token_id], skip_special_tokens=True)
            self.may_close[token_id] = "}" in piece or "]" in piece
        return self.may_close[token_id]

    def ll_tokenizer(self):
        return constrained._ll_tokenizer(self.tokenizer, constrained.mask_size(self.tokenizer, self.logits_size),
                                         self.eos_id)


def force(logits, token: int):
    logits.fill_(float("-inf"))
    logits[token] = 0.0
    return logits


class JsonStop:
    """One request's JSON stop: forces `stop_id` once its completion holds a complete JSON value."""

    def __init__(self, vocabulary: Vocabulary, stop_id: int, min_tokens: int = 0):
        self.vocabulary, self.stop_id, self.min_tokens = vocabulary, stop_id, min_tokens

    def __call__(self, output_ids: list[int], logits):
        if len(output_ids) < max(self.min_tokens, 1) or not self.vocabulary.closes(output_ids[-1]):
            return logits
        text = self.vocabulary.tokenizer.decode(output_ids, skip_special_tokens=True)
        return force(logits, self.stop_id) if json_value_end(text) is not None else logits


class SchemaClosing:
    """One structured request's closing: its own llguidance matcher follows the tokens vLLM's grammar
    let through; once only the reserve is left, the closing token is forced (None: the model picks)."""

    def __init__(self, vocabulary: Vocabulary, schema_json: str, max_tokens: int):
        import llguidance

        self.vocabulary, self.max_tokens = vocabulary, max_tokens
        self.matcher = llguidance.LLMatcher(vocabulary.ll_tokenizer(), constrained._grammar(schema_json))
        reserve = constrained.closing_reserve(json.loads(schema_json), vocabulary.tokenizer)
        self.reserve = min(reserve or 0, max_tokens)  # None: a schema it cannot bound is not closed
        self.line = np.full((constrained.mask_size(vocabulary.tokenizer, vocabulary.logits_size) + 31) // 32, -1,
                            dtype=np.int32)
        self.consumed = 0

    def __call__(self, output_ids: list[int], logits):
        for token in output_ids[self.consumed:]:
            if not self.matcher.is_stopped() and not self.matcher.is_error():
                self.matcher.consume_token(token)
        self.consumed = len(output_ids)
        if self.max_tokens - len(output_ids) > self.reserve or self.matcher.is_error():
            return logits
        self.matcher.unsafe_compute_mask_ptr(self.line.ctypes.data, self.line.nbytes)
        pick = constrained.closing_token(self.line, self.matcher, self.vocabulary.closers, self.vocabulary.tokenizer)
        return logits if pick is None else force(logits, pick)


class SlmbenchLogitsProcessor(AdapterLogitsProcessor):
    """vLLM's side: one per server, a per-request processor for the requests that ask for one."""

    def __init__(self, vllm_config, device, is_pin_memory: bool):
        super().__init__(vllm_config, device, is_pin_memory)
        self.model_config = vllm_config.model_config
        self.vocabulary: Vocabulary | None = None  # built on the first request that needs it

    def is_argmax_invariant(self) -> bool:
        return False  # it changes greedy picks: it must run for greedy requests too

    def _vocabulary(self) -> Vocabulary:
        if self.vocabulary is None:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(self.model_config.tokenizer)
            self.vocabulary = Vocabulary(tokenizer, self.model_config.get_vocab_size(), tokenizer.eos_token_id)
        return self.vocabulary

    def new_req_logits_processor(self, params):
        args = params.extra_args or {}
        if SCHEMA in args:  # the grammar forces the stop once the value is complete: no JSON stop needed
            return SchemaClosing(self._vocabulary(), args[SCHEMA], params.max_tokens)
        if args.get(JSON_STOP):
            vocabulary = self._vocabulary()
            stop_id = next(iter(params.stop_token_ids or []), vocabulary.eos_id)
            return JsonStop(vocabulary, stop_id, params.min_tokens or 0)
        return None
