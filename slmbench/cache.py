"""The generation cache: one small JSON file per (model, adapter, prompt, decoding) key.

Entries are written atomically as each batch finishes, so an interrupted run keeps what it
finished. Each entry carries its key and a checksum: a corrupt or truncated entry is detected,
discarded and regenerated, never returned. A cache that cannot be written (read-only, disk full,
$SLMBENCH_CACHE naming a file) is warned about once; the run goes on and keeps its outputs in memory.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import shutil
import warnings
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from slmbench.atomic import write_text_atomic
from slmbench.defaults import DEFAULT_BATCH_SIZE
from slmbench.errors import SlmbenchWarning
from slmbench.paths import cache_root

log = logging.getLogger(__name__)
FORMAT = 3  # layout of the key material below; the engine's own code is hashed into it (engine_version)
_UNWRITABLE: set[Path] = set()  # cache roots a write failed in: warned once per process, then skipped
ENGINE_SOURCES = ("generation.py", "jsontext.py")  # decoding loop, stop rules and JSON end detection
CONSTRAINED_SOURCES = ("constrained.py",)  # the schema mask: in the keys of structured outputs only
SERVER_ENGINE_SOURCES = ("server_engine.py", "jsontext.py")  # requests to a server, and where its text is cut


@lru_cache(maxsize=None)
def engine_version(sources: tuple[str, ...] = ENGINE_SOURCES) -> str:
    """Hash of the generation engine's source: any change to decoding or stopping renews the keys."""
    here = Path(__file__).parent
    return hashlib.sha256(b"".join((here / name).read_bytes() for name in sources)).hexdigest()[:16]


@lru_cache(maxsize=None)  # read once per process, not once per prompt
def library_version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def generation_key(loaded, rendered_prompt: str, decoding, server: dict | None = None,
                   schema: dict | None = None, batch_size: int = DEFAULT_BATCH_SIZE) -> str:
    """Hash of everything that can change a greedy completion.

    `server` is a server engine's identity (slmbench.server_engine: backend, server version, served
    name..., requests in flight); without it the completion comes from transformers in this process, at
    `batch_size` prompts per batch. `schema` is the JSON Schema structured decoding constrains to (None when
    unconstrained).
    """
    material = {
        "format": FORMAT,
        "weights": loaded.weights_hash,
        "adapter": loaded.adapter_hash,
        "tokenizer": loaded.tokenizer_hash,  # tokenizer, chat template, generation config (EOS ids)
        "engine": {"name": "slmbench.generation", "version": engine_version()},
        "dtype": loaded.dtype,
        "device": loaded.device,  # known before deferred weights load (slmbench.loading)
        "prompt": rendered_prompt,
        "decoding": asdict(decoding),
        "versions": {name: library_version(name) for name in ("torch", "transformers", "peft")},
    }
    if server is not None:
        material["engine"] = {**server, "client": engine_version(SERVER_ENGINE_SOURCES)}
    else:  # in bfloat16 a batch's padding moves greedy outputs (docs/performance.md: SmolLM2 iris adapter,
        # accuracy 0.733 at batch 16, 0.500 at 64): a rerun at another batch size generates again
        material["batch_size"] = batch_size
    if schema is not None:
        material["schema"] = json.dumps(schema)  # as text: the property order is the order the grammar writes
        if server is None:  # the mask's code and the grammar engine's version change what it allows
            material["constrained"] = {"version": engine_version(CONSTRAINED_SOURCES),
                                       "llguidance": library_version("llguidance")}
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
        except (FileNotFoundError, NotADirectoryError):  # absent, or the cache root is not a folder
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
        if self.root in _UNWRITABLE:
            return
        entry = {"key": key, "record": record, "checksum": _checksum(record)}
        try:
            write_text_atomic(self._path(key), json.dumps(entry, ensure_ascii=False))
        except OSError as error:
            _UNWRITABLE.add(self.root)
            warnings.warn(f"generation cache {self.root} cannot be written ({error}); generating in memory, "
                          f"nothing more is cached this run (set SLMBENCH_CACHE to a writable folder)",
                          SlmbenchWarning, stacklevel=2)

    def _discard(self, path: Path, reason: str) -> None:
        log.warning("discarding damaged cache entry %s: %s", path, reason)
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        except OSError as error:  # a read-only cache: the entry stays, and is regenerated each time
            log.warning("could not remove %s: %s", path, error)
        return None
