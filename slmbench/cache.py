"""The generation cache: one small JSON file per (model, adapter, prompt, decoding) key.

Entries are written atomically as each batch finishes, so an interrupted run keeps what it
finished. Each entry carries its key and a checksum: a corrupt or truncated entry is detected,
discarded and regenerated, never returned.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from slmbench.atomic import write_text_atomic
from slmbench.paths import cache_root

log = logging.getLogger(__name__)
FORMAT = 1


@lru_cache(maxsize=None)  # read once per process, not once per prompt
def library_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def generation_key(loaded, rendered_prompt: str, decoding) -> str:
    """Hash of everything that can change a greedy completion."""
    material = {
        "format": FORMAT,
        "weights": loaded.weights_hash,
        "adapter": loaded.adapter_hash,
        "dtype": loaded.dtype,
        "device": str(next(loaded.model.parameters()).device.type),
        "prompt": rendered_prompt,
        "decoding": asdict(decoding),
        "versions": {name: library_version(name) for name in ("torch", "transformers", "peft")},
    }
    if loaded.adapter_merged:  # merged weights round differently from separate LoRA layers (bf16)
        material["adapter_merged"] = True
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _checksum(record: dict) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


class GenerationCache:
    """Completions on disk under ``$SLMBENCH_CACHE/generations`` (or a given directory)."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root) if root is not None else cache_root() / "generations"

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The cached completion record for key, or None when absent or damaged."""
        path = self._path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            return self._discard(path, f"unreadable ({error})")
        if not isinstance(entry, dict) or entry.get("key") != key or not isinstance(entry.get("record"), dict):
            return self._discard(path, "wrong key or shape")
        if entry.get("checksum") != _checksum(entry["record"]):
            return self._discard(path, "checksum mismatch")
        return entry["record"]

    def put(self, key: str, record: dict) -> None:
        """Store a completion record atomically."""
        entry = {"key": key, "record": record, "checksum": _checksum(record)}
        write_text_atomic(self._path(key), json.dumps(entry, ensure_ascii=False))

    def _discard(self, path: Path, reason: str) -> None:
        log.warning("discarding damaged cache entry %s: %s", path, reason)
        path.unlink(missing_ok=True)
        return None
