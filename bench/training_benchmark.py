"""Training benchmark: train tokens/s and val loss of LoRA recipes, side by side, against the CPU's ceiling.

Run:  python -m slmbench.bench.training_benchmark [--models NAME ...] [--task it_entities] [--steps 3]
          [--repeats 3] [--recipes naive v1 current ...] [--out bench_results/training.json]

Every recipe is a set of TrainConfig settings (training/config.py) trained through the recipe's own
code (wrap_with_lora, CompletionLossTrainer), from the same seeded LoRA initialisation, on the same
examples in the same order: `--steps + 1` optimizer steps of `--batch-size` examples from the start
of the train split. The first step is a warm-up and is not timed. The val loss after the last step
(first `--val-samples` val examples, completion tokens) shows that a faster recipe learns as much.
Within a repeat the recipes run back to back (interleaved); the median over repeats counts.
Ratios are against `naive` measured in the same run.

The ceiling: the floating-point work of a step (linear layers forward and activation gradients for
every token, the LM head where the recipe computes logits, attention) over the bf16 matmul rate
measured here in the same run. Time it alone: a second job on two cores halves it or worse.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from transformers import PrinterCallback, TrainerCallback

from slmbench.bench.report import print_and_save
from slmbench.loading import load_model
from slmbench.registry import OFFLINE_MODELS
from slmbench.tasks import resolve_task
from slmbench.training.config import TrainConfig, make_config, with_target_modules
from slmbench.training.data import IGNORE, PadCollator, build_examples
from slmbench.training.lora import CompletionLossTrainer, release_from_trainer, training_arguments, wrap_with_lora

# Settings each recipe changes from the preset; `naive` is the ratio baseline, `v1` the recipe before
# the profile (docs/performance.md), `current` TrainConfig's defaults: what `slmbench train` runs;
# `current+compile` the same with compiled decoder layers (`--compile-layers`).
_V1 = {"completion_only_logits": True, "bf16": True, "lora_dropout": 0.05, "attn_implementation": "sdpa"}
RECIPES: dict[str, dict] = {
    "naive": {**_V1, "completion_only_logits": False, "bf16": False},  # full logits, float32
    "v1": _V1,
    "v1+no-dropout": {**_V1, "lora_dropout": 0.0},
    "v1+eager": {**_V1, "attn_implementation": "eager"},
    "current": {},
    "current+compile": {"compile_layers": True},
}


class StepTimer(TrainerCallback):
    """Wall time of each optimizer step."""

    def __init__(self):
        self.seconds: list[float] = []
        self._started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._started)


def matmul_gflops(seconds: float = 3.0, size: int = 2048) -> float:
    """This CPU's bf16 matmul rate (GFLOP/s), measured now: square products for `seconds`."""
    a, b = torch.randn(size, size, dtype=torch.bfloat16), torch.randn(size, size, dtype=torch.bfloat16)
    torch.mm(a, b)
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        torch.mm(a, b)
        count += 1
    return 2 * size ** 3 * count / (time.perf_counter() - started) / 1e9


