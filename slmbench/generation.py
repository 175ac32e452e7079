"""The generation engine: batched greedy decoding with a cache, used by bench, training and the CLI.

Prompts are sorted by length and decoded in left-padded batches. Completed batches are written to
the cache at once, so reruns generate nothing and interrupted runs resume.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
from tqdm.auto import tqdm
from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from slmbench.cache import GenerationCache, generation_key
from slmbench.defaults import DEFAULT_BATCH_SIZE
from slmbench.jsontext import json_value_end
from slmbench.loading import LoadedModel
from slmbench.prompting import Prompt
from slmbench.server_engine import SERVER_ERROR, ServerEngine

log = logging.getLogger(__name__)
PROMPT_TOO_LONG = "prompt_too_long"  # finish_reason of a prompt refused before generation
UNSET_LENGTH = 10**12  # tokenizers without a limit report model_max_length = 1e30 (transformers' sentinel)


@dataclass(frozen=True)
class DecodingConfig:
    """Greedy decoding settings; every field is part of the generation cache key."""

    max_new_tokens: int = 256  # upper bound on completion length; longer = slower worst case
    stop_at_json_end: bool = False  # stop once the first top-level JSON value closes (JSON tasks)
    min_new_tokens: int = 0  # benchmarks force fixed-length decodes with this; 0 for evaluation
    structured: bool = False  # constrain completions to the JSON Schema `generate` is given (structured outputs)


@dataclass(frozen=True)
class Completion:
    """One prompt's completion. `seconds` is the wall time of the batch that produced it."""

    prompt: Prompt  # as given to `generate` (a few-shot prompt keeps its examples)
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "eos", "length", "json_end", PROMPT_TOO_LONG (not generated, text ""), or
    # SERVER_ERROR (a server engine gave no usable answer, text "")
    seconds: float
    cached: bool = False


@dataclass(frozen=True)
class GenerationRun:
    """All completions of one call, in prompt order, with the throughput of what was generated."""

    completions: list[Completion]
    generated_tokens: int
    seconds: float

    @property
    def tokens_per_sec(self) -> float:
        return self.generated_tokens / self.seconds if self.seconds > 0 else 0.0

    @property
    def cache_hits(self) -> int:
        return sum(c.cached for c in self.completions)


class JsonEndCriteria(StoppingCriteria):
    """Marks a sequence finished as soon as its completion holds a JSON value the json parser accepts.

    Incremental: a value can only close on a token whose text holds "}" or "]", so the completion is
    decoded and parsed (slmbench.jsontext.json_value_end) only after such a token, not at every step.
    """

    def __init__(self, tokenizer, prompt_length: int):
        self.tokenizer = tokenizer
        self.prompt_length = prompt_length
        self.stopped_at: dict[int, int] = {}  # row -> number of completion tokens when it closed
        self._closes: dict[int, bool] = {}  # token id -> whether its text holds a closing bracket

    def _may_close(self, token_id: int) -> bool:
        if token_id not in self._closes:
            piece = self.tokenizer.decode([token_id], skip_special_tokens=True)
            self._closes[token_id] = "}" in piece or "]" in piece
        return self._closes[token_id]

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        completion = input_ids[:, self.prompt_length:]
        if completion.shape[1] == 0:
            return done
        last = completion[:, -1].tolist()
        for row in range(input_ids.shape[0]):
            if row in self.stopped_at:
                done[row] = True
            elif self._may_close(last[row]) and json_value_end(
                    self.tokenizer.decode(completion[row], skip_special_tokens=True)) is not None:
                self.stopped_at[row] = completion.shape[1]
                done[row] = True
        return done


def eos_token_ids(loaded: LoadedModel) -> list[int]:
    """Every token id that ends a completion (tokenizer EOS plus the model's generation config)."""
    ids = {loaded.tokenizer.eos_token_id}
    configured = loaded.model.generation_config.eos_token_id
    ids.update(configured if isinstance(configured, list) else [configured])
    return sorted(i for i in ids if i is not None)


def context_window(loaded: LoadedModel) -> int | None:
    """Tokens the model can attend to: the smaller of the config's max_position_embeddings and the
    tokenizer's model_max_length, each where it is set; None when neither is."""
    if loaded.weights_loaded or loaded.checkpoint_dir is None:
        config = loaded.model.config
    else:  # deferred weights (a server generates): the config file says it without loading them
        config = _checkpoint_config(loaded.checkpoint_dir)
    config = config.get_text_config() if hasattr(config, "get_text_config") else config
    limits = (getattr(config, "max_position_embeddings", None), getattr(loaded.tokenizer, "model_max_length", None))
    return min((int(n) for n in limits if isinstance(n, int) and 0 < n < UNSET_LENGTH), default=None)


