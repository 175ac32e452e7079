"""slmbench.vllm_logits, the managed vLLM server's JSON stop and closing, outside vLLM.

vLLM's loop is played here as it runs them: the grammar vLLM's guidance backend builds from the schema
we send (`x-guidance` layout) masks the logits, then the per-request processor, then the greedy pick.
The real server runs them in tests/test_vllm_backend.py (marker `engines`).
"""

import json

import jsonschema
import numpy as np
import pytest
import torch

from slmbench.loading import load_model
from slmbench.tasks import resolve_task

llguidance = pytest.importorskip("llguidance")


@pytest.fixture(scope="module")
def vocabulary():
    from slmbench.vllm_logits import Vocabulary

    loaded = load_model("tiny-random-qwen2")
    size = loaded.model.get_output_embeddings().weight.shape[0]
    return Vocabulary(loaded.tokenizer, size, loaded.tokenizer.eos_token_id)


def vllm_loop(vocabulary, schema: dict, max_tokens: int, processor, seed: int) -> tuple[str, int]:
    """Greedy decoding as vLLM's guidance backend constrains it, random logits for a model."""
    import llguidance.numpy

    from slmbench.constrained import LAYOUT, mask_size

    size = mask_size(vocabulary.tokenizer, vocabulary.logits_size)
    grammar = llguidance.LLMatcher.grammar_from_json_schema({**schema, "x-guidance": LAYOUT},
                                                            defaults={"whitespace_flexible": False})  # as vLLM does
    served = llguidance.LLMatcher(vocabulary.ll_tokenizer(), grammar)
    bitmask = llguidance.numpy.allocate_token_bitmask(1, size)
    generator = torch.Generator().manual_seed(seed)
    output: list[int] = []
    while len(output) < max_tokens:
        logits = torch.randn(vocabulary.logits_size, generator=generator)
        llguidance.numpy.fill_next_token_bitmask(served, bitmask)
        allowed = torch.from_numpy(np.unpackbits(bitmask.view(np.uint8), bitorder="little")[:vocabulary.logits_size]
                                   .astype(bool))
        logits[~allowed] = float("-inf")
        if processor is not None:
            logits = processor(output, logits)
        token = int(logits.argmax())
        if token == vocabulary.eos_id:
            break
        assert served.consume_token(token), served.get_error()  # a forced token the served grammar refuses
        output.append(token)
    return vocabulary.tokenizer.decode(output, skip_special_tokens=True), len(output)


@pytest.mark.parametrize("task_name", ["it_entities", "recipes"])
def test_closing_ends_every_value_inside_the_budget_where_the_grammar_alone_does_not(vocabulary, task_name):
    from slmbench.vllm_logits import SchemaClosing

    schema = resolve_task(task_name).schema
    closed, open_ = 0, 0
    for seed in range(4):
        processor = SchemaClosing(vocabulary, json.dumps(schema), 64)
        text, _ = vllm_loop(vocabulary, schema, 64, processor, seed)
        jsonschema.validate(json.loads(text), schema)  # raises on anything invalid
        closed += 1
        free, used = vllm_loop(vocabulary, schema, 64, None, seed)
        open_ += used == 64
    assert closed == 4 and open_ >= 3  # random logits wander: without closing the budget runs out


def test_json_stop_forces_the_stop_token_once_the_value_closes_and_not_before(vocabulary):
    from slmbench.vllm_logits import JsonStop

    tokens = vocabulary.tokenizer.encode('Result [see below]: {"a": [1, 2]} and more', add_special_tokens=False)
    stop = JsonStop(vocabulary, stop_id=vocabulary.eos_id)
    forced_at = []
    for length in range(1, len(tokens) + 1):
        logits = stop(tokens[:length], torch.zeros(vocabulary.logits_size))
        if torch.isinf(logits).any():
            assert int(logits.argmax()) == vocabulary.eos_id
            forced_at.append(vocabulary.tokenizer.decode(tokens[:length]))
    assert forced_at and forced_at[0].endswith('{"a": [1, 2]}')  # prose brackets before it do not stop it
    assert JsonStop(vocabulary, vocabulary.eos_id, min_tokens=len(tokens) + 1)(
        tokens, torch.zeros(vocabulary.logits_size)).isfinite().all()  # min_tokens comes first


def test_the_server_s_python_path_holds_the_processor_and_nothing_else_of_slmbench(monkeypatch):
    """vLLM's Python gets only PROCESSOR_MODULES: they must import on their own (no other slmbench module)."""
    import subprocess
    import sys

    from slmbench.vllm_server import LOGITS_PROCESSOR, VllmServer, processor_path

    folder = processor_path()
    try:
        module, name = LOGITS_PROCESSOR.split(":")
        code = f"import {module} as m, slmbench; print(m.{name}.__name__, slmbench.__file__)"
        found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=folder,
                               env={"PYTHONPATH": folder, "PATH": "/usr/bin:/bin"}, timeout=120)
        assert found.returncode == 0, found.stderr[-2000:]
        assert found.stdout.split() == [name, f"{folder}/slmbench/__init__.py"]
    finally:
        import shutil

        shutil.rmtree(folder)
    monkeypatch.setenv("SLMBENCH_VLLM_PYTHON", sys.executable)  # the command only, nothing is started
    command = VllmServer("m", "/nowhere").command()
    assert command[command.index("--logits-processors") + 1] == LOGITS_PROCESSOR
    assert "guidance" in command[command.index("--structured-outputs-config") + 1]
