"""The training loss: next-token cross-entropy over completion tokens only.

With `completion_only=True` the vocabulary projection (lm_head) runs only at the positions whose
next token is a completion token. Gemma 3's 262k-token vocabulary makes that projection, and the
float32 logits it feeds to the loss, the largest cost of a step; prompts are most of every example.
The selection is done by the model's own forward (`logits_to_keep` given a boolean
(batch, sequence) mask, transformers >= 5), so it passes through the PEFT wrapper, DDP and
accelerate's autocast unchanged, and keeps any model-specific logit processing (e.g. Gemma's
final soft-capping). `completion_only=False` is the plain causal-LM loss on full logits.

Normalisation: with gradient accumulation a step runs several passes, and a per-pass token mean
would weigh a token of a short-completion pass more than one of a long-completion pass, so the
micro-batch size would change the objective. Given `num_items` (the completion tokens of the whole
optimizer step, which the Trainer counts as `num_items_in_batch`), the loss is the pass's token
sum over that count: the passes of a step add up to the step's token mean, whatever the split.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slmbench.errors import TrainingConfigError
from slmbench.training.data import IGNORE


def causal_lm_loss(model: torch.nn.Module, batch: dict[str, torch.Tensor], completion_only: bool = True,
                   num_items: int | torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the batch's completion tokens (labels != IGNORE), next-token shifted.

    Args:
        model: a causal LM, bare or wrapped (PeftModel, DDP).
        batch: `input_ids`, `attention_mask` and `labels` from `PadCollator`.
        completion_only: compute logits only where the loss counts; False computes them everywhere.
        num_items: divide the token sum by this (the optimizer step's completion tokens); None: by
            this batch's own completion tokens (a plain mean).
    """
    targets = batch["labels"][:, 1:]
    counted = targets != IGNORE  # (batch, seq - 1): position t predicts token t + 1
    # use_cache=False: a training forward needs no KV cache, and the per-layer cache state it would build
    # makes Dynamo recompile each compiled decoder layer (training/compiled.py) until its limit of 8
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "use_cache": False}
    divisor = counted.sum() if num_items is None else num_items
    if not completion_only:
        logits = model(**inputs).logits[:, :-1]
        summed = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE, reduction="sum")
        return summed / divisor
    positions = F.pad(counted, (0, 1), value=False)  # the last position predicts nothing
    logits = model(**inputs, logits_to_keep=positions).logits
    if logits.dim() != 2 or logits.shape[0] != int(counted.sum()):
        raise TrainingConfigError(
            f"{type(model).__name__} ignored the boolean logits_to_keep mask (got logits of shape {tuple(logits.shape)}); "
            f"it needs transformers >= 5 for completion-only logits, or train with --full-logits")
    return F.cross_entropy(logits.float(), targets[counted], reduction="sum") / divisor
