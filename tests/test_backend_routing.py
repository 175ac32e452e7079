"""bench/backends.py: which engine a case generates on under --bench-backend vllm (no vLLM needed)."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from slmbench.bench import backends
from slmbench.bench.backends import Backends

BASE = SimpleNamespace(model="m", adapter=None, id="m::iris")
ADAPTER = SimpleNamespace(model="m", adapter=Path("/adapters/m/iris/fast"), id="m+lora-fast::iris")


def make(choice: str, started: list) -> Backends:
    options = {"backend": "vllm", "vllm_adapters": choice, "dtype": "bfloat16", "vllm_args": "", "concurrency": 64}
    routed = Backends(options.__getitem__, lambda: [BASE, ADAPTER])
    routed._vllm = lambda case, loaded: started.append(case.id) or "the vLLM engine"
    return routed


@pytest.mark.parametrize("choice, gpu, adapter_on", [
    ("auto", False, "hf"), ("auto", True, "vllm"), ("hf", True, "hf"), ("lora", False, "vllm")])
def test_adapter_cases_go_to_vllm_lora_only_with_a_gpu_or_when_asked(monkeypatch, choice, gpu, adapter_on):
    monkeypatch.setattr("torch.cuda.is_available", lambda: gpu)
    started = []
    routed = make(choice, started)
    assert routed.server_for(BASE, loaded=None) == "the vLLM engine"  # base cases always go to the server
    engine = routed.server_for(ADAPTER, loaded=None)
    assert (engine is None) == (adapter_on == "hf")  # None: transformers here (PEFT)
    assert started == [BASE.id] + ([ADAPTER.id] if adapter_on == "vllm" else [])


@pytest.mark.parametrize("choice, served", [("hf", []), ("lora", [ADAPTER.adapter])])
def test_the_server_loads_lora_only_when_it_generates_the_adapter_cases(monkeypatch, choice, served):
    import slmbench.vllm_server as vllm_server

    made = []
    monkeypatch.setattr(vllm_server, "engine_python", lambda: "/usr/bin/python3")
    monkeypatch.setattr(vllm_server, "engine_package_version", lambda python: "vllm 0.0")
    monkeypatch.setattr(vllm_server, "VllmServer", lambda model, folder, adapters, **kw: made.append(adapters) or
                        SimpleNamespace(port=1, process=None, stop=lambda: None))
    routed = Backends({"backend": "vllm", "vllm_adapters": choice, "dtype": "bfloat16", "vllm_args": "",
                       "concurrency": 64}.__getitem__, lambda: [BASE, ADAPTER])
    routed.server_for(BASE, SimpleNamespace(spec=SimpleNamespace(name="m"), checkpoint_dir=Path("/m")))
    assert made == [served]


def test_an_adapter_case_on_hf_stops_the_idle_server_first(monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    stopped = []
    routed = make("auto", [])
    routed._server = ("m", SimpleNamespace(stop=lambda: stopped.append(True)), "vllm 0.0")
    assert routed.server_for(ADAPTER, loaded=None) is None
    assert stopped == [True] and routed._server is None
    assert backends.provenance(None)["backend"] == "hf"