def step_flops(model: torch.nn.Module, examples: list[dict], completion_only: bool) -> float:
    """Floating-point work of one step on `examples` (see the module docstring)."""
    config = model.config
    vocab, hidden = config.vocab_size, config.hidden_size
    linear = sum(m.weight.numel() for name, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and "lm_head" not in name and "lora_" not in name)
    heads_dim = config.num_attention_heads * getattr(config, "head_dim", hidden // config.num_attention_heads)
    flops = 0.0
    for example in examples:
        tokens = len(example["input_ids"])
        logits_at = sum(label != IGNORE for label in example["labels"][1:]) if completion_only else tokens
        flops += 4 * linear * tokens  # forward + gradients w.r.t. activations (frozen weights need none of their own)
        flops += 4 * vocab * hidden * logits_at  # LM head, forward + backward
        flops += 6 * config.num_hidden_layers * tokens * tokens * heads_dim  # causal QK^T and AV, fwd + bwd
    return flops


def timed_run(loaded, config: TrainConfig, steps: list[list[dict]], val: list[dict], workdir: Path) -> dict:
    """Train on `steps` (one list of examples per optimizer step) from a fresh seeded adapter; time and val loss."""
    model = wrap_with_lora(loaded, config)
    args = replace(training_arguments(config, workdir, evaluate=False), train_sampling_strategy="sequential",
                   disable_tqdm=True, max_steps=len(steps))
    pad = loaded.tokenizer.pad_token_id
    trainer = CompletionLossTrainer(model=model, args=args, train_dataset=[e for step in steps for e in step],
                                    eval_dataset=val, data_collator=PadCollator(pad),
                                    completion_only_logits=config.completion_only_logits)
    timer = StepTimer()
    trainer.remove_callback(PrinterCallback)
    trainer.add_callback(timer)
    trainer.train()
    val_loss = trainer.evaluate()["eval_loss"]
    release_from_trainer(trainer)
    timed = timer.seconds[1:]  # the first step is a warm-up
    tokens = sum(len(e["input_ids"]) for step in steps[1:] for e in step)
    # the warm-up step carries one-off costs: Inductor compiles there (seconds to minutes, once per run)
    return {"tokens_per_sec": tokens / sum(timed), "val_loss": val_loss, "first_step_seconds": timer.seconds[0]}


def measure_model(name: str, task: str, recipes: list[str], batch_size: int, steps: int, repeats: int,
                  val_samples: int, peak_gflops: float) -> list[dict]:
    """Every recipe on one model, interleaved within each repeat; medians over repeats."""
    base_loaded = load_model(name, dtype="float32")
    preset = with_target_modules(make_config(name, task, "fast", batch_size=batch_size), base_loaded.model.config.model_type)
    train = build_examples(base_loaded, resolve_task(task), "train", preset.max_seq_len).examples
    val = build_examples(base_loaded, resolve_task(task), "val", preset.max_seq_len).examples[:val_samples]
    plan = [train[i * batch_size:(i + 1) * batch_size] for i in range(steps + 1)]
    runs: dict[str, list[dict]] = {recipe: [] for recipe in recipes}
    with tempfile.TemporaryDirectory() as workdir:
        for _ in range(repeats):
            for recipe in recipes:
                config = replace(preset, **RECIPES[recipe])
                loaded = replace(base_loaded, model=copy.deepcopy(base_loaded.model))  # each recipe wraps its own copy
                runs[recipe].append(timed_run(loaded, config, plan, val, Path(workdir)))
                del loaded
    timed_examples = [e for step in plan[1:] for e in step]
    tokens = sum(len(e["input_ids"]) for e in timed_examples)
    rows = []
    for recipe, results in runs.items():
        config = replace(preset, **RECIPES[recipe])
        rate = statistics.median(r["tokens_per_sec"] for r in results)
        ceiling = peak_gflops * 1e9 / (step_flops(base_loaded.model, timed_examples, config.completion_only_logits) / tokens)
        rows.append({
            "model": name, "task": task, "recipe": recipe, "settings": RECIPES[recipe] or "TrainConfig defaults",
            "tokens_per_sec": rate, "tokens_per_sec_each_repeat": [r["tokens_per_sec"] for r in results],
            "val_loss": statistics.median(r["val_loss"] for r in results), "ceiling_tokens_per_sec": ceiling,
            "first_step_seconds": statistics.median(r["first_step_seconds"] for r in results),
            "share_of_ceiling": rate / ceiling,
        })
    baseline = next((r["tokens_per_sec"] for r in rows if r["recipe"] == "naive"), None)
    for row in rows:
        row["speedup_vs_naive"] = row["tokens_per_sec"] / baseline if baseline else None
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(OFFLINE_MODELS))
    parser.add_argument("--task", default="it_entities")
    parser.add_argument("--recipes", nargs="+", default=["naive", "v1", "current", "current+compile"], choices=list(RECIPES))
    parser.add_argument("--batch-size", type=int, default=4, help="examples per optimizer step")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per run, after one warm-up step")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs per recipe (the median counts)")
    parser.add_argument("--val-samples", type=int, default=16, help="val examples the loss after training is taken on")
    parser.add_argument("--out", type=Path, default=Path("bench_results/training.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    started = time.perf_counter()
    peak = matmul_gflops()
    rows = [row for name in args.models for row in measure_model(name, args.task, args.recipes, args.batch_size,
                                                                 args.steps, args.repeats, args.val_samples, peak)]
    print(f"bf16 matmul, measured now: {peak:.0f} GFLOP/s; torch threads {torch.get_num_threads()}; "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")
    headers = ["model", "recipe", "train tok/s", "vs naive", "val loss", "ceiling tok/s", "of ceiling", "warm-up step s"]
    table = [[r["model"], r["recipe"], r["tokens_per_sec"], r["speedup_vs_naive"], r["val_loss"],
              r["ceiling_tokens_per_sec"], f"{100 * r['share_of_ceiling']:.0f}%", r["first_step_seconds"]]
             for r in rows]
    print_and_save(table, headers, rows, args.out, floatfmt=".3f", peak_bf16_gflops=round(peak, 1),
                   wall_seconds=round(time.perf_counter() - started, 1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
