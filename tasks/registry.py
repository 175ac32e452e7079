"""Finding a task by what a user typed: a built-in name, an installed package's task, or a module.

Everywhere a task is named (``--bench-tasks``, ``slmbench train/evaluate/infer --task``) it may be::

    iris                     a built-in task (tasks/iris.py, data in fixtures/iris/)
    invoices                 a task an installed package registers in the ``slmbench.tasks``
                             entry-point group, e.g. ``invoices = "mypkg.tasks.invoices"``
    mypkg.tasks.invoices     an importable module exposing ``TASK`` (``module:NAME`` for another name)
    ./tasks/invoices.py      a Python file exposing ``TASK``

A task from outside slmbench is checked like ours (tasks/validation.py) and keeps its data next to
its module, in ``<module folder>/<task name>/``, unless its Task names a ``data_dir``. Once loaded,
it answers to its own name for the rest of the process, so cases, records and adapter folders
carry the plain name (``tiny-random-llama::invoices``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import traceback
from dataclasses import replace
from pathlib import Path
from types import ModuleType

from slmbench.errors import TaskError
from slmbench.tasks.core import Task
from slmbench.tasks.validation import check_task

ENTRY_POINT_GROUP = "slmbench.tasks"
_loaded: dict[str, tuple[Task, str]] = {}  # name -> (task, where it came from), for tasks not built in


def task_names(include_loaded: bool = False) -> list[str]:
    """Built-in tasks, then those installed packages register; with `include_loaded`, also every
    task loaded from a module or file so far in this process."""
    names = [*_builtin(), *(entry.name for entry in _entry_points()), *(_loaded if include_loaded else ())]
    return list(dict.fromkeys(names))


def resolve_task(name: str) -> Task:
    """The Task that `name` stands for (see the module docstring).

    Raises:
        TaskError: nothing by that name, a module that fails to import or has no ``TASK``, or a
            task that fails its checks; the message names the module and the field.
    """
    builtin = _builtin()
    if name in builtin:
        return builtin[name]
    if name in _loaded:
        return _loaded[name][0]
    if name.endswith(".py") or "/" in name or os.sep in name:
        return _register(*_from_file(Path(name)))
    entry = next((entry for entry in _entry_points() if entry.name == name), None)
    if entry is not None:
        return _register(*_from_entry_point(entry))
    if "." in name or ":" in name:
        return _register(*_from_module(name))
    raise TaskError(f"unknown task {name!r}; choose one of {', '.join(task_names())}, or name a task module "
                    "of your own (mypkg.tasks.invoices or ./tasks/invoices.py)")


def _builtin() -> dict[str, Task]:
    from slmbench.tasks import TASKS  # the package imports this module: look it up at call time

    return TASKS


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _from_file(path: Path) -> tuple[object, Path, str]:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise TaskError(f"{path}: no such task file")
    # One module per file, under a name no real package uses (two invoices.py may coexist).
    module_name = f"_slmbench_task_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[module_name]
            raise TaskError(_import_failure(str(path), error)) from None
    return _task_of(module, "TASK", str(path)), path.parent, str(path)


def _from_module(name: str) -> tuple[object, Path, str]:
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and (module_name + ".").startswith(error.name + "."):
            raise TaskError(f"unknown task {name!r}: no module named {error.name!r} to import; known tasks: "
                            f"{', '.join(task_names())}") from None
        raise TaskError(_import_failure(module_name, error)) from None
    except Exception as error:
        raise TaskError(_import_failure(module_name, error)) from None
    return _task_of(module, attribute or "TASK", name), _folder_of(module), name


def _from_entry_point(entry: importlib.metadata.EntryPoint) -> tuple[object, Path, str]:
    origin = f"entry point {entry.name} = {entry.value!r} ({ENTRY_POINT_GROUP})"
    try:
        value = entry.load()
    except Exception as error:
        raise TaskError(_import_failure(origin, error)) from None
    task = _task_of(value, "TASK", origin) if isinstance(value, ModuleType) else value
    if getattr(task, "name", None) != entry.name:
        raise TaskError(f"{origin}: names a task called {getattr(task, 'name', None)!r}; "
                        f"the entry point's name must be the task's name")
    return task, _folder_of(sys.modules[entry.module]), origin


def _task_of(module: ModuleType, attribute: str, origin: str) -> object:
    if not hasattr(module, attribute):
        raise TaskError(f"{origin}: no {attribute} in the module; a task module defines {attribute} = Task(...)")
    return getattr(module, attribute)


def _folder_of(module: ModuleType) -> Path:
    if not getattr(module, "__file__", None):
        raise TaskError(f"{module.__name__}: a task module must be a file (its data folder sits next to it)")
    return Path(module.__file__).resolve().parent


def _register(task: object, folder: Path, origin: str) -> Task:
    """Check a task from outside slmbench, place its data folder, and make its name resolve."""
    task = check_task(task, origin)
    if task.name in _builtin():
        raise TaskError(f"{origin}: name: {task.name!r} is a built-in task; give yours another name")
    if task.name in _loaded:
        known, known_origin = _loaded[task.name]
        if known_origin != origin:
            raise TaskError(f"{origin}: name: a task called {task.name!r} is already loaded from {known_origin}")
        return known
    data_dir = folder / task.name if task.data_dir is None else folder / Path(task.data_dir).expanduser()
    task = replace(task, data_dir=data_dir)
    _loaded[task.name] = (task, origin)
    return task


def _import_failure(origin: str, error: Exception) -> str:
    """``origin: file:line: ErrorType: message`` for an exception raised while importing a task."""
    if isinstance(error, SyntaxError):
        return f"{origin}: {error.filename}:{error.lineno}: syntax error: {error.msg}"
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith("<frozen")]
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{origin}: importing it failed{where}: {type(error).__name__}: {error}"
