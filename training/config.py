"""Training settings: the three presets, the flat TrainConfig, and its checks.

Used by:  python -m slmbench.training --model smollm2-135m-instruct --task iris --preset fast [--epochs 2 ...]

Every check here runs before a model is loaded, so a typo costs milliseconds, not a model load.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from slmbench.errors import DatasetError, TrainingConfigError
from slmbench.registry import resolve

DEFAULT_PRESET = "balanced"
ATTENTION_KERNELS = ("eager", "sdpa")


@dataclass(frozen=True)
class Preset:
    """The settings a preset fixes; everything else keeps the TrainConfig default."""

    lr: float
    epochs: int
    batch_size: int
    lora_r: int


PRESETS: dict[str, Preset] = {
    "fast": Preset(lr=5e-4, epochs=3, batch_size=16, lora_r=4),  # minutes on CPU; a first usable adapter
    "balanced": Preset(lr=3e-4, epochs=5, batch_size=8, lora_r=8),  # the default
    "quality": Preset(lr=2e-4, epochs=8, batch_size=4, lora_r=16),  # ~4x the steps of fast; best val loss kept
}


@dataclass(frozen=True)
class TrainConfig:
    """Every knob of one LoRA run. Kept flat on purpose: it is the list of knobs, with what each trades.

    Build it with `make_config`, which starts from a preset and checks every value.
    """

    model: str  # registry name, local directory or hub id of the base model
    task: str  # the task's name (make_config resolves modules and files): trains on train, picks the epoch on val
    preset: str  # the preset the values started from; names the adapter (lora-<preset>) and its folder
    epochs: int  # passes over the train split; more fits closer, until the val loss turns back up
    lr: float  # AdamW peak learning rate (linear decay); higher learns faster, too high diverges
    batch_size: int  # examples per optimizer step (over all processes); larger = fewer, smoother steps per epoch
    lora_r: int  # adapter rank: more capacity and trainable parameters, slower and easier to overfit
    lora_alpha: int  # LoRA update is scaled by alpha / r; 2 * r unless set, so changing r keeps the scale
    lora_dropout: float = 0.0  # dropout on the adapter input. 0.05 cost 1.3-1.5x the step time on CPU (a
    # random mask and a copy of the input per adapted layer) and changed no val loss we measured; best-epoch
    # selection on the val loss is the guard against overfitting
    target_modules: tuple[str, ...] | None = None  # linear layers given adapters; None = by architecture
    micro_batch_size: int = 4  # examples per forward/backward pass; gradients accumulate up to batch_size.
    # Peak memory scales with it, the update does not: 16 recipes examples through Gemma's 262k-token
    # LM head need more than 24 GB at once, 4 need about a quarter; CPU tokens/s is the same at 4 as at 16
    max_seq_len: int = 512  # longest example in tokens; longer completions lose their tail (counted, warned)
    max_steps: int = -1  # stop after this many optimizer steps (-1 = all epochs); for smoke tests
    seed: int = 0  # seeds LoRA init, shuffling and dropout: same seed and data, same adapter
    completion_only_logits: bool = True  # project to the vocabulary only where the loss counts (fast);
    # False computes logits at every position, as a plain causal-LM loss does (the benchmark baseline)
    data: str | None = None  # a folder with train/val files to train on instead of the task's fixtures
    bf16: bool = True  # bf16 autocast for forward/backward, weights stay fp32; False = pure fp32 (slower)
    attn_implementation: str = "eager"  # transformers attention kernel for training: "eager" or "sdpa";
    # eager trained 1.06-1.10x faster on CPU at these sequence lengths (docs/performance.md)
    compile_layers: bool = False  # torch.compile each decoder layer (training/compiled.py): pairs trained
    # 1.3-1.7x faster on CPU, after a one-off compile of 1-1.5 min. Off by default: the SmolLM2 iris adapter
    # it trained predicted one class under bf16 inference (0.333 vs 0.733 eager; 0.800 in float32)

    def as_dict(self) -> dict:
        """JSON-ready settings (target_modules as a list)."""
        settings = asdict(self)
        settings["target_modules"] = list(self.target_modules) if self.target_modules else None
        return settings


OVERRIDABLE = tuple(f.name for f in fields(TrainConfig) if f.name not in ("model", "task", "preset"))


def make_config(model: str, task: str, preset: str = DEFAULT_PRESET, **overrides) -> TrainConfig:
    """A checked TrainConfig: the preset's values, then `overrides` (None values are ignored).

    Raises:
        TrainingConfigError: unknown preset, task or override key; a value out of range; a task
            without train/val data. UnknownModelError: a model name that does not resolve.
    """
    if preset not in PRESETS:
        raise TrainingConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    overrides = {key: value for key, value in overrides.items() if value is not None}
    unknown = sorted(set(overrides) - set(OVERRIDABLE))
    if unknown:
        raise TrainingConfigError(f"unknown training setting {unknown[0]!r}; known settings: {', '.join(OVERRIDABLE)}")
    values = {**asdict(PRESETS[preset]), **overrides}
    values.setdefault("lora_alpha", 2 * values["lora_r"])
    if isinstance(values.get("target_modules"), str):
        values["target_modules"] = values["target_modules"].split(",")
    if values.get("target_modules") is not None:
        values["target_modules"] = tuple(m.strip() for m in values["target_modules"] if m.strip())
    config = TrainConfig(model=model, task=_task(task).name, preset=preset, **values)
    check_config(config)
    return config


def check_config(config: TrainConfig) -> None:
    """Raise TrainingConfigError naming the first setting that cannot work."""
    positive = {"epochs": config.epochs, "lr": config.lr, "batch_size": config.batch_size,
                "micro_batch_size": config.micro_batch_size,
                "lora_r": config.lora_r, "lora_alpha": config.lora_alpha, "max_seq_len": config.max_seq_len}
    for name, value in positive.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise TrainingConfigError(f"{name} must be a positive number, got {value!r}")
    for name in ("epochs", "batch_size", "micro_batch_size", "lora_r", "max_seq_len", "max_steps", "seed"):
        if not isinstance(getattr(config, name), int):
            raise TrainingConfigError(f"{name} must be a whole number, got {getattr(config, name)!r}")
    for name in ("completion_only_logits", "bf16", "compile_layers"):
        if not isinstance(getattr(config, name), bool):
            raise TrainingConfigError(f"{name} must be true or false, got {getattr(config, name)!r}")
    if config.attn_implementation not in ATTENTION_KERNELS:
        raise TrainingConfigError(f"attn_implementation must be one of {', '.join(ATTENTION_KERNELS)}, "
                                  f"got {config.attn_implementation!r}")
    if not 0 <= config.lora_dropout < 1:
        raise TrainingConfigError(f"lora_dropout must be in [0, 1), got {config.lora_dropout!r}")
    if config.max_steps != -1 and config.max_steps <= 0:
        raise TrainingConfigError(f"max_steps must be -1 (all epochs) or positive, got {config.max_steps}")
    if config.batch_size % processes():
        raise TrainingConfigError(f"batch_size {config.batch_size} does not split over {processes()} processes; "
                                  f"choose a multiple of {processes()}")
    check_compiler(config)
    if config.target_modules is not None and not config.target_modules:
        raise TrainingConfigError("target_modules is empty; name at least one layer (e.g. q_proj,v_proj) or leave it unset")
    _check_task(config.task, config.data)
    resolve(config.model)  # UnknownModelError lists the known names


def accumulation(config: TrainConfig, world_size: int = 1) -> tuple[int, int]:
    """(examples per forward/backward pass, passes per optimizer step) of each of `world_size` processes.

    batch_size is the optimizer step's examples over all processes, so the same command trains the
    same adapter on one process or several (torchrun, accelerate launch). Each process takes its
    share in passes of the largest divisor of that share up to micro_batch_size, so every step
    still sees exactly batch_size examples (batch 6, micro 4, one process: 2 passes of 3).
    """
    share = config.batch_size // world_size
    per_pass = max(d for d in range(1, min(config.micro_batch_size, share) + 1) if share % d == 0)
    return per_pass, share // per_pass


def processes() -> int:
    """How many processes train together: WORLD_SIZE as torchrun and accelerate launch set it, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _task(name: str):
    """The task `name` stands for (a name, a task module or file); its errors as TrainingConfigError."""
    from slmbench.errors import TaskError
    from slmbench.tasks import resolve_task

    try:
        return resolve_task(name)
    except TaskError as error:
        raise TrainingConfigError(str(error)) from None


