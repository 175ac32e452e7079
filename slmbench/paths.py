"""Where slmbench keeps what it can rebuild: converted checkpoints and generations."""

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache directory: ``$SLMBENCH_CACHE``, default ``~/.cache/slmbench``."""
    return Path(os.environ.get("SLMBENCH_CACHE") or Path.home() / ".cache" / "slmbench").expanduser()


def adapters_root() -> Path:
    """Where `slmbench train` writes adapters and the bench finds them: ``$SLMBENCH_ADAPTERS``, default ``./adapters``."""
    return Path(os.environ.get("SLMBENCH_ADAPTERS") or "adapters").expanduser()
