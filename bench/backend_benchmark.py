"""Backend benchmark: transformers here (hf) vs a vLLM server on every task's real prompts, one run.

Run:  python -m slmbench.bench.backend_benchmark [--models NAME ...] [--tasks NAME ...] [--adapters auto]
      [--llamacpp] [--out bench_results/backends.json]   (needs `make engines`, or SLMBENCH_VLLM_PYTHON)

For each model (and adapter) and task, the whole split is generated twice, uncached, with the task's
own decoding settings: by the hf engine at its batch size (16), then by the model's vLLM server (started
once per model, serving its adapters too) with its requests in flight (64), each backend's default. The table gives wall seconds and
tokens/s of each, their ratio, how many greedy outputs are identical, and the headline metric of
each with its 95% interval. The server's start (compilation on a first run) is timed apart.

`--llamacpp` adds the outside reference: llama.cpp's server (slmbench.llamacpp_server) on the model's
GGUF, one request at a time, after the vLLM server has stopped; base models only. It runs the 4-bit
file itself, so its outputs differ from the dequantised checkpoint's more than vLLM's do.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

from slmbench.adapters import find_adapters, read_adapter
from slmbench.defaults import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY
from slmbench.evaluation import evaluate
from slmbench.gguf_models import gguf_file
from slmbench.llamacpp_server import LlamaCppServer
from slmbench.loading import load_model
from slmbench.paths import adapters_root
from slmbench.registry import OFFLINE_MODELS
from slmbench.tasks import resolve_task, task_names
from slmbench.vllm_server import VllmServer, engine_package_version

from slmbench.bench.report import print_and_save


def identical(a, b) -> int:
    """How many outputs of two runs are the same after stripping surrounding whitespace."""
    return sum(x.text.strip() == y.text.strip() for x, y in zip(a.run.completions, b.run.completions))


def metric_value(evaluation, metric: str) -> tuple:
    """(value, low, high) of `metric`; the interval is (None, None) where it has none."""
    return (evaluation.result.values[metric], *evaluation.result.intervals.get(metric, (None, None)))


def compare(loaded, engine, task, samples, batch_size: int) -> tuple[dict, object]:
    """hf then vLLM on the same samples: the row, and hf's evaluation (for the llama.cpp pass)."""
    hf = evaluate(loaded, task, samples, batch_size=batch_size, resamples=1000)
    served = evaluate(loaded, task, samples, resamples=1000, server=engine)
    metric = task.headline
    return {
        "model": loaded.label, "task": task.name, "n": len(samples), "metric": metric,
        "hf_seconds": hf.run.seconds, "hf_tok_s": hf.run.tokens_per_sec, "hf_tokens": hf.run.generated_tokens,
        "vllm_seconds": served.run.seconds, "vllm_tok_s": served.run.tokens_per_sec,
        "vllm_tokens": served.run.generated_tokens,
        "speedup_wall": hf.run.seconds / served.run.seconds if served.run.seconds else None,
        "identical": identical(hf, served), "hf_metric": metric_value(hf, metric),
        "vllm_metric": metric_value(served, metric),
    }, hf


