"""Which engine generates a bench case's outputs: transformers here (hf), a managed vLLM server, or any
OpenAI-compatible server (``--bench-backend hf|vllm|openai``).

The managed vLLM server is started for a model the first time one of its cases misses the generation
cache, serves the base model and, with LoRA on (`--bench-vllm-adapters`), every adapter of it in this
run (one load, multi-LoRA), and is stopped when the run moves to the next model or ends. Without a GPU
the adapter cases generate on transformers here instead (PEFT), and the server stops first: vLLM's CPU
LoRA took 1.2-1.4x the hf engine's time over each model's adapter cases, at equal metrics
(docs/performance.md). A server that cannot be reached skips the case with the
reason; the check takes seconds, so a down server never hangs a run.
"""

from __future__ import annotations

from slmbench.errors import SlmbenchError

from slmbench.serving import BACKENDS  # noqa: F401  (the plugin's choices)


class BackendUnavailable(SlmbenchError):
    """The backend cannot run this case here (no server, model not served, vLLM not installed): a skip."""


class Backends:
    """Hands each case the server it generates through (None for hf), starting and stopping vLLM."""

    def __init__(self, option, cases):
        self.option, self.cases = option, cases  # cases: a callable giving the run's cases
        self.name = option("backend")
        self._server = None  # (model, VllmServer) of the managed vLLM server now running
        self._down: dict[str, str] = {}  # base URL -> why it was unreachable (checked once)
        self._checked: set[str] = set()

    def server_for(self, case, loaded):
        """The ServerEngine for this case, or None for hf; BackendUnavailable when it cannot run."""
        if self.name == "hf":
            return None
        if self.name == "vllm" and getattr(case, "adapter", None) is not None and not self.lora_on_server():
            self.close()  # an idle vLLM engine would hold memory (and may poll) while transformers generates
            return None
        from slmbench.server_engine import ServerEngine, ServerUnavailable
        from slmbench.vllm_server import EngineMissing

        try:
            if self.name == "vllm":
                return self._vllm(case, loaded)
            url = self.option("base_url")
            if url in self._down:
                raise ServerUnavailable(self._down[url])
            engine = ServerEngine(url, "openai", api_key_env=self.option("api_key_env"),
                                  concurrency=self.option("concurrency"))
            if engine.served_name(loaded) not in self._checked:
                try:
                    engine.check(loaded)
                except ServerUnavailable as error:
                    if "does not serve" not in str(error):
                        self._down[url] = str(error)
                    raise
                self._checked.add(engine.served_name(loaded))
            return engine
        except (ServerUnavailable, EngineMissing) as error:
            raise BackendUnavailable(f"{case.id}: --bench-backend {self.name}: {error}") from None

    def _vllm(self, case, loaded):
        from slmbench.server_engine import ServerEngine
        from slmbench.vllm_server import VllmServer, engine_package_version, engine_python

        python = engine_python()  # EngineMissing names the fix
        if self._server is None or self._server[0] != case.model:
            self.close()
            adapters = list(dict.fromkeys(c.adapter for c in self.cases() if c.model == case.model
                                          and getattr(c, "adapter", None) is not None)) if self.lora_on_server() else []
            server = VllmServer(loaded.spec.name, loaded.checkpoint_dir, adapters, dtype=self.option("dtype"),
                                extra_args=self.option("vllm_args"), concurrency=self.option("concurrency"))
            self._server = (case.model, server, engine_package_version(python))
        model, server, version = self._server

        def start() -> None:  # once per server: the first prompt that misses the cache starts it
            if server.process is None:
                server.__enter__()
            elif server.process.poll() is not None:
                raise BackendUnavailable(f"the vLLM server of {model} has exited; log: {server.log_path}")

        return ServerEngine(f"http://127.0.0.1:{server.port}/v1", name="vllm", token_prompts=True,
                            concurrency=self.option("concurrency"),
                            version=version, start=start)

    def lora_on_server(self) -> bool:
        """Whether the vLLM server generates adapter cases (LoRA): `--bench-vllm-adapters`, auto = with a GPU."""
        choice = self.option("vllm_adapters")
        if choice == "auto":
            import torch

            return torch.cuda.is_available()
        return choice == "lora"

    def close(self) -> None:
        """Stop the managed server, if one runs."""
        if self._server is not None:
            self._server[1].stop()
            self._server = None


def provenance(engine) -> dict:
    """The backend fields of a record: which engine generated, and its version."""
    if engine is None:
        from slmbench.cache import library_version

        return {"backend": "hf", "engine": f"transformers {library_version('transformers')}"}
    from slmbench.server_engine import server_version

    return {"backend": engine.name, "engine": engine.version or server_version(engine), "server_url": engine.base_url,
            "concurrency": engine.concurrency}
