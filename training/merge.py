"""Merge a LoRA adapter into its base: a plain transformers checkpoint that needs no PEFT to run.

Run:  python -m slmbench.training merge adapters/smollm2-135m-instruct/iris/fast --out merged/smollm2-iris-fast

The result loads with `load_model("merged/smollm2-iris-fast")` and gives the same greedy outputs
(float32) as the base with the adapter. It is written to a staging folder and renamed into place.
"""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

from slmbench.adapters import read_adapter
from slmbench.atomic import write_json_atomic
from slmbench.errors import AdapterError, TrainingConfigError
from slmbench.loading import load_model

MARKER = "merged_from.json"  # provenance; also marks a folder a later merge may replace


def base_model_of(adapter_dir: Path) -> str:
    """What `load_model` needs to find an adapter's base (training_config.json, else adapter_config.json)."""
    info = read_adapter(adapter_dir)
    base = info.training.get("base_model") or info.base_model_name
    if not base:
        raise AdapterError(f"{adapter_dir}: adapter_config.json does not name its base model (base_model_name_or_path)")
    return base


def merge_adapter(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Fold the adapter's weights into its base (float32) and save model + tokenizer to `out_dir`.

    A base model used without a chat template (e.g. gemma3-270m, registered as a base model) is
    saved without one, since a local directory decides from its tokenizer whether to use it.

    Raises:
        TrainingConfigError: `out_dir` exists and is not an earlier merge (it is never overwritten).
        AdapterError / ModelLoadError: the adapter or its base cannot be loaded.
    """
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if out_dir.exists() and not (out_dir / MARKER).is_file():
        raise TrainingConfigError(f"{out_dir} exists and is not a merged model; choose another --out")
    loaded = load_model(base_model_of(adapter_dir), dtype="float32", adapter=adapter_dir, merge_adapter=True)
    merged = loaded.model
    tokenizer = copy.copy(loaded.tokenizer)  # loads of this base share its tokenizer (slmbench.loading)
    if not loaded.chat:
        tokenizer.chat_template = None
    staging = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        merged.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        write_json_atomic(staging / MARKER, _provenance(loaded, adapter_dir))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


def _provenance(loaded, adapter_dir: Path) -> dict:
    return {
        "base_model": loaded.spec.name, "base_weights_hash": loaded.weights_hash,
        "adapter_dir": str(adapter_dir.resolve()), "adapter_hash": loaded.adapter_hash,
        "chat_template": loaded.chat, "training": read_adapter(adapter_dir).training or None,
    }
