"""The openai backend against a server that is not vLLM: llama.cpp's, started here on 127.0.0.1.

Marker `engines`: llama-cpp-python builds llama.cpp from source when installed (`make engines`); without
it these skip with the command that installs it (CI fails instead: SLMBENCH_REQUIRE_ENGINES).

The server runs SmolLM2's 4-bit GGUF with llama.cpp's kernels (activations rounded to 8 bits for the
4-bit dot products), where the hf engine runs the checkpoint dequantised from that file: a different
computation, whose greedy iris outputs matched hf's on 0 of 30 here (accuracy 0.000 against 0.167).
So these tests check the plumbing, not the scores: every prompt answered, and the server's own count
of each prompt's tokens equal to ours, which holds only if the chat template stored in the GGUF
rendered our turns into the prompt the hf engine sees.
"""

import pytest

from tests.test_vllm_backend import rows_and_outputs

pytestmark = [pytest.mark.engines, pytest.mark.real_model]
MODEL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def llamacpp_server(without_engine, tmp_path_factory):
    from slmbench.gguf_models import gguf_file
    from slmbench.llamacpp_server import LlamaCppServer
    from slmbench.managed_server import EngineMissing
    from slmbench.registry import resolve

    with pytest.MonkeyPatch.context() as patch:  # the server's log goes under the cache: a scratch one
        patch.setenv("SLMBENCH_CACHE", str(tmp_path_factory.mktemp("llamacpp-cache")))
        try:
            server = LlamaCppServer(MODEL, gguf_file(resolve(MODEL)))
        except EngineMissing as error:
            without_engine(error)
    with server as engine:
        yield engine


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
