"""Shared machinery for slmbench: model registry, loading, generation and its cache.

Both ``training/`` and ``bench/`` import from here; nothing here imports them.
"""

from slmbench.errors import AdapterError, DatasetError, ModelLoadError, SlmbenchError, UnknownModelError

__all__ = ["AdapterError", "DatasetError", "ModelLoadError", "SlmbenchError", "UnknownModelError"]
