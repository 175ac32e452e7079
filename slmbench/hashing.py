"""Content hashes that identify weights and adapters in cache keys and provenance."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from slmbench.atomic import write_text_atomic
from slmbench.paths import cache_root


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised on (path, size, mtime) so big weights are read once."""
    path = Path(path).resolve()
    stat = path.stat()
    memo_id = hashlib.sha1(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    memo = cache_root() / "hashes" / memo_id
    if memo.is_file():
        cached = memo.read_text().strip()
        if len(cached) == 64:
            return cached
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    try:
        write_text_atomic(memo, digest.hexdigest())
    except OSError:  # a read-only or full cache only costs hashing again next time
        pass
    return digest.hexdigest()


def files_sha256(paths: list[Path]) -> str:
    """One hash over several files (names and contents), order-independent."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(f"{path.name}:{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def state_dict_sha256(model) -> str:
    """Hash of a model's parameters and buffers; meant for small (tiny random) models."""
    import torch  # here, not at module import: data files are hashed by sessions that never load torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tokenizer_sha256(tokenizer, generation_config) -> str:
    """Hash of what turns prompts into tokens and decides where a completion ends.

    The tokenizer's full definition (vocabulary, merges, normalisation), its special tokens and chat
    template, and the generation config (EOS ids): hashing the loaded objects covers checkpoint
    files and code-built tokenizers alike.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    definition = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    material = {
        "definition": hashlib.sha256(definition.encode()).hexdigest(),
        "special_tokens": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "chat_template": getattr(tokenizer, "chat_template", None),
        "generation_config": generation_config.to_diff_dict() if generation_config is not None else None,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()
