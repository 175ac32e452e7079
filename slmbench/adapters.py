"""Finding trained adapters and reading what they record: the one place the bench, training and CLI use.

`slmbench train` writes ``<root>/<model>/<task>/<preset>/`` holding the PEFT adapter
(adapter_config.json, adapter_model.safetensors) and training_config.json (settings, base model,
hashes). Hidden siblings (``.fast.partial``, ``.fast.old``) are a run in progress or one a kill
left behind: never adapters. Light imports only (no torch), so listing adapters costs no model load.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from slmbench.errors import AdapterError, SlmbenchWarning

PEFT_CONFIG = "adapter_config.json"
WEIGHTS = "adapter_model.safetensors"
TRAINING_CONFIG = "training_config.json"
FINISHED_FILES = (PEFT_CONFIG, WEIGHTS, TRAINING_CONFIG)


@dataclass(frozen=True)
class AdapterInfo:
    """What an adapter folder says about itself; `training` is {} for adapters not written by `train`."""

    path: Path
    base_model_name: str | None  # our registry name of the base (or what adapter_config.json names)
    task: str | None
    preset: str | None
    training: dict = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """`lora-<preset>` (`lora-<preset>-seed<N>` for a seed other than 0) for adapters `slmbench train`
        wrote, else the folder name."""
        if not self.preset:
            return self.path.name
        seed = self.training.get("settings", {}).get("seed", 0)
        return f"lora-{self.preset}" + (f"-seed{seed}" if seed else "")


def read_json_object(path: Path) -> dict:
    """A JSON object from an adapter's metadata file; AdapterError naming the file, line and cause."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AdapterError(f"{path}:{error.lineno}: not valid JSON ({error.msg}, column {error.colno}); "
                           f"retrain the adapter or restore the file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise AdapterError(f"{path}: cannot be read ({error})") from None
    if not isinstance(value, dict):
        raise AdapterError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def read_adapter(folder: str | Path) -> AdapterInfo:
    """Read an adapter folder's metadata (training_config.json, else adapter_config.json).

    Raises:
        AdapterError: no adapter_config.json, or a metadata file that is not a JSON object.
    """
    folder = Path(folder)
    if not (folder / PEFT_CONFIG).is_file():
        raise AdapterError(f"{folder} is not a PEFT adapter: no {PEFT_CONFIG} "
                           f"(expected a directory written by `slmbench train` or PeftModel.save_pretrained)")
    peft_config = read_json_object(folder / PEFT_CONFIG)
    training = read_json_object(folder / TRAINING_CONFIG) if (folder / TRAINING_CONFIG).is_file() else {}
    base_name = (training.get("base_model_name") or training.get("model")
                 or peft_config.get("base_model_name_or_path"))
    return AdapterInfo(folder, base_name, training.get("task"), training.get("preset"), training)


def adapter_label(folder: str | Path) -> str:
    """`lora-<preset>` for adapters laid out by `slmbench train`, else the directory name."""
    try:
        return read_adapter(folder).label
    except AdapterError:
        return Path(folder).name


def is_finished(folder: Path) -> bool:
    """True for a folder `train` completed: visible, with the adapter, its weights and training_config.json."""
    return not folder.name.startswith(".") and all((folder / name).is_file() for name in FINISHED_FILES)


def find_adapters(root: str | Path, models: list[str] | None = None, tasks: list[str] | None = None) -> list[AdapterInfo]:
    """Every finished adapter under ``root/<model>/<task>/<preset>``, optionally only of some models and tasks.

    A folder with unreadable metadata, or only part of an adapter, is skipped with a warning naming
    the file, so one damaged adapter never hides the others.
    """
    root = Path(root)
    found = []
    for model in models or ["*"]:
        for task in tasks or ["*"]:
            for folder in sorted(root.glob(f"{model}/{task}/*")):
                if info := _finished_or_warn(folder):
                    found.append(info)
    return sorted(found, key=lambda info: info.path)


def finished_adapters(root: str | Path) -> list[Path]:
    """Folders of every finished adapter under `root` (see `find_adapters`)."""
    return [info.path for info in find_adapters(root)]


def _finished_or_warn(folder: Path) -> AdapterInfo | None:
    if folder.name.startswith(".") or not folder.is_dir():
        return None
    present = [name for name in FINISHED_FILES if (folder / name).is_file()]
    if not present:
        return None
    if len(present) < len(FINISHED_FILES):
        missing = ", ".join(name for name in FINISHED_FILES if name not in present)
        warnings.warn(f"skipped adapter {folder}: no {missing} (an incomplete copy?)", SlmbenchWarning, stacklevel=3)
        return None
    try:
        return read_adapter(folder)
    except AdapterError as error:
        warnings.warn(f"skipped adapter {folder}: {error}", SlmbenchWarning, stacklevel=3)
        return None


def weights_sha256(folder: Path) -> str:
    """sha256 of the adapter's weights file, read in full (adapters are small; no memo to go stale)."""
    digest = hashlib.sha256()
    with (Path(folder) / WEIGHTS).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_weights(info: AdapterInfo) -> None:
    """Refuse adapter weights that differ from the sha256 `train` recorded (flipped bytes, a partial copy)."""
    recorded = info.training.get("adapter_sha256")
    if recorded and weights_sha256(info.path) != recorded:
        raise AdapterError(f"{info.path / WEIGHTS} does not match the sha256 recorded in {TRAINING_CONFIG} when it was "
                           f"trained: the file is damaged or was replaced; copy it again or retrain (--force)")
