"""slmbench/gguf_models.py: locating a PyPI-shipped GGUF file without re-reading it on every load."""

import hashlib

import pytest

from slmbench.gguf_models import gguf_file
from slmbench.registry import GGUF_SOURCES, resolve

parts = pytest.importorskip(GGUF_SOURCES["gemma3-270m"].package)


@pytest.mark.parametrize("content_matches", [True, False])
def test_an_assembled_gguf_is_reassembled_only_when_its_sha256_differs(tmp_path, monkeypatch, content_matches):
    """assemble() reads the whole file for its sha256 on every call; file_sha256 remembers it."""
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path))
    target = tmp_path / "gguf" / GGUF_SOURCES["gemma3-270m"].filename
    target.parent.mkdir()
    target.write_bytes(b"a small stand-in for the assembled GGUF")
    expected = hashlib.sha256(target.read_bytes() if content_matches else b"other bytes").hexdigest()
    monkeypatch.setattr(parts, "EXPECTED_SHA256", expected)
    assembled = []
    monkeypatch.setattr(parts, "assemble", lambda path: assembled.append(path) or path)
    assert gguf_file(resolve("gemma3-270m")) == target
    assert assembled == ([] if content_matches else [target])
