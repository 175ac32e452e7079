"""What a bench run covers: models (and their adapters) × tasks, each one a `Case`.

A case id reads as a leaderboard key: ``smollm2-135m-instruct::iris`` for a base model,
``gemma3-270m+3shot::it_entities`` for the base model with 3 worked examples in each prompt,
``gemma3-270m+lora-fast::it_entities`` for a model with an adapter; ``+structured`` ends the label
of a case whose outputs are constrained to the task's JSON Schema (``--bench-structured``). Classical
baselines (``classical-knn::products``) are cases too; see bench/classical.py.
"""

from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, replace
from pathlib import Path

from slmbench.adapters import AdapterInfo, adapter_label, find_adapters, read_adapter
from slmbench.errors import AdapterError, SlmbenchError, TaskError
from slmbench.paths import adapters_root
from slmbench.registry import MODELS, ModelSpec, how_to_get, model_status, resolve
from slmbench.tasks import resolve_task, task_names

BASE = "base"


class SelectionError(SlmbenchError):
    """A --bench-* option that names nothing the bench can run."""


@dataclass(frozen=True)
class Case:
    """One model (0-shot or K-shot, or model + adapter) on one task."""

    model: str  # what load_model receives: a registry name, a local path or a hub id
    spec: ModelSpec
    task: str
    adapter: Path | None = None
    shots: int = 0  # worked examples from the train split before each prompt (base models only)
    structured: bool = False  # outputs constrained to the task's JSON Schema (JSON tasks only)

    @property
    def kind(self) -> str:
        """"base" for the model alone (any K), "adapter" with an adapter."""
        return BASE if self.adapter is None else "adapter"

    @property
    def variant(self) -> str:
        """"base", ``<K>-shot``, or the adapter's label (``lora-<preset>``); ``+structured`` when constrained."""
        if self.adapter is not None:
            variant = adapter_label(self.adapter)
        else:
            variant = f"{self.shots}-shot" if self.shots else BASE
        return f"{variant}+structured" if self.structured else variant

    @property
    def label(self) -> str:
        if self.adapter is not None:
            label = f"{self.spec.name}+{adapter_label(self.adapter)}"
        else:
            label = f"{self.spec.name}+{self.shots}shot" if self.shots else self.spec.name
        return f"{label}+structured" if self.structured else label

    @property
    def id(self) -> str:
        return f"{self.label}::{self.task}"

    @property
    def group(self) -> str:
        """Cases of one group share a model load (and an xdist worker)."""
        return self.spec.name

    def unavailable(self) -> str | None:
        """Why this case cannot run here (model not installed or not cached), or None."""
        status = model_status(self.spec)
        if status == "ready":
            return None
        return f"{self.spec.label} is {status} ({self.spec.location}); {how_to_get(self.spec) or 'check the path'}"


def default_models() -> list[str]:
    """Every real registry model: offline ones run, hub ones skip unless cached."""
    return [name for name, spec in MODELS.items() if not spec.is_random]


def select_models(names: list[str]) -> list[tuple[str, ModelSpec]]:
    """Resolve model names; a name with * ? or [ is a glob over registry names."""
    selected: dict[str, tuple[str, ModelSpec]] = {}
    for name in names:
        if any(ch in name for ch in "*?["):
            matches = fnmatch.filter(MODELS, name)
            if not matches:
                raise SelectionError(f"--bench-models: {name!r} matches no registry model; known: {', '.join(MODELS)}")
            for match in matches:
                selected.setdefault(match, (match, MODELS[match]))
        else:
            spec = resolve(name)
            _check_exists(name, spec)
            selected.setdefault(spec.name, (name, spec))
    return list(selected.values())


def default_tasks() -> list[str]:
    """The built-in tasks and those installed packages register (``slmbench.tasks`` entry points)."""
    return task_names()


def _check_exists(name: str, spec: ModelSpec) -> None:
    """A directory must hold a model, and a hub id outside the registry must be in the local HF cache.

    Offline there is no way to tell a mistyped hub id from a real model that is not downloaded, so only
    registry models (known to exist) skip with the fix; any other name must be found here.
    """
    if spec.kind == "path" and model_status(spec) != "ready":
        raise SelectionError(f"--bench-models: {name} is a directory but not a model (no config.json in it)")
    known_hub_ids = {entry.location for entry in MODELS.values() if entry.kind == "hub"}
    if spec.kind == "hub" and spec.location not in known_hub_ids and model_status(spec) != "ready":
        close = difflib.get_close_matches(name, sorted(known_hub_ids), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise SelectionError(f"--bench-models: hub model {name!r} is not in the local Hugging Face cache; {hint}"
                             f"check the id, or {how_to_get(spec)}")


def select_tasks(names: list[str]) -> list[str]:
    """The tasks' names in the order given; each may be a name, a module or a file (see resolve_task)."""
    try:
        return list(dict.fromkeys(resolve_task(name).name for name in names))
    except TaskError as error:
        raise SelectionError(f"--bench-tasks: {error}") from None


def build_cases(model_names: list[str], task_names: list[str], adapter_option: list[str],
                fewshot: int | None = None, structured: bool = False) -> list[Case]:
    """Every selected model × task: a model's base cases, then each adapter's (one model load each).

    Args:
        fewshot: K for the K-shot base cases; None takes each task's ``fewshot_k``, 0 adds none.
        structured: follow each case of a JSON task with the same case constrained to the task's
            JSON Schema, so the board shows constrained and free rows side by side.
    """
    models = select_models(model_names)
    tasks = select_tasks(task_names)
    adapters = _adapters(adapter_option, [spec.name for _, spec in models], tasks)
    cases = []
    for name, spec in models:
        cases += base_cases(name, spec, tasks, fewshot)
        for adapter in adapters:
            if adapter.base_model_name in (spec.name, spec.location, name):
                cases += [Case(name, spec, task, adapter.path) for task in tasks if adapter.task in (task, None)]
    used = {case.adapter for case in cases}
    for adapter in adapters:
        if adapter.path not in used:
            raise SelectionError(f"--bench-adapters: {adapter.path} was trained for {adapter.base_model_name} on "
                                 f"{adapter.task or 'any task'}, which is not among the selected models and tasks")
    if structured:
        json_tasks = {task for task in tasks if resolve_task(task).is_json}
        cases = [twin for case in cases
                 for twin in ([case, replace(case, structured=True)] if case.task in json_tasks else [case])]
    return cases


def base_cases(name: str, spec: ModelSpec, tasks: list[str], fewshot: int | None) -> list[Case]:
    """The model alone on each task: 0-shot, then K-shot where K (the option or the task's default) > 0."""
    cases = []
    for task in tasks:
        shots = resolve_task(task).fewshot_k if fewshot is None else fewshot
        cases += [Case(name, spec, task)] + ([Case(name, spec, task, shots=shots)] if shots > 0 else [])
    return cases


def _adapters(option: list[str], models: list[str], tasks: list[str]) -> list[AdapterInfo]:
    """`auto`: every finished adapter of the models and tasks (damaged ones skipped with a warning)."""
    if option in ([], ["none"]):
        return []
    if option == ["auto"]:
        return find_adapters(adapters_root(), models, tasks)
    try:
        return [read_adapter(Path(p).expanduser()) for p in option]
    except AdapterError as error:
        raise SelectionError(f"--bench-adapters: {error}") from None
