"""slmbench: fine-tune small language models with LoRA and hold them to account with pytest.

Installed, everything lives under this one namespace: ``slmbench.tasks``, ``slmbench.training``,
``slmbench.bench`` (the pytest plugin and suite) and the shared machinery beside this file
(registry, loading, generation and its cache). Nothing else is put into site-packages.
"""

from pathlib import Path as _Path

from slmbench.errors import AdapterError, DatasetError, ModelLoadError, SlmbenchError, TaskError, UnknownModelError


def _checkout_subpackages() -> None:
    # The repository keeps tasks/, training/ and bench/ beside slmbench/ (the layout the project
    # is designed around); the wheel maps them under slmbench/ (pyproject `package-dir`). In a
    # checkout they are found through this package's __path__, so `slmbench.tasks` is the same
    # module whether it runs from the clone, an editable install or the wheel.
    here = _Path(__file__).resolve().parent
    root = here.parent
    if not (here / "tasks").is_dir() and (root / "tasks" / "__init__.py").is_file() \
            and (root / "pyproject.toml").is_file():
        __path__.append(str(root))  # noqa: F821 - module-level __path__ of a package


_checkout_subpackages()

# Before anything here imports torch: on a CPU other jobs already use, idle OpenMP threads sleep
# rather than spin (slmbench/openmp.py).
from slmbench.openmp import choose_wait_policy as _choose_wait_policy  # noqa: E402

_choose_wait_policy()

__all__ = ["AdapterError", "DatasetError", "ModelLoadError", "SlmbenchError", "TaskError", "UnknownModelError"]
