"""Structured-outputs benchmark: what constraining a JSON task to its schema costs and gives, hf engine.

Run:  python -m slmbench.bench.structured_benchmark [--models NAME ...] [--tasks NAME ...] [--limit 16]
      [--repeats 3] [--out bench_results/structured.json]

For each model and JSON task, the same real test prompts (one batch) are generated free and then
structured, uncached, `--repeats` times (the order alternates between repeats). The table gives the
medians of tokens/s of each, their ratio, and the time spent inside the schema processor as a share
of the structured generation: the speed cost at equal tokens, since free and structured runs stop at
different lengths. Valid JSON and schema conformance of both come from the last repeat.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from slmbench.bench.report import print_and_save
from slmbench.constrained import SchemaLogitsProcessor
from slmbench.evaluation import evaluate
from slmbench.loading import load_model
from slmbench.registry import OFFLINE_MODELS
from slmbench.tasks import resolve_task, task_names


class ProcessorClock:
    """Seconds and calls spent in SchemaLogitsProcessor.__call__ while installed."""

    def __init__(self):
        self.seconds, self.calls = 0.0, 0
        self._original = SchemaLogitsProcessor.__call__

    def __enter__(self):
        original = self._original

        def timed(processor, input_ids, scores):
            started = time.perf_counter()
            try:
                return original(processor, input_ids, scores)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        SchemaLogitsProcessor.__call__ = timed
        return self

    def __exit__(self, *exc):
        SchemaLogitsProcessor.__call__ = self._original


def measure(loaded, task, samples, repeats: int, batch_size: int) -> dict:
    free_rates, structured_rates, shares, step_ms = [], [], [], []
    for repeat in range(repeats):
        order = (False, True) if repeat % 2 == 0 else (True, False)
        for structured in order:
            with ProcessorClock() as clock:
                evaluation = evaluate(loaded, task, samples, batch_size=batch_size, resamples=200,
                                      structured=structured)
            run = evaluation.run
            if structured:
                structured_rates.append(run.tokens_per_sec)
                shares.append(clock.seconds / run.seconds)
                step_ms.append(1000 * clock.seconds / max(clock.calls, 1))
                constrained = evaluation.result.values
            else:
                free_rates.append(run.tokens_per_sec)
                free = evaluation.result.values
    median = statistics.median
    return {
        "model": loaded.label, "task": task.name, "n": len(samples), "repeats": repeats,
        "free_tok_s": median(free_rates), "structured_tok_s": median(structured_rates),
        "ratio": median(structured_rates) / median(free_rates), "processor_share": median(shares),
        "processor_ms_per_step": median(step_ms),
        "free_json_valid": free["json_valid"], "structured_json_valid": constrained["json_valid"],
        "free_schema_valid": free["schema_valid"], "structured_schema_valid": constrained["schema_valid"],
        "metric": task.headline, "free_metric": free[task.headline], "structured_metric": constrained[task.headline],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(OFFLINE_MODELS))
    parser.add_argument("--tasks", nargs="+", default=None, help="default: every built-in JSON task")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, default=16, help="prompts per task (default: one batch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("bench_results/structured.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    tasks = [resolve_task(name) for name in (args.tasks or task_names())]
    rows = []
    for name in args.models:
        loaded = load_model(name)
        for task in (t for t in tasks if t.is_json):
            rows.append(measure(loaded, task, task.samples(args.split)[:args.limit], args.repeats, args.batch_size))
            print(f"{name} {task.name}: free {rows[-1]['free_tok_s']:.0f} tok/s, structured "
                  f"{rows[-1]['structured_tok_s']:.0f}, processor {100 * rows[-1]['processor_share']:.1f}%", flush=True)
    pct = lambda v: f"{100 * v:.0f}"  # noqa: E731
    headers = ["model", "task", "N", "free tok/s", "structured tok/s", "ratio", "processor ms/step",
               "processor % of time", "valid JSON % free/structured", "schema % free/structured", "metric",
               "free", "structured"]
    table = [[r["model"], r["task"], r["n"], r["free_tok_s"], r["structured_tok_s"], r["ratio"],
              r["processor_ms_per_step"], 100 * r["processor_share"],
              f"{pct(r['free_json_valid'])}/{pct(r['structured_json_valid'])}",
              f"{pct(r['free_schema_valid'])}/{pct(r['structured_schema_valid'])}", r["metric"],
              f"{r['free_metric']:.3f}", f"{r['structured_metric']:.3f}"] for r in rows]
    print_and_save(table, headers, rows, args.out, repeats=args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