@lru_cache(maxsize=8)  # asked once per prompt: read the file once per checkpoint
def _checkpoint_config(directory):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(directory, local_files_only=True)


def prompt_overflow(loaded: LoadedModel, prompt_tokens: int, max_new_tokens: int) -> str | None:
    """Why a prompt of `prompt_tokens` cannot be completed within the context, or None when it fits.

    A prompt must leave room for max_new_tokens: past the context a model's outputs are garbage
    (or it fails), and attention memory grows with the square of the length. We never truncate,
    since a cut prompt would be scored as if the model had seen the sample.
    """
    context = context_window(loaded)
    if context is None or prompt_tokens + max_new_tokens <= context:
        return None
    room = f", which leaves {context - max_new_tokens} for the prompt with max_new_tokens {max_new_tokens}"
    return f"prompt is {prompt_tokens} tokens, context {context}" + ("" if prompt_tokens > context else room)


def generate(loaded: LoadedModel, prompts: list[Prompt], decoding: DecodingConfig = DecodingConfig(), *,
             batch_size: int = DEFAULT_BATCH_SIZE, cache: GenerationCache | None = None,
             static_cache: bool = False, progress: bool | None = None, server: ServerEngine | None = None,
             schema: dict | None = None) -> GenerationRun:
    """Greedy completions for prompts, served from the cache where possible.

    Args:
        loaded: the model (and adapter) from `load_model`.
        prompts: user prompts (or few-shot prompts); instruct models get them in their chat template.
        decoding: decoding settings (part of the cache key).
        batch_size: prompts decoded together; does not change greedy outputs in float32.
        cache: where to read and write completions; None generates everything.
        static_cache: use a static KV cache. Off by default: on our 2-core CPU, in two interleaved
            repeats at batch 16, it was 4-7% slower than the dynamic cache; it may help elsewhere.
        progress: show a tqdm bar; None shows it only on a terminal.
        server: generate through this OpenAI-compatible server (vLLM, llama.cpp...) instead of
            transformers; the model's weights are then never loaded here.
        schema: the JSON Schema completions are constrained to when `decoding.structured` (on the hf
            backend through slmbench.constrained, on a server through its structured outputs).
    """
    if decoding.structured and schema is None:
        raise ValueError("structured decoding needs the JSON Schema to constrain to")
    schema = schema if decoding.structured else None
    rendered = [loaded.render(p) for p in prompts]
    keys = generation_keys(loaded, rendered, decoding, server, schema, batch_size) if cache else [None] * len(prompts)
    results: list[Completion | None] = [None] * len(prompts)
    for index, key in enumerate(keys):
        record = cache.get(key) if cache else None
        if record is not None:
            results[index] = Completion(**{**record, "prompt": prompts[index], "cached": True})
    todo = [i for i, done in enumerate(results) if done is None]
    lengths = {i: len(loaded.tokenizer(rendered[i], add_special_tokens=not loaded.chat)["input_ids"]) for i in todo}
    for index in _refuse_over_long(loaded, lengths, decoding):
        results[index] = Completion(prompts[index], "", lengths[index], 0, PROMPT_TOO_LONG, 0.0)
    todo = sorted((i for i in todo if results[i] is None), key=lambda i: (lengths[i], i))
    if server is not None:
        return _generate_on_server(server, loaded, prompts, rendered, todo, results, keys, decoding, schema, cache)
    generated_tokens, seconds = 0, 0.0
    with tqdm(total=len(todo), desc=f"generate {loaded.label}", unit="prompt", disable=None if progress is None else not progress,
              leave=False) as bar:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            completions, elapsed = _generate_batch(loaded, [rendered[i] for i in batch], decoding, static_cache, schema)
            for index, completion in zip(batch, completions):
                results[index] = Completion(**{**asdict(completion), "prompt": prompts[index]})
                if cache:
                    cache.put(keys[index], {k: v for k, v in asdict(completion).items() if k not in ("prompt", "cached")})
                generated_tokens += completion.completion_tokens
            seconds += elapsed
            bar.update(len(batch))
    return GenerationRun(list(results), generated_tokens, seconds)


