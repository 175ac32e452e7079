"""The openai backend against a server that is not vLLM: llama.cpp's, started here on 127.0.0.1.

Marker `engines`: llama-cpp-python builds llama.cpp from source when installed (`make engines`); without
it these skip with the command that installs it. The server runs SmolLM2's 4-bit GGUF with its own
kernels, where the hf engine runs the checkpoint dequantised from that file: close, not identical.
"""

import json

import pytest

pytestmark = [pytest.mark.engines, pytest.mark.real_model]
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def llamacpp_server(without_engine):
    from slmbench.gguf_models import gguf_file
    from slmbench.llamacpp_server import LlamaCppServer
    from slmbench.managed_server import EngineMissing
    from slmbench.registry import resolve

    try:
        server = LlamaCppServer(MODEL, gguf_file(resolve(MODEL)))
    except EngineMissing as error:
        without_engine(error)
    with server as engine:
        yield engine


def rows_and_outputs(out):
    from slmbench.bench.samples_log import read_run

    rows = {row["case_id"]: row for row in json.loads((out / "lb.json").read_text())["rows"]}
    runs = sorted((out / "results").glob("*"), key=lambda p: p.stat().st_mtime)
    return rows, read_run(runs[-1])


def test_openai_backend_against_llama_cpps_server(bench, llamacpp_server):
    """The chat API, with the chat template from the GGUF: every prompt answered, the same prompts as hf's."""
    run, out = bench
    options = ["--bench-models", MODEL, "--bench-tasks", "iris"]
    assert run(*options, limit="30").ret in (0, 1)
    hf_rows, hf_outputs = rows_and_outputs(out)
    result = run(*options, "--bench-backend", "openai", "--bench-base-url", llamacpp_server.base_url, limit="30")
    assert result.ret in (0, 1) and "Traceback" not in result.stdout.str(), result.stdout.str()[-3000:]
    rows, outputs = rows_and_outputs(out)
    case = f"{MODEL}::iris"
    assert rows[case]["provenance"]["backend"] == "openai"
    assert rows[case]["provenance"]["server_url"] == llamacpp_server.base_url
    served = outputs[case]
    assert len(served) == 30 and all(s["completion_tokens"] > 0 and s["finish_reason"] in ("eos", "length", "json_end")
                                     for s in served), served
    assert [s["prompt_tokens"] for s in served] == [s["prompt_tokens"] for s in hf_outputs[case]]
    assert rows[case]["n"] == hf_rows[case]["n"] == 30 and "accuracy" in rows[case]["metrics"]


def test_a_model_the_server_does_not_serve_is_skipped_with_what_it_serves(bench, llamacpp_server):
    run, out = bench
    result = run("--bench-models", "gemma3-270m", "--bench-tasks", "iris", "--bench-backend", "openai",
                 "--bench-base-url", llamacpp_server.base_url)
    text = result.stdout.str()
    assert "does not serve 'gemma3-270m'" in text and MODEL in text, text[-3000:]
