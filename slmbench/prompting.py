"""Few-shot prompts: a task's prompt preceded by K worked examples from its train split.

The examples for a sample are drawn with a random generator seeded by (seed, sample id), so a
sample gets the same examples whatever else is evaluated with it (``--bench-limit`` or the order
of the split does not change them), and another seed draws others. A sample never sees itself:
examples with its id or with an identical input are left out of the draw.

Rendering is done here, once, for every caller (bench, ``slmbench evaluate``, training): instruct
models get the examples as earlier user/assistant chat turns, base models as plain text, each
example's prompt followed by its reference completion.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

from slmbench.errors import DatasetError

if TYPE_CHECKING:  # loading.py renders through this module: importing the tasks here would load them all
    from slmbench.tasks.core import Sample, Task

EXAMPLE_SEPARATOR = "\n\n"  # between worked examples in a base model's text prompt


@dataclass(frozen=True)
class FewShotPrompt:
    """A user prompt preceded by worked examples.

    Attributes:
        examples: (prompt, completion) pairs, shown in this order before `query`.
        query: the prompt the model answers.
        example_ids: the sample ids of the examples (for provenance).
    """

    examples: tuple[tuple[str, str], ...]
    query: str
    example_ids: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.query


Prompt = Union[str, FewShotPrompt]


@dataclass(frozen=True)
class FewShot:
    """How many worked examples each prompt gets, and the seed that picks them."""

    k: int
    seed: int = 0

    def __post_init__(self):
        if self.k < 0:
            raise ValueError(f"few-shot K must be 0 or more, got {self.k}")


def shots_option(value: str) -> int:
    """argparse type of ``--fewshot`` / ``--bench-fewshot``: a number of worked examples, 0 or more."""
    if not value.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of worked examples (0 or more)")
    return int(value)


def chat_messages(prompt: Prompt) -> list[dict[str, str]]:
    """The prompt as chat turns: one user/assistant pair per example, then the user query."""
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    turns = []
    for example_prompt, completion in prompt.examples:
        turns += [{"role": "user", "content": example_prompt}, {"role": "assistant", "content": completion}]
    return turns + [{"role": "user", "content": prompt.query}]


def plain_text(prompt: Prompt) -> str:
    """The prompt as a base model reads it: each example's prompt and answer, then the query."""
    if isinstance(prompt, str):
        return prompt
    shown = [f"{example_prompt} {completion}" for example_prompt, completion in prompt.examples]
    return EXAMPLE_SEPARATOR.join([*shown, prompt.query])


def render(tokenizer, chat: bool, prompt: Prompt) -> str:
    """The exact text a model sees: its chat template over `chat_messages`, or `plain_text`."""
    if not chat:
        return plain_text(prompt)
    return tokenizer.apply_chat_template(chat_messages(prompt), tokenize=False, add_generation_prompt=True)


def pick_examples(sample: Sample, pool: list[Sample], k: int, seed: int) -> list[Sample]:
    """K examples from `pool` for `sample`, never the sample itself (same id or identical input)."""
    if k == 0:
        return []
    own_input = _input_key(sample.input)
    candidates = [s for s in pool if s.id != sample.id and _input_key(s.input) != own_input]
    if len(candidates) < k:
        raise DatasetError(f"few-shot: {k} examples wanted for sample {sample.id}, but the train split has only "
                           f"{len(candidates)} other samples with a different input; lower the few-shot K")
    # random.Random seeds a str through SHA-512: the same draw on every machine and Python run.
    return random.Random(f"{seed}:{sample.id}").sample(candidates, k)


def task_prompts(task: Task, samples: list[Sample], fewshot: FewShot | None = None,
                 pool: list[Sample] | None = None) -> list[Prompt]:
    """The task's prompt for each sample, with `fewshot.k` worked examples from `pool` (default: train).

    Args:
        task: the task whose prompt builder and reference completions are used.
        samples: the samples to prompt for.
        fewshot: K and seed; None or K=0 gives the plain 0-shot prompts.
        pool: where examples come from; the task's train split when None.
    """
    if fewshot is None or fewshot.k == 0:
        return [task.prompt(s) for s in samples]
    pool = task.samples("train") if pool is None else pool
    prompts = []
    for sample in samples:
        examples = pick_examples(sample, pool, fewshot.k, fewshot.seed)
        prompts.append(FewShotPrompt(tuple((task.prompt(e), task.completion(e)) for e in examples),
                                     task.prompt(sample), tuple(e.id for e in examples)))
    return prompts


def provenance(fewshot: FewShot | None, prompts: list[Prompt], samples: list[Sample]) -> dict:
    """What records keep about the few-shot setting: K, seed and each sample's example ids."""
    if fewshot is None or fewshot.k == 0:
        return {"k": 0}
    return {"k": fewshot.k, "seed": fewshot.seed, "pool": "train",
            "example_ids": {s.id: list(p.example_ids) for s, p in zip(samples, prompts)}}


def _input_key(value) -> str:
    """A comparable form of a sample input (text, or a JSON object such as iris's features)."""
    return value.strip() if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)
