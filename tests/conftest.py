"""Shared fixtures for the harness's own tests."""

import pytest

from slmbench.cache import GenerationCache


@pytest.fixture
def cache(tmp_path):
    """A generation cache private to one test."""
    return GenerationCache(tmp_path / "generations")


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, so hub models are certainly absent."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-hub"))
    return tmp_path / "hf-hub"
