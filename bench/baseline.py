"""The regression gate: compare a run with a committed baseline, sample by sample.

Greedy outputs are deterministic for one backend, device, dtype and decoding, so the baseline
stores every case's per-sample statistics (keyed by sample id) and the gate runs the leaderboard's
paired bootstrap on them: both runs resampled on the same sample indices. A metric regresses when

- its paired Δ (now minus baseline) is negative and the one-sided 95% bound excludes 0 (the 95th
  percentile of the resampled Δs is below 0: the gate asks one question, "is it worse?"), or
- Δ is below minus the metric's `tolerance` in the thresholds file (an allowed drop).

A gain never fails. A baseline made with other settings (backend, device, dtype, decoding,
few-shot examples, split, limit, samples or data) is refused with the reason, never compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from slmbench.errors import SlmbenchError
from slmbench.bench.baseline_rows import check_rows
from slmbench.tasks import resolve_task
from slmbench.tasks.scoring import paired_bootstrap

FORMAT = 2  # 1 (leaderboard JSON, aggregates only) cannot gate per sample
ONE_SIDED = 95  # percentile of the resampled Δs that must be below 0 for a significant drop
SETTINGS = ("backend", "device", "dtype", "batch_size", "decoding", "fewshot", "task_version", "data_hash", "data_set",
            "method", "train_hash")  # the last two: what a classical row is and the train split it was fitted on


class BaselineError(SlmbenchError):
    """A baseline file that cannot be read or does not match the run."""


def baseline_document(records: list[dict]) -> dict:
    """What `--bench-update-baseline` writes: every case's record, per-sample stats included."""
    return {"format": FORMAT, "rows": sorted(records, key=lambda r: r["case_id"])}


def load_baseline(path: Path) -> dict[str, dict]:
    """case id -> baseline row (with its per-sample stats)."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BaselineError(f"{path}: baseline not found; create it with --bench-update-baseline") from None
    except json.JSONDecodeError as error:
        raise BaselineError(f"{path}: not valid JSON: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot be read as a baseline: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("rows"), list):
        raise BaselineError(f"{path}: not a baseline (no 'rows' list)")
    if document.get("format") != FORMAT:
        raise BaselineError(f"{path}: baseline format {document.get('format')!r} holds no per-sample stats "
                            f"(format {FORMAT} does); refresh it with --bench-update-baseline")
    check_rows(path, document["rows"])
    for index, row in enumerate(document["rows"]):
        if not isinstance(row.get("sample_stats"), dict):
            raise BaselineError(f"{path}: rows[{index}] ({row['case_id']}): sample_stats: missing; "
                                f"refresh the baseline with --bench-update-baseline")
    return {row["case_id"]: row for row in document["rows"]}


def comparable(record: dict, baseline: dict) -> str | None:
    """Why a record cannot be compared with its baseline row (other settings, samples or data), or None."""
    for field in ("split", "limit", "n"):
        if record[field] != baseline.get(field):
            return f"{field} is {record[field]!r} here but {baseline.get(field)!r} in the baseline"
    now, before = record["provenance"], baseline.get("provenance", {})
    for field in SETTINGS:
        if field == "batch_size" and field not in before:
            continue  # can flip a near-tied bf16 token; compared where the baseline recorded it
        if setting(now, field) != setting(before, field):
            return (f"{field.replace('_', ' ')} is {setting(now, field)!r} here but {setting(before, field)!r} "
                    f"in the baseline")
    if list(record["sample_stats"]) != list(baseline["sample_stats"]):
        missing = sorted(set(baseline["sample_stats"]) - set(record["sample_stats"]))[:3]
        return f"the samples differ from the baseline's (e.g. {', '.join(missing) or 'their order'})"
    return None


def setting(provenance: dict, field: str):
    """A provenance setting as compared; a record without few-shot provenance was made 0-shot, one
    without a backend by transformers here (records before --bench-backend existed), one without the
    structured switch decoded freely (records before --bench-structured existed)."""
    value = provenance.get(field)
    if field == "decoding" and value is not None:
        return {**value, "structured": value.get("structured", False)}
    if field == "fewshot":
        return {"k": 0} if value is None else value
    if field == "backend":
        return value or "hf"
    return value


def regressions(record: dict, baseline: dict, tolerances: dict[str, float | None]) -> list[str]:
    """One line per metric whose paired Δ against the baseline is a significant drop or beyond its tolerance."""
    point, boot = paired_bootstrap(resolve_task(record["task"]), baseline["sample_stats"], record["sample_stats"])
    found = []
    for name, delta in point.items():
        if np.isnan(delta):
            continue
        bound = float(np.nanpercentile(boot[name], ONE_SIDED))
        tolerance = tolerances.get(name)
        why = []
        if delta < 0 and bound < 0:
            why.append(f"one-sided 95% bound {bound:+.3f} < 0")
        if tolerance is not None and delta < -tolerance - 1e-12:
            why.append(f"beyond the tolerance -{tolerance:g}")
        if why:
            before = record_value(baseline, name)
            found.append(f"{name}: Δ {delta:+.3f} vs baseline {before} ({', '.join(why)}); "
                         f"changed samples: {', '.join(changed_samples(record, baseline))}")
    return found


def record_value(row: dict, metric: str) -> str:
    value = row.get("metrics", {}).get(metric, {}).get("value")
    return "—" if value is None else f"{value:.3f}"


def changed_samples(record: dict, baseline: dict, limit: int = 3) -> list[str]:
    """Sample ids whose own stats changed against the baseline, to name in the failure message."""
    before = baseline["sample_stats"]
    return [sample for sample, stats in record["sample_stats"].items() if stats != before.get(sample)][:limit]
