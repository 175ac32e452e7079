"""Generation benchmark: decode tokens/s of the engine at batch 1 and 16, bf16 and fp32.

Run:  python -m slmbench.bench.generation_benchmark [--models NAME ...] [--out bench_results/generation.json]

Every figure is measured in the same run, and the table reports ratios against baselines taken
alongside it: batch 16 vs batch 1, and the engine vs plain `model.generate` on the same batch.
Completions are forced to a fixed length (min_new_tokens = max_new_tokens) so every
configuration decodes the same number of tokens.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from slmbench.bench.report import print_and_save
from slmbench.generation import DecodingConfig, generate
from slmbench.loading import load_model
from slmbench.registry import OFFLINE_MODELS

PROMPTS = [
    "Write one sentence about the sea.",
    "List three uses of baking soda.",
    "Explain what a hash table is in two sentences.",
    "Translate 'good morning, how are you?' into Italian.",
    "Give a short tip for learning to swim as an adult.",
    "Describe the colour of the sky at sunset to someone who has never seen it.",
    "What is the boiling point of water at sea level?",
    "Name a famous painting and its painter.",
    "Summarise the plot of Little Red Riding Hood in one sentence.",
    "Suggest a name for a small bakery in a mountain village.",
    "Why do leaves change colour in autumn?",
    "Write a haiku about a train station at night.",
    "What does a pharmacist do?",
    "Give two arguments for riding a bicycle to work.",
    "How many legs does a spider have, and how many does an insect have?",
    "Return a JSON object describing a cat named Miso who is 3 years old.",
]


def plain_generate_tokens_per_sec(loaded, prompts: list[str], new_tokens: int) -> float:
    """Baseline: plain `model.generate` on one left-padded batch, default (dynamic) KV cache."""
    tokenizer = loaded.tokenizer
    encoded = tokenizer([loaded.render(p) for p in prompts], return_tensors="pt", padding=True,
                        add_special_tokens=not loaded.chat)
    started = time.perf_counter()
    with torch.inference_mode():
        loaded.model.generate(**encoded, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                              pad_token_id=tokenizer.pad_token_id)
    return len(prompts) * new_tokens / (time.perf_counter() - started)


def measure(name: str, dtype: str, new_tokens: int, batch1_prompts: int, repeats: int) -> dict:
    """One model and dtype; engine and plain runs alternate and the best of `repeats` counts."""
    loaded = load_model(name, dtype=dtype)
    decoding = DecodingConfig(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    generate(loaded, PROMPTS[:2], DecodingConfig(max_new_tokens=4), batch_size=2, progress=False)  # warm-up
    batch1 = generate(loaded, PROMPTS[:batch1_prompts], decoding, batch_size=1, progress=False)
    runs16, plain_runs = [], []
    for _ in range(repeats):
        runs16.append(generate(loaded, PROMPTS, decoding, batch_size=16, progress=False))
        plain_runs.append(plain_generate_tokens_per_sec(loaded, PROMPTS, new_tokens))
    batch16, plain16 = max(runs16, key=lambda r: r.tokens_per_sec), max(plain_runs)
    return {
        "model": loaded.spec.label, "dtype": dtype, "new_tokens": new_tokens,
        "batch1_tok_s": batch1.tokens_per_sec, "batch16_tok_s": batch16.tokens_per_sec,
        "plain_generate_batch16_tok_s": plain16,
        "batch16_over_batch1": batch16.tokens_per_sec / batch1.tokens_per_sec,
        "engine_over_plain": batch16.tokens_per_sec / plain16,
        "texts": [c.text for c in batch16.completions],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(OFFLINE_MODELS))
    parser.add_argument("--dtypes", nargs="+", default=["bfloat16", "float32"])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch1-prompts", type=int, default=4, help="prompts decoded one by one for batch 1")
    parser.add_argument("--repeats", type=int, default=2, help="batch-16 runs per configuration (best counts)")
    parser.add_argument("--out", type=Path, default=Path("bench_results/generation.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    rows = [measure(name, dtype, args.new_tokens, args.batch1_prompts, args.repeats) for name in args.models for dtype in args.dtypes]
    for row in rows:  # how far bf16 greedy outputs drift from fp32
        reference = next((r for r in rows if r["model"] == row["model"] and r["dtype"] == "float32"), None)
        row["same_text_as_fp32"] = (sum(a == b for a, b in zip(row["texts"], reference["texts"]))
                                    if reference else None)
    headers = ["model", "dtype", "batch 1 tok/s", "batch 16 tok/s", "b16/b1", "plain generate b16 tok/s",
               "engine/plain", f"same as fp32 (of {len(PROMPTS)})"]
    table = [[r["model"], r["dtype"], r["batch1_tok_s"], r["batch16_tok_s"], r["batch16_over_batch1"],
              r["plain_generate_batch16_tok_s"], r["engine_over_plain"], r["same_text_as_fp32"]] for r in rows]
    print_and_save(table, headers, rows, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