def add_llamacpp(row: dict, hf, loaded, engine, task, samples) -> None:
    """llama.cpp's server on the same samples, into `row` beside hf and vLLM."""
    served = evaluate(loaded, task, samples, resamples=1000, server=engine)
    row.update({"llamacpp_seconds": served.run.seconds, "llamacpp_tok_s": served.run.tokens_per_sec,
                "llamacpp_tokens": served.run.generated_tokens, "llamacpp_identical": identical(hf, served),
                "llamacpp_metric": metric_value(served, task.headline)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(OFFLINE_MODELS))
    parser.add_argument("--tasks", nargs="+", default=None, help="default: every built-in task")
    parser.add_argument("--adapters", default="none", help="'auto': also every adapter `slmbench train` wrote")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="the hf engine's batch")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight to vLLM")
    parser.add_argument("--llamacpp", action="store_true",
                        help="also llama.cpp's server on each base model's GGUF, one request at a time")
    parser.add_argument("--out", type=Path, default=Path("bench_results/backends.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tasks = [resolve_task(name) for name in (args.tasks or task_names())]
    rows, starts = [], []
    for name in args.models:
        base = load_model(name, defer_weights=True)
        adapters = [a.path for a in find_adapters(adapters_root(), [base.spec.name], [t.name for t in tasks])
                    if a.task is not None] if args.adapters == "auto" else []
        server = VllmServer(base.spec.name, base.checkpoint_dir, adapters, concurrency=args.concurrency)
        started = time.perf_counter()
        base_rows = []  # (row, hf evaluation, task, samples) of the base model's cases
        with server as engine:
            starts.append((base.spec.name, time.perf_counter() - started))
            engine = replace(engine, version=engine_package_version(server.command()[0]))
            for task in tasks:
                samples = task.samples(args.split)[:args.limit]
                row, hf = compare(base, engine, task, samples, args.batch_size)
                rows.append(row)
                base_rows.append((row, hf, task, samples))
                print(rows[-1]["model"], task.name, f"hf {rows[-1]['hf_tok_s']:.0f} tok/s, vllm {rows[-1]['vllm_tok_s']:.0f}",
                      flush=True)
            for adapter in adapters:
                loaded = load_model(name, adapter=adapter, defer_weights=True)
                task = next(t for t in tasks if t.name == read_adapter(adapter).task)
                rows.append(compare(loaded, engine, task, task.samples(args.split)[:args.limit], args.batch_size)[0])
        if args.llamacpp:  # after vLLM's server stopped: one engine on the CPU at a time
            with LlamaCppServer(base.spec.name, gguf_file(base.spec)) as engine:
                for row, hf, task, samples in base_rows:
                    add_llamacpp(row, hf, base, engine, task, samples)
                    print(row["model"], task.name, f"llama.cpp {row['llamacpp_tok_s']:.0f} tok/s", flush=True)
    for model, seconds in starts:
        print(f"vLLM server start for {model}: {seconds:.0f} s")
    fmt = lambda v: f"{v[0]:.3f} [{v[1]:.3f}, {v[2]:.3f}]" if v[1] is not None else f"{v[0]:.3f}"  # noqa: E731
    headers = ["model", "task", "N", "hf s", "hf tok/s", "vLLM s", "vLLM tok/s", "tok/s ratio", "wall ratio",
               "identical", "metric", "hf", "vLLM"]
    table = [[r["model"], r["task"], r["n"], r["hf_seconds"], r["hf_tok_s"], r["vllm_seconds"], r["vllm_tok_s"],
              r["vllm_tok_s"] / r["hf_tok_s"] if r["hf_tok_s"] else None, r["speedup_wall"],
              f"{r['identical']}/{r['n']}", r["metric"], fmt(r["hf_metric"]), fmt(r["vllm_metric"])] for r in rows]
    if args.llamacpp:
        headers += ["llama.cpp s", "llama.cpp tok/s", "llama.cpp/hf tok/s", "llama.cpp identical", "llama.cpp"]
        for line, r in zip(table, rows):
            if "llamacpp_tok_s" not in r:  # an adapter case: llama.cpp ran the base models only
                line += [None] * 5
                continue
            ratio = r["llamacpp_tok_s"] / r["hf_tok_s"] if r["hf_tok_s"] else None
            line += [r["llamacpp_seconds"], r["llamacpp_tok_s"], ratio, f"{r['llamacpp_identical']}/{r['n']}",
                     fmt(r["llamacpp_metric"])]
    totals = {"hf_seconds": sum(r["hf_seconds"] for r in rows), "vllm_seconds": sum(r["vllm_seconds"] for r in rows),
              "server_start_seconds": dict(starts)}
    if args.llamacpp:  # over the base cases, the ones llama.cpp ran
        based = [r for r in rows if "llamacpp_tok_s" in r]
        totals["base_cases"] = {key: sum(r[key] for r in based) for key in
                                ("hf_seconds", "hf_tokens", "vllm_seconds", "vllm_tokens", "llamacpp_seconds",
                                 "llamacpp_tokens")}
    print_and_save(table, headers, rows, args.out, totals=totals)
    print(f"total generation: hf {totals['hf_seconds']:.0f} s, vLLM {totals['vllm_seconds']:.0f} s "
          f"({totals['hf_seconds'] / max(totals['vllm_seconds'], 1e-9):.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
