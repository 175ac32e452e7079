"""Training benchmark: LoRA train tokens/s with completion-only vs full logits, bf16 autocast vs fp32.

Run:  python -m slmbench.bench.training_benchmark [--models NAME ...] [--task it_entities] [--batch-size 4]
                                          [--steps 2] [--repeats 2] [--threads N] [--out bench_results/training.json]

Each model trains through the recipe's own Trainer (training/lora.py) on one fixed batch of the
task's train split, the same batch at every step. Each configuration's first step is a warm-up
and is not timed. Within a repeat the four configurations run back to back (interleaved), each
from the same initial adapter, and the best repeat counts. Ratios are against full logits + fp32
measured in the same run. `loss@1` is the first step's loss: completion-only and full logits
must agree on it (exactly in fp32), which checks that the faster loss is the same loss.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from peft import get_peft_model_state_dict, set_peft_model_state_dict
from transformers import PrinterCallback, TrainerCallback

from slmbench.bench.report import print_and_save
from slmbench.loading import load_model
from slmbench.registry import OFFLINE_MODELS
from slmbench.tasks import resolve_task
from slmbench.training.config import make_config, with_target_modules
from slmbench.training.data import IGNORE, PadCollator, build_examples
from slmbench.training.lora import CompletionLossTrainer, release_from_trainer, training_arguments, wrap_with_lora

# (completion_only_logits, bf16); the last one is the baseline
CONFIGURATIONS = [(True, True), (True, False), (False, True), (False, False)]


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step and the loss it logged."""

    def __init__(self):
        self.seconds: list[float] = []
        self.losses: list[float] = []
        self._started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._started)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])


def timed_run(model, config, batch: list[dict], pad_token_id: int, workdir: Path) -> StepTimer:
    """Train `config.max_steps` steps on the same batch, in order, through the recipe's Trainer."""
    args = replace(training_arguments(config, workdir, evaluate=False), train_sampling_strategy="sequential",
                   disable_tqdm=True, logging_steps=1)
    trainer = CompletionLossTrainer(model=model, args=args, train_dataset=batch * config.max_steps,
                                    data_collator=PadCollator(pad_token_id),
                                    completion_only_logits=config.completion_only_logits)
    timer = StepTimer()
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(timer)
    trainer.train()
    release_from_trainer(trainer)  # the next configuration prepares the model afresh (its own autocast)
    return timer


def measure_model(name: str, task: str, batch_size: int, steps: int, repeats: int) -> list[dict]:
    """The four configurations on one model, interleaved within each repeat."""
    loaded = load_model(name, dtype="float32")
    base = with_target_modules(make_config(name, task, "balanced", batch_size=batch_size, micro_batch_size=batch_size,
                                           max_steps=steps + 1),
                               loaded.model.config.model_type)
    batch = build_examples(loaded, resolve_task(task), "train", base.max_seq_len).examples[:batch_size]
    tokens = sum(len(e["input_ids"]) for e in batch)
    counted = sum(sum(label != IGNORE for label in e["labels"][1:]) for e in batch)
    model = wrap_with_lora(loaded, base)
    initial = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
    runs: dict[tuple, list[StepTimer]] = {c: [] for c in CONFIGURATIONS}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(repeats):
            for completion_only, bf16 in CONFIGURATIONS:
                set_peft_model_state_dict(model, initial)
                config = replace(base, completion_only_logits=completion_only, bf16=bf16)
                runs[(completion_only, bf16)].append(timed_run(model, config, batch, loaded.tokenizer.pad_token_id,
                                                               Path(workdir)))
    rows = []
    for (completion_only, bf16), timers in runs.items():
        step_seconds = [sum(t.seconds[1:]) / len(t.seconds[1:]) for t in timers]  # first step is warm-up
        rows.append({
            "model": name, "task": task, "logits": "completion-only" if completion_only else "full",
            "precision": "bf16 autocast" if bf16 else "fp32", "batch_size": batch_size, "timed_steps": steps,
            "tokens_per_step": tokens, "loss_tokens_per_step": counted, "step_seconds": min(step_seconds),
            "tokens_per_sec": tokens / min(step_seconds), "tokens_per_sec_each_repeat": [tokens / s for s in step_seconds],
            "first_step_loss": timers[0].losses[0],
        })
    baseline = rows[-1]["tokens_per_sec"]
    for row in rows:
        row["speedup_vs_full_fp32"] = row["tokens_per_sec"] / baseline
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(OFFLINE_MODELS))
    parser.add_argument("--task", default="it_entities")
    parser.add_argument("--batch-size", type=int, default=4, help="examples in the fixed batch")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per run, after one warm-up step")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs per configuration (best counts)")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice, one per core)")
    parser.add_argument("--out", type=Path, default=Path("bench_results/training.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.threads:
        torch.set_num_threads(args.threads)

    started = time.perf_counter()
    rows = [row for name in args.models for row in measure_model(name, args.task, args.batch_size, args.steps, args.repeats)]
    headers = ["model", "logits", "precision", "tokens/step", "s/step", "train tok/s", "vs full fp32", "loss@1"]
    table = [[r["model"], r["logits"], r["precision"], r["tokens_per_step"], r["step_seconds"], r["tokens_per_sec"],
              r["speedup_vs_full_fp32"], r["first_step_loss"]] for r in rows]
    print_and_save(table, headers, rows, args.out, floatfmt=".3f", wall_seconds=round(time.perf_counter() - started, 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