def _check_task(name: str, data: str | None) -> None:
    from slmbench.tasks.data_sources import with_data

    task = _task(name)
    if data is not None and not Path(data).expanduser().is_dir():
        raise TrainingConfigError(f"--data {data}: training needs a folder with train and val files "
                                  f"(e.g. train.jsonl, val.jsonl), not {'a file' if Path(data).is_file() else 'a missing path'}")
    task = with_data(task, data)
    for split, role in (("train", "to train on"), ("val", "to pick the best epoch")):
        try:
            path = task.data_path(split)
        except DatasetError as error:
            raise TrainingConfigError(f"task {name!r} has no {split} split {role}: {error}") from None
        if not path.is_file():
            raise TrainingConfigError(f"task {name!r} has no {split} split {role}: {path} does not exist "
                                      f"(a task's data sits in <its module's folder>/<task name>/; the built-in "
                                      f"tasks' in $SLMBENCH_FIXTURES, else the package's fixtures/)")


# LoRA targets per transformers `model_type`: every linear layer of attention and MLP.
_LLAMA_LIKE = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TARGET_MODULES: dict[str, tuple[str, ...]] = {
    **{arch: _LLAMA_LIKE for arch in ("llama", "qwen2", "mistral", "gemma", "gemma2", "gemma3", "gemma3_text")},
    "phi3": ("qkv_proj", "o_proj", "gate_up_proj", "down_proj"),  # fused projections
}


def target_modules_for(model_type: str, override: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The layers that get adapters: the override if given, else the architecture's default."""
    if override:
        return tuple(override)
    if model_type not in TARGET_MODULES:
        raise TrainingConfigError(
            f"no default LoRA target modules for architecture {model_type!r} (known: {', '.join(TARGET_MODULES)}); "
            f"pass --target-modules with its linear layer names, e.g. q_proj,v_proj")
    return TARGET_MODULES[model_type]


def with_target_modules(config: TrainConfig, model_type: str) -> TrainConfig:
    """The config with target_modules resolved for the loaded architecture."""
    return replace(config, target_modules=target_modules_for(model_type, config.target_modules))


def check_compiler(config: TrainConfig, on_cpu: bool | None = None) -> None:
    """Raise TrainingConfigError if compile_layers is asked for on CPU (None: no GPU here) where Inductor
    has no C++ compiler."""
    if not config.compile_layers:
        return
    import torch

    from slmbench.training.compiled import cpp_compiler

    on_cpu = not torch.cuda.is_available() if on_cpu is None else on_cpu
    if on_cpu and cpp_compiler() is None:
        raise TrainingConfigError("compile_layers needs a C++ compiler on CPU (g++ or clang++ on PATH, or $CXX); "
                                  "install one, or train without --compile-layers")
