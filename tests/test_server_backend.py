"""The openai backend against servers on 127.0.0.1: one that is down, one that answers garbage, and a
scripted one whose answers we know, to check the requests we send and what we make of the answers.
The real engine behind the same client (vLLM) is tested in tests/test_vllm_backend.py (marker `engines`).
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SCRIPTED_TEXT = '{"species": "setosa"} and then some prose'


class ScriptedServer(ThreadingHTTPServer):
    """An OpenAI-compatible endpoint with fixed answers; keeps every request body it got."""

    daemon_threads = True

    def __init__(self, served: list[str], answer: str):
        super().__init__(("127.0.0.1", 0), Handler)
        self.served, self.answer, self.requests = served, answer, []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output clean
        pass

    def _send(self, status: int, body: str, kind: str = "application/json") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v1/models":
            self._send(200, json.dumps({"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "test"} for name in self.server.served]}))
        else:
            self._send(404, "{}")

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append((self.path, body))
        if self.server.answer == "garbage-html":
            return self._send(200, "<html><body>upstream exploded</body></html>", "text/html")
        if self.server.answer == "garbage-json":
            return self._send(200, json.dumps({"choices": "not a list", "usage": None}))
        if self.server.answer == "error-500":
            return self._send(500, json.dumps({"error": {"message": "boom"}}))
        usage = {"prompt_tokens": 7, "completion_tokens": 12, "total_tokens": 19}
        if self.path.endswith("/chat/completions"):
            choice = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": SCRIPTED_TEXT}}
            kind = "chat.completion"
        else:
            choice = {"index": 0, "finish_reason": "stop", "text": SCRIPTED_TEXT, "logprobs": None}
            kind = "text_completion"
        self._send(200, json.dumps({"id": "x", "object": kind, "created": 0, "model": body["model"],
                                    "choices": [choice], "usage": usage}))


@pytest.fixture
def server(request):
    served, answer = request.param
    httpd = ScriptedServer(served, answer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def backend(url: str) -> list[str]:
    return ["--bench-backend", "openai", "--bench-base-url", url, "--bench-concurrency", "4"]


def test_a_server_that_is_down_skips_every_case_with_the_reason_quickly(bench):
    run, out = bench
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.perf_counter()
    result = run("--bench-models", "tiny-random-llama,tiny-random-qwen2", "--bench-tasks", "iris,products",
                 *backend(f"http://127.0.0.1:{port}/v1"))
    elapsed = time.perf_counter() - started
    outcomes = result.parseoutcomes()
    assert "failed" not in outcomes and "passed" not in outcomes and outcomes["skipped"] > 0
    result.stdout.fnmatch_lines([f"*--bench-backend openai: no OpenAI-compatible server answers at http://127.0.0.1:{port}/v1*"])
    assert "Traceback" not in result.stdout.str()
    assert elapsed < 30, f"a down server must not hang the run ({elapsed:.1f} s)"


@pytest.mark.parametrize("server", [(["someone-else"], "scripted")], indirect=True)
def test_a_model_the_server_does_not_serve_is_skipped_naming_what_it_serves(bench, server):
    run, _ = bench
    result = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris", *backend(server.url))
    result.stdout.fnmatch_lines(["*does not serve 'tiny-random-llama'; it serves: someone-else*"])
    assert "failed" not in result.parseoutcomes() and not server.requests


@pytest.mark.parametrize("server", [(["tiny-random-llama"], "garbage-html"), (["tiny-random-llama"], "garbage-json"),
                                    (["tiny-random-llama"], "error-500")], indirect=True)
def test_garbage_answers_are_scored_as_failures_without_a_traceback(bench, server):
    run, out = bench
    result = run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris", *backend(server.url))
    assert result.parseoutcomes()["failed"] >= 2  # JSON validity and accuracy: every sample failed
    assert "Traceback" not in result.stdout.str()
    row = json.loads((out / "lb.json").read_text())["rows"][0]
    assert row["metrics"]["json_valid"]["value"] == 0.0 and row["metrics"]["accuracy"]["value"] == 0.0
    assert row["provenance"]["backend"] == "openai"
    # nothing unusable is cached: the next run asks the server again
    before = len(server.requests)
    run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris", *backend(server.url))
    assert len(server.requests) > before


@pytest.mark.parametrize("server", [(["tiny-random-llama", "tiny-random-qwen2"], "scripted")], indirect=True)
def test_requests_are_greedy_completions_for_base_models_and_chat_for_instruct_ones(bench, server):
    run, out = bench
    result = run("--bench-models", "tiny-random-llama,tiny-random-qwen2", "--bench-tasks", "iris", *backend(server.url))
    assert "Traceback" not in result.stdout.str()
    paths = {body["model"]: path for path, body in server.requests}
    assert paths == {"tiny-random-llama": "/v1/completions", "tiny-random-qwen2": "/v1/chat/completions"}
    for path, body in server.requests:
        assert body["temperature"] == 0.0 and body["top_p"] == 1.0 and body["max_tokens"] > 0
        assert body["stop_token_ids"]  # the model's EOS ids, as the hf engine stops on them
        if path == "/v1/chat/completions":
            assert body["messages"][-1]["role"] == "user" and "An iris flower" in body["messages"][-1]["content"]
        else:
            assert isinstance(body["prompt"], str) and body["prompt"].startswith("An iris flower")
    rows = {row["model"]: row for row in json.loads((out / "lb.json").read_text())["rows"]}
    # iris is a JSON task: the text is cut where the JSON value closes, as the hf engine stops there
    assert rows["tiny-random-llama"]["metrics"]["json_valid"]["value"] == 1.0
    assert rows["tiny-random-llama"]["speed"]["generated_tokens"] == 12 * 3  # the server's usage, 3 samples
    from slmbench.bench.samples_log import log_name

    log = next((out / "results").glob(f"*/{log_name('tiny-random-llama::iris')}"))
    first = json.loads(log.read_text().splitlines()[0])
    assert first["output"] == '{"species": "setosa"}' and first["finish_reason"] == "json_end"
    # a warm rerun asks the server nothing
    asked = len(server.requests)
    run("--bench-models", "tiny-random-llama,tiny-random-qwen2", "--bench-tasks", "iris", *backend(server.url))
    assert len(server.requests) == asked


@pytest.mark.parametrize("server", [(["tiny-random-qwen2"], "scripted")], indirect=True)
def test_cli_commands_take_the_same_backends(server, capsys, tmp_path, monkeypatch):
    from slmbench.cli import main

    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    common = ["--model", "tiny-random-qwen2", "--backend", "openai", "--base-url", server.url]
    assert main(["evaluate", *common, "--task", "iris", "--limit", "2", "--output", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["samples"][0]["output"] == '{"species": "setosa"}'
    assert main(["generate", *common, "--prompt", "Say hi"]) == 0
    assert SCRIPTED_TEXT in capsys.readouterr().out
    assert [path for path, _ in server.requests] == ["/v1/chat/completions"] * 3
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    assert main(["infer", "--model", "tiny-random-qwen2", "--task", "iris", "--backend", "openai", "--base-url", down,
                 "--document", json.dumps({"sepal_length": "low", "sepal_width": "low", "petal_length": "low",
                                           "petal_width": "low"})]) == 2
    assert f"no OpenAI-compatible server answers at {down}" in capsys.readouterr().err


@pytest.mark.parametrize("server", [(["tiny-random-llama"], "scripted")], indirect=True)
def test_structured_rows_ask_the_server_for_a_json_schema_response_and_free_rows_do_not(bench, server):
    from slmbench.tasks import resolve_task

    run, out = bench
    run("--bench-models", "tiny-random-llama", "--bench-tasks", "iris", "--bench-structured", *backend(server.url))
    asked = [body.get("response_format") for _, body in server.requests]
    constrained = {"type": "json_schema",
                   "json_schema": {"name": "task_output", "schema": resolve_task("iris").schema, "strict": True}}
    assert asked.count(constrained) == 3 and asked.count(None) == 3
    rows = {row["case_id"] for row in json.loads((out / "lb.json").read_text())["rows"]}
    assert rows == {"tiny-random-llama::iris", "tiny-random-llama+structured::iris"}
