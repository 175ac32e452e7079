"""Gradient accumulation must not change the objective (training/lora.py, training/loss.py).

One pass of 4 examples and two passes of 2 must produce the same accumulated gradient, hence the
same LoRA update, when the examples' completions have different lengths: a per-pass token mean
would weigh the tokens of the shorter pass more.
"""

from __future__ import annotations

import pytest
import torch
from transformers import TrainerCallback

from slmbench.loading import load_model
from slmbench.tasks import TASKS
from slmbench.training.config import make_config, with_target_modules
from slmbench.training.data import IGNORE, ExampleSet, build_examples
from slmbench.training.lora import make_trainer, wrap_with_lora

MODEL = "tiny-random-llama"


class GradientSnapshot(TrainerCallback):
    """The accumulated LoRA gradients of each optimizer step, taken just before the optimizer uses them."""

    def __init__(self, model):
        self.model, self.steps = model, []

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.steps.append({name: p.grad.detach().clone() for name, p in self.model.named_parameters()
                           if p.requires_grad and p.grad is not None})


@pytest.fixture(scope="module")
def uneven_examples() -> ExampleSet:
    """Four products examples whose completions differ in length (so a per-pass mean would reweight)."""
    loaded = load_model(MODEL, dtype="float32")
    examples = build_examples(loaded, TASKS["products"], "train", 512).examples[:4]
    lengths = [sum(label != IGNORE for label in e["labels"]) for e in examples]
    assert len(set(lengths)) > 1, f"completion lengths {lengths} are all equal: the test would prove nothing"
    return ExampleSet("train", examples, ())


def one_step(examples: ExampleSet, micro_batch_size: int, tmp_path) -> tuple[dict, float]:
    """Accumulated gradients and logged loss of one optimizer step over the 4 examples, in float32."""
    config = make_config(MODEL, "products", "fast", batch_size=4, micro_batch_size=micro_batch_size, max_steps=1,
                         lora_dropout=0.0, bf16=False, lr=1e-3)
    loaded = load_model(MODEL, dtype="float32")
    model = wrap_with_lora(loaded, with_target_modules(config, loaded.model.config.model_type))
    trainer, _ = make_trainer(model, config, examples, None, tmp_path / f"micro{micro_batch_size}",
                              loaded.tokenizer.pad_token_id)
    snapshot = GradientSnapshot(model)
    trainer.add_callback(snapshot)
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return snapshot.steps[0], losses[0]


def test_two_passes_of_two_give_the_update_of_one_pass_of_four(uneven_examples, tmp_path):
    whole, whole_loss = one_step(uneven_examples, 4, tmp_path)
    split, split_loss = one_step(uneven_examples, 2, tmp_path)
    assert whole and set(split) == set(whole) and any(g.abs().sum() > 0 for g in whole.values())
    for name in whole:
        torch.testing.assert_close(split[name], whole[name], rtol=1e-4, atol=1e-7, msg=f"gradient of {name}")
    assert split_loss == pytest.approx(whole_loss, rel=1e-5)
