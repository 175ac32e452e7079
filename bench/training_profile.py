"""Where a LoRA training step spends its time: torch.profiler over real steps, grouped by module.

Run:  python -m slmbench.bench.training_profile [--models NAME ...] [--tasks it_entities recipes]
                                                [--micro-batch 4] [--steps 2] [--out bench_results/training_profile.json]

For each model x task this loads the base as the recipe does (training/lora.py), wraps it with the
`fast` preset's LoRA, and runs the recipe's step by hand (collate, bf16 autocast forward with the
completion-only loss, backward, AdamW) on the first micro-batches of the train split: one warm-up
step, then `--steps` steps under torch.profiler. Forward and backward hooks open profiler ranges
per module kind (attention, MLP, LM head, embeddings; LoRA branches inside attention and MLP are
reported separately as a share of them), so the table reads like the model, not like a list of
aten ops. The top aten ops by self time are printed too.

Per-epoch costs outside the steps are timed on the real splits: the val-loss pass (forward only,
the whole val split) and the checkpoint round trip best-epoch selection costs (save the adapter,
load it back). They are shown as a share of one epoch of the task at the measured step rate.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from peft import set_peft_model_state_dict
from safetensors.torch import load_file
from torch.profiler import ProfilerActivity, profile, record_function

from slmbench.bench.report import print_and_save
from slmbench.loading import load_model
from slmbench.registry import OFFLINE_MODELS
from slmbench.tasks import resolve_task
from slmbench.training.config import make_config, with_target_modules
from slmbench.training.data import PadCollator, build_examples
from slmbench.training.lora import wrap_with_lora
from slmbench.training.loss import causal_lm_loss

KINDS = ("attention", "mlp", "lm_head", "embed", "lora")


def module_kind(name: str) -> str | None:
    """The profile group of a module by its qualified name, or None (not hooked)."""
    parts = name.split(".")
    leaf = parts[-1]
    if len(parts) > 1 and parts[-2] in ("lora_A", "lora_B", "lora_dropout"):  # PEFT's per-adapter modules
        return "lora"
    if leaf in ("self_attn", "attention"):
        return "attention"
    if leaf == "mlp":
        return "mlp"
    if leaf == "lm_head":
        return "lm_head"
    if leaf == "embed_tokens":
        return "embed"
    return None


class RangeHooks:
    """Forward and backward hooks that open a profiler range per module kind (`fwd:mlp`, `bwd:mlp`, ...)."""

    def __init__(self, model: torch.nn.Module):
        self.handles = []
        self.open: dict[tuple[int, str], list] = defaultdict(list)
        for name, module in model.named_modules():
            kind = module_kind(name)
            if kind is None or isinstance(module, torch.nn.ModuleDict):
                continue
            self.handles += [
                module.register_forward_pre_hook(self._enter(module, "fwd", kind)),
                module.register_forward_hook(self._leave(module, "fwd")),
            ]
            if kind != "embed":  # frozen embeddings have no backward
                self.handles += [
                    module.register_full_backward_pre_hook(self._enter(module, "bwd", kind)),
                    module.register_full_backward_hook(self._leave(module, "bwd")),
                ]

    def _enter(self, module, phase, kind):
        def hook(*_):
            scope = record_function(f"{phase}:{kind}")
            scope.__enter__()
            self.open[(id(module), phase)].append(scope)
        return hook

    def _leave(self, module, phase):
        def hook(*_):
            stack = self.open[(id(module), phase)]
            if stack:
                stack.pop().__exit__(None, None, None)
        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def train_step(model, optimizer, examples: list[dict], collate: PadCollator) -> float:
    """One step of the recipe by hand, each phase in its own profiler range; returns the loss."""
    with record_function("step:data"):
        batch = collate(examples)
    with torch.autocast("cpu", dtype=torch.bfloat16), record_function("step:forward+loss"):
        loss = causal_lm_loss(model, batch, completion_only=True)
    with record_function("step:backward"):
        loss.backward()
    with record_function("step:optimizer"):
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return loss.item()


def per_epoch_costs(model, val_examples: list[dict], collate: PadCollator, micro: int) -> dict:
    """Seconds of one val-loss pass over the whole val split and of one adapter save + load."""
    started = time.perf_counter()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        for i in range(0, len(val_examples), micro):
            causal_lm_loss(model, collate(val_examples[i:i + micro]), completion_only=True)
    eval_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        model.save_pretrained(folder)
        set_peft_model_state_dict(model, load_file(Path(folder) / "adapter_model.safetensors"))
        checkpoint_seconds = time.perf_counter() - started
    return {"eval_seconds": eval_seconds, "checkpoint_seconds": checkpoint_seconds}


def profile_pair(name: str, task_name: str, micro: int, steps: int) -> dict:
    """The breakdown for one model x task (see the module docstring)."""
    loaded = load_model(name, dtype="float32")
    config = with_target_modules(make_config(name, task_name, "fast"), loaded.model.config.model_type)
    task = resolve_task(task_name)
    train_set = build_examples(loaded, task, "train", config.max_seq_len)
    val_set = build_examples(loaded, task, "val", config.max_seq_len)
    model = wrap_with_lora(loaded, config).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
    collate = PadCollator(loaded.tokenizer.pad_token_id)
    batches = [train_set.examples[i * micro:(i + 1) * micro] for i in range(steps + 1)]
    train_step(model, optimizer, batches[0], collate)  # warm-up, not profiled

    hooks = RangeHooks(model)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        started = time.perf_counter()
        for batch in batches[1:]:
            train_step(model, optimizer, batch, collate)
        profiled_seconds = time.perf_counter() - started
    hooks.remove()
    ranges = {e.key: e.cpu_time_total / 1e6 for e in prof.key_averages() if ":" in e.key
              and e.key.split(":")[0] in ("fwd", "bwd", "step")}
    top_ops = sorted((e for e in prof.key_averages() if e.key.startswith("aten::")),
                     key=lambda e: e.self_cpu_time_total, reverse=True)[:8]

    # the same steps without profiler or hooks: the rate an epoch runs at
    started = time.perf_counter()
    for batch in batches[1:]:
        train_step(model, optimizer, batch, collate)
    step_seconds = (time.perf_counter() - started) / steps
    tokens_per_step = sum(len(e["input_ids"]) for b in batches[1:] for e in b) / steps
    epoch_costs = per_epoch_costs(model.eval(), val_set.examples, collate, micro)
    epoch_train_seconds = train_set.tokens / tokens_per_step * step_seconds
    epoch_total = epoch_train_seconds + sum(epoch_costs.values())

    step_total = sum(ranges.get(f"step:{phase}", 0.0) for phase in ("data", "forward+loss", "backward", "optimizer"))
    hooked = {kind: ranges.get(f"fwd:{kind}", 0.0) + ranges.get(f"bwd:{kind}", 0.0) for kind in KINDS}
    model_time = ranges.get("step:forward+loss", 0.0) + ranges.get("step:backward", 0.0)
    cross_entropy = sum(e.self_cpu_time_total / 1e6 for e in prof.key_averages()
                        if "log_softmax" in e.key or "nll_loss" in e.key)
    named = sum(hooked[kind] for kind in ("attention", "mlp", "lm_head", "embed"))
    share = {
        "attention": hooked["attention"] / step_total,
        "mlp": hooked["mlp"] / step_total,
        "lm_head": hooked["lm_head"] / step_total,
        "cross_entropy": cross_entropy / step_total,
        # decoder-layer norms, residual adds, rotary, mask building, embeddings, autograd bookkeeping
        "other_model": (model_time - named - cross_entropy + hooked["embed"]) / step_total,
        "optimizer": ranges.get("step:optimizer", 0.0) / step_total,
        "data": ranges.get("step:data", 0.0) / step_total,
        "lora_in_attention_mlp": hooked["lora"] / max(hooked["attention"] + hooked["mlp"], 1e-9),
    }
    return {
        "model": name, "task": task_name, "micro_batch": micro, "tokens_per_step": tokens_per_step,
        "step_seconds": step_seconds, "tokens_per_sec": tokens_per_step / step_seconds,
        "profiled_seconds_per_step": profiled_seconds / steps, "ranges_seconds": ranges, "share_of_step": share,
        "epoch_train_seconds": epoch_train_seconds, **epoch_costs,
        "share_of_epoch": {"train steps": epoch_train_seconds / epoch_total,
                           "val loss": epoch_costs["eval_seconds"] / epoch_total,
                           "checkpoint": epoch_costs["checkpoint_seconds"] / epoch_total},
        "top_ops_self_seconds": {e.key: e.self_cpu_time_total / 1e6 / steps for e in top_ops},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(OFFLINE_MODELS))
    parser.add_argument("--tasks", nargs="+", default=["it_entities", "recipes"])
    parser.add_argument("--micro-batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2, help="profiled steps after one warm-up step")
    parser.add_argument("--out", type=Path, default=Path("bench_results/training_profile.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    rows = [profile_pair(m, t, args.micro_batch, args.steps) for m in args.models for t in args.tasks]
    headers = ["model", "task", "tok/s", "attention", "MLP", "LM head", "cross-entropy", "other model", "optimizer",
               "data", "LoRA share of attn+MLP", "val loss/epoch", "checkpoint/epoch"]
    table = [[r["model"], r["task"], r["tokens_per_sec"],
              *(f"{100 * r['share_of_step'][k]:.1f}%" for k in ("attention", "mlp", "lm_head", "cross_entropy",
                                                               "other_model", "optimizer", "data",
                                                               "lora_in_attention_mlp")),
              f"{100 * r['share_of_epoch']['val loss']:.1f}%", f"{100 * r['share_of_epoch']['checkpoint']:.1f}%"]
             for r in rows]
    print_and_save(table, headers, rows, args.out, floatfmt=".1f", wall_seconds=round(time.perf_counter() - started, 1))
    for r in rows:
        print(f"\n{r['model']} / {r['task']}: top aten ops by self time per step")
        for op, seconds in r["top_ops_self_seconds"].items():
            print(f"  {op:40s} {seconds:.3f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
