"""Adapter decode benchmark: tokens/s of base, base + merged adapter, base + separate LoRA layers.

Run:  python -m slmbench.bench.adapter_benchmark [ADAPTER_DIR ...] [--out bench_results/adapters.json]

`load_model(..., adapter=...)` keeps LoRA layers separate unless merge_adapter=True; this measures
what merging buys in speed and costs in fidelity. The three variants decode the same batch of the adapter's own task prompts (val split), forced to
a fixed length, in turns (base, merged, separate, repeated), and the best turn of each counts.
Ratios are against the base measured in the same run. `same text` counts the greedy completions
(unforced, the task's own decoding) where merged and separate layers agree: in bf16 the merged
weights are rounded and small updates are lost, so they can differ a lot.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from slmbench.adapters import find_adapters, read_adapter
from slmbench.bench.report import print_and_save
from slmbench.evaluation import decoding_for
from slmbench.generation import DecodingConfig, generate
from slmbench.loading import load_model
from slmbench.paths import adapters_root
from slmbench.tasks import resolve_task
from slmbench.training.merge import base_model_of

VARIANTS = ("base", "merged", "separate")


def default_adapters() -> list[Path]:
    """The first adapter `slmbench train` wrote for each base model."""
    firsts: dict[str, Path] = {}
    for info in find_adapters(adapters_root()):
        firsts.setdefault(info.base_model_name, info.path)
    return list(firsts.values())


def measure(adapter_dir: Path, dtype: str, new_tokens: int, batch_size: int, repeats: int) -> dict:
    """One adapter: the three variants in turns on `batch_size` val prompts of its task."""

    task = resolve_task(read_adapter(adapter_dir).task)
    base_name = base_model_of(adapter_dir)
    models = {"base": load_model(base_name, dtype=dtype),
              "merged": load_model(base_name, dtype=dtype, adapter=adapter_dir, merge_adapter=True),
              "separate": load_model(base_name, dtype=dtype, adapter=adapter_dir)}
    prompts = [task.prompt(sample) for sample in task.samples("val")][:batch_size]
    forced = DecodingConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    best = dict.fromkeys(VARIANTS, 0.0)
    for loaded in models.values():  # warm-up
        generate(loaded, prompts[:2], DecodingConfig(max_new_tokens=4), batch_size=2, progress=False)
    for _ in range(repeats):
        for variant in VARIANTS:
            run = generate(models[variant], prompts, forced, batch_size=batch_size, progress=False)
            best[variant] = max(best[variant], run.tokens_per_sec)
    texts = {variant: [c.text for c in generate(models[variant], prompts, decoding_for(task), batch_size=batch_size,
                                                 progress=False).completions] for variant in ("merged", "separate")}
    return {
        "adapter": str(adapter_dir), "model": base_name, "task": task.name, "dtype": dtype,
        "batch_size": len(prompts), "new_tokens": new_tokens, **{f"{v}_tok_s": best[v] for v in VARIANTS},
        "merged_over_base": best["merged"] / best["base"], "separate_over_base": best["separate"] / best["base"],
        "same_text": sum(a == b for a, b in zip(texts["merged"], texts["separate"])), "prompts": len(prompts),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("adapters", nargs="*", type=Path, help="default: the first adapter of each base model")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench_results/adapters.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    adapters = args.adapters or default_adapters()
    if not adapters:
        parser.error(f"no adapters under {adapters_root()}; train one with `slmbench train` or pass directories")
    rows = [measure(adapter, args.dtype, args.new_tokens, args.batch_size, args.repeats) for adapter in adapters]
    headers = ["adapter", "dtype", "base tok/s", "merged tok/s", "separate LoRA tok/s", "merged/base",
               "separate/base", "same text merged vs separate"]
    table = [[r["adapter"], r["dtype"], r["base_tok_s"], r["merged_tok_s"], r["separate_tok_s"], r["merged_over_base"],
              r["separate_over_base"], f"{r['same_text']} of {r['prompts']}"] for r in rows]
    print_and_save(table, headers, rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
