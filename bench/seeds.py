"""Seed variance: adapters of one variant trained with several seeds, summarised across seeds.

`slmbench train --seeds 0,1,2` leaves `lora-fast`, `lora-fast-seed1` and `lora-fast-seed2`; the
bench scores each (its own row, its own bootstrap CI over samples) and the leaderboard adds one row
for the variant: the mean over seeds, a 95% t-interval over seeds (what another seed is likely to
give, which the per-run CIs do not say) and the min–max.
"""

from __future__ import annotations

import re

import numpy as np

SEED_SUFFIX = re.compile(r"-seed(\d+)(?=(\+structured)?$)")


def variant_family(variant: str) -> tuple[str, int]:
    """`lora-fast-seed2` -> (`lora-fast`, 2), `lora-fast-seed2+structured` -> (`lora-fast+structured`, 2);
    a variant without the suffix is seed 0."""
    match = SEED_SUFFIX.search(variant)
    return (variant[:match.start()] + variant[match.end():], int(match.group(1))) if match else (variant, 0)


def seed_summaries(records: list[dict]) -> list[dict]:
    """One summary per variant run with two or more seeds on the same model, task and data."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if record["variant"] != "base":
            family, _ = variant_family(record["variant"])
            key = (record["model"], record["task"], record["split"], record["n"],
                   record.get("provenance", {}).get("data_hash"), family)
            groups.setdefault(key, []).append(record)
    return [summarise(runs) for runs in groups.values() if len(runs) >= 2]


def summarise(runs: list[dict]) -> dict:
    """Mean, 95% t-interval over seeds and min–max of every metric the runs share."""
    runs = sorted(runs, key=lambda r: variant_family(r["variant"])[1])
    family, first = variant_family(runs[0]["variant"])[0], runs[0]
    shared = set.intersection(*(set(r["metrics"]) for r in runs))
    metrics = {}
    for name in sorted(shared):
        values = np.array([r["metrics"][name]["value"] for r in runs], dtype=float)
        mean, half = float(values.mean()), t_half_width(values)
        metrics[name] = {"value": mean, "low": mean - half, "high": mean + half,
                         "min": float(values.min()), "max": float(values.max())}
    return {"model": first["model"], "task": first["task"], "split": first["split"], "variant": family,
            "seeds": [variant_family(r["variant"])[1] for r in runs], "case_ids": [r["case_id"] for r in runs],
            "metrics": metrics}


def t_half_width(values: np.ndarray, confidence: float = 0.95) -> float:
    """Half-width of the t-interval of the mean of `values` (k - 1 degrees of freedom)."""
    k = len(values)
    from scipy import stats  # 1-2 s to import: only when a seed interval is computed, not per pytest session

    return float(stats.t.ppf((1 + confidence) / 2, k - 1) * values.std(ddof=1) / np.sqrt(k))


def seed_cell(metric: dict | None, scale: float = 1.0) -> str:
    """`mean [t-low, t-high] (min–max)` for a leaderboard cell."""
    if not metric:
        return "—"
    digits = 1 if scale == 100 else 3
    v = {k: metric[k] * scale for k in ("value", "low", "high", "min", "max")}
    return (f"{v['value']:.{digits}f} [{v['low']:.{digits}f}, {v['high']:.{digits}f}] "
            f"({v['min']:.{digits}f}–{v['max']:.{digits}f})")
