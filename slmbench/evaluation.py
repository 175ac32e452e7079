"""Evaluating a loaded model on a task: generate (through the cache), then score.

One function shared by the bench plugin and `slmbench evaluate`, so both report the same numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from slmbench.cache import GenerationCache
from slmbench.generation import (DEFAULT_BATCH_SIZE, PROMPT_TOO_LONG, Completion, DecodingConfig, GenerationRun, generate,
                                 prompt_overflow)
from slmbench.loading import LoadedModel
from slmbench.prompting import FewShot, task_prompts
from slmbench.server_engine import SERVER_ERROR, ServerEngine
from slmbench.tasks.core import Sample, SampleScore, Task
from slmbench.tasks.scoring import TaskResult, score_outputs


@dataclass(frozen=True)
class Evaluation:
    """A model's outputs on a task's samples and the metrics they earn."""

    samples: list[Sample]
    run: GenerationRun
    result: TaskResult
    seconds: float  # generation (zero-ish when cached) plus scoring
    fewshot: FewShot | None = None  # worked examples in each prompt (None: 0-shot)
    decoding: DecodingConfig = DecodingConfig()  # how the outputs were decoded


def decoding_for(task: Task, structured: bool = False) -> DecodingConfig:
    """The decoding settings every evaluation of `task` uses (greedy, the task's token budget);
    `structured` constrains a JSON task's outputs to its JSON Schema (ignored for text tasks)."""
    return DecodingConfig(max_new_tokens=task.max_new_tokens, stop_at_json_end=task.is_json,
                          structured=structured and task.is_json)


def evaluate(loaded: LoadedModel, task: Task, samples: list[Sample], *, batch_size: int = DEFAULT_BATCH_SIZE,
             cache: GenerationCache | None = None, resamples: int = 1000, fewshot: FewShot | None = None,
             server: ServerEngine | None = None, structured: bool = False) -> Evaluation:
    """Generate one output per sample and score them with 95% bootstrap intervals.

    With `fewshot`, each prompt starts with K worked examples from the task's train split.
    A sample whose prompt does not fit the model's context is not generated: it is scored as an
    empty output (a failure on every metric that needs an answer), explained "not generated:
    prompt is N tokens, context M", and still counted in N. With `server`, an OpenAI-compatible
    server generates (slmbench.server_engine); a sample it gives no usable answer for is scored as empty too.
    With `structured`, a JSON task's outputs are constrained to its JSON Schema (see decoding_for).
    """
    started, decoding = time.perf_counter(), decoding_for(task, structured)
    run = generate(loaded, task_prompts(task, samples, fewshot), decoding, batch_size=batch_size, cache=cache,
                   server=server, schema=task.schema if task.is_json else None)
    result = score_outputs(task, [c.text for c in run.completions], samples, resamples=resamples)
    result = replace(result, scores=[_explain_not_generated(loaded, decoding, score, completion)
                                     for score, completion in zip(result.scores, run.completions)])
    return Evaluation(samples, run, result, time.perf_counter() - started, fewshot, decoding)


def _explain_not_generated(loaded: LoadedModel, decoding: DecodingConfig, score: SampleScore,
                           completion: Completion) -> SampleScore:
    if completion.finish_reason == SERVER_ERROR:
        return replace(score, explanation="not generated: the server gave no usable answer (its error is logged)")
    if completion.finish_reason != PROMPT_TOO_LONG:
        return score
    reason = prompt_overflow(loaded, completion.prompt_tokens, decoding.max_new_tokens)
    return replace(score, explanation=f"not generated: {reason}")
