"""A local inference server that slmbench starts on 127.0.0.1, waits for, and stops.

`ManagedServer` holds the process handling that every managed server shares (slmbench.vllm_server's
`vllm serve`, slmbench.llamacpp_server's llama.cpp server): a free port, a log file, waiting until the
server answers, and stopping it and every process it started, however slmbench ends. A subclass says
which command to run and how to talk to the server once it is up.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

from slmbench.errors import SlmbenchError
from slmbench.paths import cache_root

PR_SET_PDEATHSIG = 1  # prctl(2): the signal a process gets when its parent dies


class EngineMissing(SlmbenchError):
    """The engine is not installed, or its server did not start."""


def die_with_parent():
    """A preexec_fn that has Linux send the server SIGTERM when the thread that started it ends.

    slmbench stops its server on the way out, but a SIGKILL, or a SIGTERM that Python's default handler
    turns into an immediate exit (`timeout`, a cancelled CI job), skips that; an orphaned vLLM server
    (about 6 GB with its engine process) then keeps the next start from its KV-cache memory. On SIGTERM
    a server stops its engine processes itself. Only set from the main thread: the signal follows the
    thread that forked, and a worker thread may end long before the run does. None off Linux.
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ManagedServer:
    """One server process on 127.0.0.1 at a free port; a context manager that stops it on exit.

    Subclasses set `engine_name` and `health_path` and give `command()` and `engine()`; `environment()`
    and `cleanup()` are theirs to extend.
    """

    engine_name = "server"  # in messages and the log's folder: "vllm", "llama.cpp"
    health_path = "/health"  # answers 200 once the server takes requests

    def __init__(self, model: str, start_timeout: float):
        self.model, self.start_timeout = model, start_timeout
        self.process: subprocess.Popen | None = None
        self.stopped = False
        self.port = free_port()
        self.log_path = cache_root() / self.engine_name / f"{model}-{self.port}.log"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def engine(self):
        """The slmbench.server_engine.ServerEngine that talks to the started server."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return {**os.environ, "HF_HUB_OFFLINE": "1"}

    def cleanup(self) -> None:
        """Called once the server is stopped (or failed to start)."""

    def __enter__(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "w", encoding="utf-8") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                            env=self.environment(), start_new_session=True,
                                            preexec_fn=die_with_parent())
        self._wait()
        return self.engine()

    def _wait(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                raise EngineMissing(f"{self.engine_name} exited with status {self.process.returncode} while "
                                    f"starting {self.model}; its log, {self.log_path}, ends:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(self.root_url + self.health_path, timeout=2.0) as answer:
                    if answer.status == 200:
                        return
            except OSError:  # not listening yet (URLError, refused, reset, timeout)
                pass
            time.sleep(0.5)
        self.stop()
        raise EngineMissing(f"{self.engine_name} did not answer within {self.start_timeout:.0f} s for "
                            f"{self.model}; log: {self.log_path}")

    def _log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        self.cleanup()
        if self.process is None or self.stopped:  # once: a reaped group's id may be reused later
            return
        self.stopped = True
        if self.process.poll() is not None:  # it died: the processes it started may not have
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

