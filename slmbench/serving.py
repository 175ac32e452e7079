"""`--backend hf|vllm|openai` for `slmbench evaluate`, `infer` and `generate`: the server a command
generates through, started and stopped around it (vLLM) or checked before it (any other server).
The bench plugin does the same per model across a run (slmbench.bench.backends).
"""

from __future__ import annotations

import argparse
import os
from contextlib import contextmanager
from dataclasses import replace

from slmbench.defaults import DEFAULT_CONCURRENCY

BACKENDS = ("hf", "vllm", "openai")


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", default="hf", choices=list(BACKENDS),
                        help="what generates: hf (transformers here), vllm (a vLLM server started for this command; "
                             "`make engines`) or openai (any OpenAI-compatible server at --base-url)")
    parser.add_argument("--base-url", default=default_base_url(),
                        help="server of --backend openai (default $OPENAI_BASE_URL or http://127.0.0.1:8000/v1)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="variable holding the server's API key")
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, help="requests in flight to a server")
    parser.add_argument("--vllm-args", default="", help="more `vllm serve` arguments for --backend vllm")


def default_base_url() -> str:
    """Where --backend openai looks for a server unless told: $OPENAI_BASE_URL, else vLLM's default port."""
    return os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")


@contextmanager
def serving(loaded, args: argparse.Namespace):
    """The ServerEngine the command generates through (None for hf), ready to take requests.

    Raises ServerUnavailable (no server, model not served) or EngineMissing (vLLM not installed or
    not starting), both SlmbenchError with the fix.
    """
    from slmbench.server_engine import ServerEngine

    if args.backend == "hf":
        yield None
    elif args.backend == "openai":
        engine = ServerEngine(args.base_url, "openai", api_key_env=args.api_key_env, concurrency=args.concurrency)
        engine.check(loaded)
        yield engine
    else:
        from slmbench.vllm_server import VllmServer, engine_package_version

        adapters = [loaded.adapter_dir] if loaded.adapter_dir is not None else []
        server = VllmServer(loaded.spec.name, loaded.checkpoint_dir, adapters, dtype=loaded.dtype,
                            extra_args=args.vllm_args, concurrency=args.concurrency)
        with server as engine:
            yield replace(engine, version=engine_package_version(server.command()[0]))
