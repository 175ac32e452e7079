"""What a training run leaves next to its adapter besides the weights: loss history, plot, provenance."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
from pathlib import Path

from slmbench.hashing import file_sha256
from slmbench.loading import LoadedModel
from slmbench.tasks import Task
from slmbench.training.config import TrainConfig
from slmbench.training.data import ExampleSet

LIBRARIES = ("torch", "transformers", "peft", "accelerate")


def loss_history(log_history: list[dict]) -> dict:
    """Train loss per logged step and val loss per epoch, from `trainer.state.log_history`."""
    train = [{"step": e["step"], "epoch": round(e["epoch"], 4), "loss": e["loss"]} for e in log_history if "loss" in e]
    val = [{"step": e["step"], "epoch": round(e["epoch"], 4), "loss": e["eval_loss"]}
           for e in log_history if "eval_loss" in e]
    return {"train": train, "val": val, "best": min(val, key=lambda e: e["loss"]) if val else None}


def plot_loss(history: dict, path: Path, title: str) -> None:
    """Save train and val loss against epochs as a PNG (no display needed)."""
    from matplotlib.figure import Figure  # without pyplot: no GUI backend is ever touched

    figure = Figure(figsize=(7, 4), dpi=110)
    axes = figure.add_subplot()
    axes.plot([e["epoch"] for e in history["train"]], [e["loss"] for e in history["train"]],
              label="train (per step)", linewidth=1, alpha=0.8)
    if history["val"]:
        axes.plot([e["epoch"] for e in history["val"]], [e["loss"] for e in history["val"]],
                  "o-", label="val (per epoch)")
        best = history["best"]
        axes.axvline(best["epoch"], color="grey", linestyle=":", label=f"kept: epoch {best['epoch']:g}")
    axes.set(xlabel="epoch", ylabel="loss (completion tokens)", title=title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)


def base_model_reference(config: TrainConfig, loaded: LoadedModel) -> str:
    """The name `load_model` needs to find the base again (absolute for local directories)."""
    return loaded.spec.location if loaded.spec.kind == "path" else config.model


def loadable_base(loaded: LoadedModel) -> str:
    """What PEFT's `base_model_name_or_path` should hold so that AutoPeftModelForCausalLM finds the base.

    The hub id for hub models, the checkpoint directory for local and converted GGUF models; tiny
    random models exist only in code, so they keep their registry name.
    """
    if loaded.spec.kind == "hub":
        return loaded.spec.location
    if loaded.spec.kind == "random":
        return loaded.spec.name
    return str(Path(loaded.model.name_or_path).resolve())


IDENTITY_PARTS = {"base_weights_hash": "base weights", "task_version": "task version",
                  "train_data_sha256": "train data", "val_data_sha256": "val data",
                  "examples_sha256": "examples (prompt, template or tokenizer)"}


def replacement_reason(previous: dict, run: dict) -> str | None:
    """What differs between an earlier adapter's record and this run, e.g. `settings: max_steps 1 -> 2`."""
    if "unreadable" in previous:
        return "its training_config.json is unreadable"
    old, new = previous.get("settings") or {}, run["settings"]
    changes = [f"{key} {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(set(old) | set(new))
               if old.get(key) != new.get(key)]
    reasons = [f"settings changed: {', '.join(changes)}"] if changes else []
    reasons += [f"{label} changed" for key, label in IDENTITY_PARTS.items() if previous.get(key) != run.get(key)]
    return "; ".join(reasons) or "same settings, retrained with --force"


def describe_run(config: TrainConfig, loaded: LoadedModel, task: Task, train_set: ExampleSet,
                 val_set: ExampleSet) -> dict:
    """Everything that identifies the run, and the fingerprint over what can change the adapter."""
    settings = config.as_dict()
    if not settings["compile_layers"]:  # absent = eager: adapters trained before the option keep their fingerprint
        del settings["compile_layers"]
    identity = {
        "settings": settings,
        "base_weights_hash": loaded.weights_hash,
        "task_version": task.version,
        "train_data_sha256": file_sha256(task.data_path("train")),
        "val_data_sha256": file_sha256(task.data_path("val")),
        # token ids after prompt building, chat template and tokenizer: catches changes to any of them
        "examples_sha256": hashlib.sha256((train_set.sha256() + val_set.sha256()).encode()).hexdigest(),
    }
    fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return {
        "preset": config.preset, "base_model": base_model_reference(config, loaded), "base_model_name": loaded.spec.name,
        "base_model_loadable": loadable_base(loaded),
        "task": task.name, **identity, "fingerprint": fingerprint, "chat_template": loaded.chat,
        "train_examples": len(train_set.examples), "val_examples": len(val_set.examples),
        "truncated_examples": {"train": list(train_set.truncated), "val": list(val_set.truncated)},
        "library_versions": {name: importlib.metadata.version(name) for name in LIBRARIES},
        "python": platform.python_version(),
    }