def generation_keys(loaded: LoadedModel, rendered: list[str], decoding: DecodingConfig,
                    server: ServerEngine | None = None, schema: dict | None = None,
                    batch_size: int = DEFAULT_BATCH_SIZE) -> list[str]:
    """The cache key of each rendered prompt's completion (the schema counts only when decoding is
    structured, the batch size only on transformers here)."""
    identity = server.identity(loaded) if server is not None else None
    constrained_to = schema if decoding.structured else None
    return [generation_key(loaded, text, decoding, identity, constrained_to, batch_size) for text in rendered]


def _generate_on_server(server: ServerEngine, loaded: LoadedModel, prompts: list[Prompt], rendered: list[str],
                        todo: list[int], results: list, keys: list, decoding: DecodingConfig, schema: dict | None,
                        cache: GenerationCache | None) -> GenerationRun:
    """The prompts in `todo` completed by the server, each cached as it arrives (errors never are)."""
    generated = 0

    def done(position: int, fields: dict) -> None:
        nonlocal generated
        index = todo[position]
        results[index] = Completion(prompts[index], **fields)
        generated += fields["completion_tokens"]
        if cache and fields["finish_reason"] != SERVER_ERROR:
            cache.put(keys[index], fields)

    seconds = server.complete(loaded, [prompts[i] for i in todo], [rendered[i] for i in todo], decoding,
                              schema, done) if todo else 0.0
    return GenerationRun(list(results), generated, seconds)


def _refuse_over_long(loaded: LoadedModel, lengths: dict[int, int], decoding: DecodingConfig) -> list[int]:
    """Indices of prompts too long to generate, each logged with its reason."""
    refused = []
    for index, tokens in lengths.items():
        reason = prompt_overflow(loaded, tokens, decoding.max_new_tokens)
        if reason:
            log.warning("%s: prompt %d not generated: %s", loaded.label, index + 1, reason)
            refused.append(index)
    return refused


def _generate_batch(loaded: LoadedModel, texts: list[str], decoding: DecodingConfig,
                    static_cache: bool, schema: dict | None = None) -> tuple[list[Completion], float]:
    tokenizer = loaded.tokenizer
    encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=not loaded.chat)
    encoded = encoded.to(next(loaded.model.parameters()).device)
    prompt_length = encoded["input_ids"].shape[1]
    eos_ids = eos_token_ids(loaded)
    json_end = JsonEndCriteria(tokenizer, prompt_length) if decoding.stop_at_json_end else None
    config = GenerationConfig(
        max_new_tokens=decoding.max_new_tokens, min_new_tokens=decoding.min_new_tokens, do_sample=False,
        eos_token_id=eos_ids, pad_token_id=tokenizer.pad_token_id,
        cache_implementation="static" if static_cache else None,
    )
    processors = LogitsProcessorList()
    if schema is not None:
        from slmbench.constrained import SchemaLogitsProcessor  # llguidance, an optional dependency

        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else eos_ids[0]
        logits_size = loaded.model.get_output_embeddings().weight.shape[0]
        processors.append(SchemaLogitsProcessor(tokenizer, json.dumps(schema), eos, logits_size,  # key order kept
                                                decoding.max_new_tokens))
    started = time.perf_counter()  # the grammar and its tokenizer are built above (cached), not timed
    with torch.inference_mode():
        output = loaded.model.generate(**encoded, generation_config=config, logits_processor=processors,
                                       stopping_criteria=StoppingCriteriaList([json_end] if json_end else []))
    elapsed = time.perf_counter() - started
    completions = []
    for row, prompt_tokens in enumerate(encoded["attention_mask"].sum(dim=1).tolist()):
        tokens = output[row, prompt_length:].tolist()
        length, reason = _completion_length(tokens, eos_ids, json_end.stopped_at.get(row) if json_end else None)
        text_tokens = tokens[:length - 1] if reason == "eos" else tokens[:length]
        completions.append(Completion(
            prompt=texts[row], text=tokenizer.decode(text_tokens, skip_special_tokens=True),
            prompt_tokens=prompt_tokens, completion_tokens=length, finish_reason=reason, seconds=elapsed,
        ))
    return completions, elapsed


def _completion_length(tokens: list[int], eos_ids: list[int], json_stop: int | None) -> tuple[int, str]:
    """How many tokens the model really produced for one row, and why it stopped."""
    eos_at = next((i + 1 for i, token in enumerate(tokens) if token in eos_ids), None)
    if json_stop is not None and (eos_at is None or json_stop < eos_at):
        return json_stop, "json_end"
    if eos_at is not None:
        return eos_at, "eos"
    return len(tokens), "length"
