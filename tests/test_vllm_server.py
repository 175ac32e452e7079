"""slmbench.vllm_server: the managed server does not outlive slmbench, however slmbench ends.

A stand-in for `vllm serve` (an executable named by SLMBENCH_VLLM_PYTHON) answers /health on the given
port and, like vLLM, runs an engine child process that it stops on SIGTERM; both record their pids.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from slmbench.vllm_server import VllmServer

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and prctl: Linux")

FAKE_SERVER = f"""#!{sys.executable}
import http.server, os, signal, subprocess, sys
port = int(sys.argv[sys.argv.index("--port") + 1])
engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(os.environ["FAKE_PIDS"], "w") as pids:
    pids.write(f"{{os.getpid()}} {{engine.pid}}")

def stop(signum, frame):
    engine.terminate()
    engine.wait()
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""

# slmbench, reduced to starting a server and working on; the test then ends it from outside
DRIVER = textwrap.dedent("""
    import sys, time
    from slmbench.vllm_server import VllmServer
    VllmServer("m", sys.argv[1]).__enter__()
    print("up", flush=True)
    time.sleep(600)
""")


@pytest.fixture
def fake_vllm(tmp_path, monkeypatch):
    server = tmp_path / "fake-vllm-python"
    server.write_text(FAKE_SERVER)
    server.chmod(0o755)
    monkeypatch.setenv("SLMBENCH_VLLM_PYTHON", str(server))
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FAKE_PIDS", str(tmp_path / "pids"))
    return tmp_path / "pids"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped by its new parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_server_and_its_engine_stop_when_slmbench_is_killed(fake_vllm, tmp_path, signum):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert driver.stdout.readline().strip() == "up"
        pids = [int(pid) for pid in fake_vllm.read_text().split()]
        assert gone_within(pids, 0.5) == pids, "the fake server should be running before the kill"
        driver.send_signal(signum)
        driver.wait(timeout=10)
        assert gone_within(pids, 10) == [], f"still running 10 s after slmbench got {signum.name}"
    finally:
        driver.kill()
        for pid in fake_vllm.read_text().split() if fake_vllm.exists() else []:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_stop_reaches_an_engine_process_the_server_left_behind(fake_vllm, tmp_path):
    server = VllmServer("m", tmp_path)
    server.__enter__()
    server_pid, engine_pid = (int(pid) for pid in fake_vllm.read_text().split())
    os.kill(server_pid, signal.SIGKILL)  # dies without stopping its engine
    server.process.wait(timeout=10)
    server.stop()
    assert gone_within([engine_pid], 10) == [], "the engine process outlived stop()"
