"""Report benchmark: size and headless-browser open time of report.html for a synthetic full run.

Run:  python -m slmbench.bench.report_benchmark [--models 2] [--variants 2] [--limit 60] [--out reports/synthetic.html]

The synthetic run is 5 tasks × `--models` models × `--variants` rows (base plus lora-*), on up to
`--limit` real test samples each. Base outputs are the references cut in half, adapter outputs the
references with one word changed, so diffs and fixed/broken samples look like real ones; every
output is judged and aggregated by the real task code. Opening needs Debian's chromium and the
playwright package (see README, "The HTML report").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from slmbench.tasks import TASKS
from slmbench.tasks.scoring import score_outputs

from slmbench.bench.html_report import write_report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def synthetic_output(task: str, reference, variant: int, index: int) -> str:
    """A plausible model output: the base gets half the reference, variants a one-word edit of it."""
    text = TASKS[task].completion(_Sample(reference)) if not isinstance(reference, str) else reference
    if variant == 0:
        return text[: max(1, len(text) // 2)] if index % 3 else text
    words = text.split(" ")
    words[index % len(words)] = "changed"
    return " ".join(words) if index % 4 else text


class _Sample:  # Task.completion reads only `target`
    def __init__(self, target):
        self.target = target


def synthetic_run(models: int = 2, variants: int = 2, limit: int = 60) -> tuple[list[dict], dict[str, list[dict]]]:
    """Records and per-sample rows shaped like a bench run's, judged by the real task code."""
    records, samples = [], {}
    for task_name, task in TASKS.items():
        test = task.samples("test")[:limit]
        for model in range(models):
            for variant in range(variants):
                label = "base" if variant == 0 else f"lora-v{variant}"
                case_id = f"synthetic-{model}{'' if variant == 0 else '+' + label}::{task_name}"
                outputs = [synthetic_output(task_name, s.target, variant, i + model) for i, s in enumerate(test)]
                result = score_outputs(task, outputs, test)
                samples[case_id] = [_row(case_id, s, o, score) for s, o, score in zip(test, outputs, result.scores)]
                records.append(_record(case_id, f"synthetic-{model}", label, task, result))
    return records, samples


def _row(case_id, sample, output, score) -> dict:
    return {"case_id": case_id, "sample_id": sample.id, "input": sample.input, "reference": sample.target,
            "prompt_sha256": "0" * 64, "output": output, "parsed": None, "finish_reason": "eos", "prompt_tokens": 100,
            "completion_tokens": len(output) // 4, "stats": dict(score.stats), "explanation": score.explanation,
            "details": json.loads(json.dumps(dict(score.details), default=str))}


def _record(case_id, model, variant, task, result) -> dict:
    return {"case_id": case_id, "model": model, "variant": variant, "task": task.name, "split": "test", "limit": None,
            "n": result.n, "random_weights": False,
            "metrics": {k: {"value": v, "low": result.intervals[k][0], "high": result.intervals[k][1]}
                        for k, v in result.values.items()},
            "speed": {"tokens_per_sec": 50.0, "eval_seconds": 10.0, "generated_tokens": 1000, "cache_hits": 0},
            "provenance": {"created": "2026-01-01T00:00:00+00:00", "model_hash": "m" * 64, "task_version": task.version,
                           "data_hash": "d" * 64, "dtype": "bfloat16", "decoding": {"max_new_tokens": task.max_new_tokens},
                           "versions": {"torch": "x"}, "git_commit": "synthetic"},
            "sample_stats": {s.sample_id: dict(s.stats) for s in result.scores}}


def open_seconds(path: Path, width: int = 1280, height: int = 900) -> float:
    """Seconds from navigation to the load event in headless Chromium (playwright, system browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            started = time.perf_counter()
            page.goto(Path(path).resolve().as_uri(), wait_until="load")
            return time.perf_counter() - started
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--variants", type=int, default=2)
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--out", type=Path, default=Path("reports/synthetic.html"))
    args = parser.parse_args()
    records, samples = synthetic_run(args.models, args.variants, args.limit)
    started = time.perf_counter()
    write_report(args.out, records, samples, "synthetic")
    rendered = time.perf_counter() - started
    rows = sum(map(len, samples.values()))
    print(f"{len(records)} rows, {rows} sample rows: {args.out} {args.out.stat().st_size / 1e6:.2f} MB, "
          f"rendered in {rendered:.2f} s, opened in {open_seconds(args.out):.2f} s (headless Chromium)")


if __name__ == "__main__":
    main()
