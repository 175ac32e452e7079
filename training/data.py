"""Training examples: the task's own prompt, rendered as the model sees it, then the target and EOS.

Truncation policy: an example longer than `max_seq_len` keeps its whole prompt and loses the
tail of its completion (and its EOS); such examples are counted, logged and recorded in
training_config.json, never dropped. A prompt that alone fills `max_seq_len` leaves nothing to
learn from, so it is an error naming the sample. Cutting the prompt from the left instead would
remove the chat template's header and the instructions, and teach the model on prompts it never
sees at test time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler
from transformers.trainer_pt_utils import get_length_grouped_indices

from slmbench.errors import TrainingConfigError
from slmbench.loading import LoadedModel
from slmbench.tasks import Task

log = logging.getLogger(__name__)
IGNORE = -100  # label of positions that carry no loss (prompt and padding)


@dataclass(frozen=True)
class ExampleSet:
    """One split, tokenized. Each example is a dict (`input_ids`, `labels`, `sample_id`) as Trainer wants."""

    split: str
    examples: list[dict]
    truncated: tuple[str, ...]  # ids of samples whose completion was cut to max_seq_len

    @property
    def tokens(self) -> int:
        return sum(len(e["input_ids"]) for e in self.examples)

    def sha256(self) -> str:
        """Hash of the exact token ids and labels: changes with data, prompt, template or tokenizer."""
        digest = hashlib.sha256()
        for example in self.examples:
            digest.update(json.dumps([example["input_ids"], example["labels"]]).encode())
        return digest.hexdigest()


def encode_example(loaded: LoadedModel, prompt: str, completion: str, max_seq_len: int) -> tuple[dict, bool]:
    """Token ids and labels of one example; the bool says whether the completion was cut.

    The prompt is tokenized on its own, exactly as `generate` tokenizes it, so training sees the
    same prompt tokens as evaluation; labels are IGNORE on the prompt, the ids on completion + EOS.
    """
    tokenizer = loaded.tokenizer
    prompt_ids = tokenizer(loaded.render(prompt), add_special_tokens=not loaded.chat)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(prompt_ids) >= max_seq_len:
        raise TrainingConfigError(f"the prompt alone is {len(prompt_ids)} tokens, max_seq_len is {max_seq_len}: "
                                  f"raise --max-seq-len")
    room = max_seq_len - len(prompt_ids)
    example = {"input_ids": prompt_ids + completion_ids[:room],
               "labels": [IGNORE] * len(prompt_ids) + completion_ids[:room]}
    return example, len(completion_ids) > room


def build_examples(loaded: LoadedModel, task: Task, split: str, max_seq_len: int) -> ExampleSet:
    """Tokenize every sample of a split with the task's prompt builder and completion."""
    if loaded.tokenizer.eos_token_id is None:
        raise TrainingConfigError(f"{loaded.spec.name}: the tokenizer has no EOS token, so a completion cannot be "
                                  f"taught to end")
    samples = task.samples(split)
    if not samples:
        raise TrainingConfigError(f"{task.data_path(split)}: the {split} split has no samples; training needs at "
                                  f"least one")
    examples, truncated = [], []
    for sample in samples:
        try:
            example, was_cut = encode_example(loaded, task.prompt(sample), task.completion(sample), max_seq_len)
        except TrainingConfigError as error:
            raise TrainingConfigError(f"{task.name} {split} sample {sample.id}: {error}") from None
        examples.append({**example, "sample_id": sample.id})
        if was_cut:
            truncated.append(sample.id)
    if truncated:
        log.warning("%s/%s: %d of %d examples exceed max_seq_len=%d and lose the end of their completion "
                    "(first: %s); raise --max-seq-len to keep them whole",
                    task.name, split, len(truncated), len(examples), max_seq_len, truncated[0])
    return ExampleSet(split, examples, tuple(truncated))


@dataclass(frozen=True)
class PadCollator:
    """Right-pads a batch: pad ids with attention 0 and labels IGNORE."""

    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        input_ids = torch.full((len(examples), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
        attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
        for row, example in enumerate(examples):
            length = len(example["input_ids"])
            input_ids[row, :length] = torch.tensor(example["input_ids"])
            labels[row, :length] = torch.tensor(example["labels"])
            attention_mask[row, :length] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def filler(pad_token_id: int) -> dict:
    """A one-token example that carries no loss: what `StepSampler` tops an epoch up with.

    Its token counts in the run's train tokens (a few per epoch on several processes, none on one).
    """
    return {"input_ids": [pad_token_id], "labels": [IGNORE], "sample_id": None}


class StepSampler(Sampler):
    """The train order of an epoch: examples grouped by length, topped up with the filler.

    Examples are shuffled and grouped by similar length (less padding) over whole optimizer steps
    of every process, so the steps hold the same examples on any number of processes (the
    Trainer's own grouping works on one process's share, which changes with their number). With
    several processes the epoch is topped up with the filler (index `len(lengths)` of the dataset)
    to whole passes on every process; otherwise accelerate would fill the last step with examples
    from the start of the epoch and train on them twice.
    """

    def __init__(self, lengths: list[int], step_size: int, fill_to: int = 1):
        super().__init__()
        self.lengths, self.step_size, self.fill_to = lengths, step_size, fill_to

    def __len__(self) -> int:
        return len(self.lengths) + (-len(self.lengths)) % self.fill_to

    def __iter__(self):
        order = get_length_grouped_indices(self.lengths, self.step_size)  # torch's seeded global generator
        return iter(order + [len(self.lengths)] * (len(self) - len(order)))
