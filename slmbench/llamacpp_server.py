"""llama.cpp's OpenAI-compatible server (llama-cpp-python) for an offline model's GGUF, started here.

The outside reference for the engines: it runs the GGUF file itself (4-bit weights, llama.cpp's own
kernels), where the hf and vllm backends run the checkpoint dequantised from it, so its outputs differ
from theirs (9 of 580 test-split outputs identical to hf's here): a speed reference, not a stand-in. slmbench talks to it as to any server (`--bench-backend openai`):
chat API for instruct models, with the chat template stored in the GGUF.

llama-cpp-python builds llama.cpp from source when installed (about 4 minutes on 2 cores):
`pip install -e '.[llamacpp]'`, which `make engines` does. It serves one request at a time.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from slmbench.managed_server import EngineMissing, ManagedServer
from slmbench.server_engine import ServerEngine

INSTALL_HINT = "run `make engines`, or `pip install -e '.[llamacpp]'` (builds llama.cpp, about 4 minutes)"


def llamacpp_version() -> str:
    """"llama-cpp-python <version>", or EngineMissing with the install command."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise EngineMissing(f"llama.cpp's server needs llama-cpp-python; {INSTALL_HINT}")
    from importlib.metadata import version

    return f"llama-cpp-python {version('llama-cpp-python')}"


def usable_cores() -> int:
    """The cores this process may run on (its affinity, e.g. a container's share), else all of them."""
    if hasattr(os, "sched_getaffinity"):  # Linux
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class LlamaCppServer(ManagedServer):
    """`python -m llama_cpp.server` for one GGUF file, served under `model`; stops on exit.

    Args:
        model: the name to serve it under (the registry name, so cases find it).
        gguf_path: the GGUF file (slmbench.gguf_models.gguf_file for the offline models).
        threads: CPU threads for generation (default: every core this process may use).
        context: the context window in tokens.
    """

    engine_name = "llama.cpp"
    health_path = "/v1/models"

    def __init__(self, model: str, gguf_path: Path, threads: int | None = None, context: int = 4096,
                 start_timeout: float = 120.0):
        self.version = llamacpp_version()
        if not Path(gguf_path).is_file():
            raise EngineMissing(f"{model}: no GGUF file at {gguf_path}")
        super().__init__(model, start_timeout)
        self.gguf_path, self.context = Path(gguf_path), context
        self.threads = threads or usable_cores()

    def command(self) -> list[str]:
        return [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf_path),
                "--model_alias", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                "--n_ctx", str(self.context), "--n_threads", str(self.threads),
                "--n_threads_batch", str(self.threads), "--seed", "0"]

    def engine(self) -> ServerEngine:
        # one request at a time: the server handles them in turn, so more in flight only queue
        return ServerEngine(f"{self.root_url}/v1", concurrency=1, version=self.version)
