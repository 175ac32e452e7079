"""Generation through an OpenAI-compatible server: `vllm serve`, llama.cpp's server, Ollama, TGI.

`slmbench.generation.generate` hands the prompts that miss the cache to `ServerEngine.complete`
instead of transformers. Requests go out concurrently (bounded by `concurrency`), each with greedy
settings; the server batches them. The `openai` client does the wire format, timeouts and retries
with backoff.

Two ways to send a prompt:
- `token_prompts=True` (the managed vLLM server, slmbench.vllm_server): the Completions API with the
  prompt's token ids, tokenized here exactly as the hf engine does, so both engines see the same
  tokens and their greedy outputs can be compared token for token. That server also runs
  slmbench.vllm_logits, which stops a JSON task's request as its value closes and closes structured
  values before the budget runs out, as the hf engine does.
- otherwise (any server): the Chat Completions API for instruct models (the server applies its chat
  template to our turns) and the Completions API with the text for base models.

An answer that cannot be used (the server errs after its retries, or answers something that is not a
completion) becomes an empty completion with finish_reason "server_error": scored as a failure,
never cached, never a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from slmbench.cache import engine_version
from slmbench.defaults import DEFAULT_CONCURRENCY
from slmbench.errors import SlmbenchError
from slmbench.jsontext import json_value_end
from slmbench.prompting import Prompt, chat_messages, plain_text

log = logging.getLogger(__name__)
SERVER_ERROR = "server_error"  # finish_reason of a prompt the server gave no usable completion for
FINISH_REASONS = {"stop": "eos", "length": "length"}  # OpenAI's names -> the hf engine's
PROCESSOR_SOURCES = ("vllm_logits.py", "constrained.py")  # the managed vLLM server's logits processor


class ServerUnavailable(SlmbenchError):
    """The server does not answer, or does not serve the model asked for: the case cannot run."""


@dataclass(frozen=True)
class ServerEngine:
    """Where and how to reach an OpenAI-compatible server."""

    base_url: str  # e.g. http://127.0.0.1:8000/v1
    name: str = "openai"  # "vllm" for a managed vLLM server, "openai" for any other server
    api_key_env: str = "OPENAI_API_KEY"  # the key is read from this environment variable ("EMPTY" if unset)
    concurrency: int = DEFAULT_CONCURRENCY  # requests in flight at once
    timeout: float = 300.0  # seconds per request
    retries: int = 2  # retries per request on connection errors, 429 and 5xx, with exponential backoff
    token_prompts: bool = False  # send token ids to the Completions API (exact prompts; vLLM)
    served: dict = field(default_factory=dict, hash=False, compare=False)  # local label -> served model name
    version: str | None = None  # the server's name and version when known before it runs (managed vLLM)
    start: Callable[[], None] | None = field(default=None, hash=False, compare=False)  # called before the
    # first request: a managed server starts only when a prompt misses the cache (warm runs start none)

    def client(self, timeout: float | None = None, retries: int | None = None):
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=os.environ.get(self.api_key_env) or "EMPTY",
                      timeout=self.timeout if timeout is None else timeout,
                      max_retries=self.retries if retries is None else retries)

    def served_name(self, loaded) -> str:
        """The model name the server knows `loaded` by (see `served_model_name`)."""
        label = served_model_name(loaded.spec.name, loaded.adapter_dir)
        return self.served.get(label, label)

    def identity(self, loaded) -> dict:
        """What the generation cache key keeps about this engine (and what records show)."""
        identity = {"name": self.name, "server": self.version or server_version(self),
                    "model": self.served_name(loaded), "prompts": "token ids" if self.token_prompts else "api"}
        if self.start is None:  # a server someone else runs: its address is part of what it is
            identity["url"] = self.base_url
        if self.name == "vllm":  # the managed server's JSON stop and closing change what it generates
            identity["processor"] = engine_version(PROCESSOR_SOURCES)
        # what a server batches together depends on how many requests are in flight, and in bfloat16
        # that can move greedy outputs (as the batch size does on the hf engine)
        identity["concurrency"] = self.concurrency
        return identity

    def check(self, loaded) -> None:
        """Raise ServerUnavailable unless the server answers (within 5 s) and serves the model."""
        if self.start is not None:
            self.start()
        client = self.client(timeout=5.0, retries=0)  # outside the try: a broken client is no down server
        try:
            served = [m.id for m in client.models.list()]
        except Exception as error:  # connection refused, timeout, garbage: the openai client's errors vary
            raise ServerUnavailable(f"no OpenAI-compatible server answers at {self.base_url} "
                                    f"({type(error).__name__}: {error})") from None
        name = self.served_name(loaded)
        if name not in served:
            raise ServerUnavailable(f"the server at {self.base_url} does not serve {name!r}; it serves: "
                                    f"{', '.join(served) or 'nothing'}")

    def complete(self, loaded, prompts: list[Prompt], rendered: list[str], decoding, schema: dict | None,
                 on_done: Callable[[int, dict], None]) -> float:
        """Complete every prompt; `on_done(index, completion fields)` as each one finishes. Returns wall seconds."""
        if self.start is not None:
            self.start()
        client, started = self.client(), time.perf_counter()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._one, client, loaded, prompt, text, decoding, schema): index
                       for index, (prompt, text) in enumerate(zip(prompts, rendered))}
            for future in as_completed(futures):
                on_done(futures[future], future.result())
        return time.perf_counter() - started

    def _one(self, client, loaded, prompt: Prompt, rendered: str, decoding, schema: dict | None) -> dict:
        started = time.perf_counter()
        try:
            text, reason, usage = self._request(client, loaded, prompt, rendered, decoding, schema)
        except Exception as error:  # after the client's retries: any failure is this sample's, not the run's
            log.warning("%s: no usable completion from %s: %s: %s", loaded.label, self.base_url,
                        type(error).__name__, str(error)[:300])
            return {"text": "", "prompt_tokens": 0, "completion_tokens": 0, "finish_reason": SERVER_ERROR,
                    "seconds": time.perf_counter() - started}
        # the hf engine stops as the first JSON value closes; other servers cannot be told to, so the text is
        # cut there (their tokens past that point were generated and count in completion_tokens)
        end = json_value_end(text) if decoding.stop_at_json_end else None
        completion_tokens = usage[1]
        if end is not None:
            if self.name == "vllm" and reason == "eos" and not text[end:].strip():
                # the managed server's JSON stop (or its grammar) ended the request with a stop token the
                # hf engine never generates (it stops on the closing token): not counted, as there
                completion_tokens = max(completion_tokens - 1, 0)
            text, reason = text[:end], "json_end"
        return {"text": text, "prompt_tokens": usage[0], "completion_tokens": completion_tokens,
                "finish_reason": reason, "seconds": time.perf_counter() - started}

    def _request(self, client, loaded, prompt: Prompt, rendered: str, decoding, schema: dict | None):
        """(text, finish reason, (prompt tokens, completion tokens)) of one greedy completion."""
        common = {"model": self.served_name(loaded), "max_tokens": decoding.max_new_tokens, "temperature": 0.0,
                  "top_p": 1.0, "n": 1}
        extra = {"min_tokens": decoding.min_new_tokens} if decoding.min_new_tokens else {}
        if loaded.stop_ids:
            extra["stop_token_ids"] = list(loaded.stop_ids)
        if self.name == "vllm":
            extra.update(self._managed_extras(decoding, schema))
        elif schema is not None and decoding.structured:  # the OpenAI API's field, which other servers read
            extra["response_format"] = {"type": "json_schema",
                                        "json_schema": {"name": "task_output", "schema": schema, "strict": True}}
        use_chat = loaded.chat and not self.token_prompts
        if use_chat:
            response = client.chat.completions.create(messages=chat_messages(prompt), extra_body=extra or None,
                                                      **common)
            choice = response.choices[0]
            text = choice.message.content
        else:
            body = (loaded.tokenizer(rendered, add_special_tokens=not loaded.chat)["input_ids"]
                    if self.token_prompts else plain_text(prompt))
            response = client.completions.create(prompt=body, extra_body=extra or None, **common)
            choice = response.choices[0]
            text = choice.text
        if not isinstance(text, str):
            raise ValueError(f"the answer has no completion text ({type(text).__name__})")
        usage = response.usage
        if usage is None or not isinstance(usage.completion_tokens, int):
            raise ValueError("the answer has no token usage")
        return text, FINISH_REASONS.get(choice.finish_reason, str(choice.finish_reason)), (
            int(usage.prompt_tokens or 0), int(usage.completion_tokens))

    @staticmethod
    def _managed_extras(decoding, schema: dict | None) -> dict:
        """The managed vLLM server's request fields: its structured outputs, in the grammar the hf backend
        uses (llguidance with the json.dumps layout, `x-guidance`), and what slmbench.vllm_logits does."""
        from slmbench.constrained import LAYOUT
        from slmbench.vllm_logits import JSON_STOP, SCHEMA

        if schema is not None and decoding.structured:
            return {"structured_outputs": {"json": {**schema, "x-guidance": LAYOUT}},
                    "vllm_xargs": {SCHEMA: json.dumps(schema)}}  # as text: the order is the order written
        return {"vllm_xargs": {JSON_STOP: 1}} if decoding.stop_at_json_end else {}


def served_model_name(model: str, adapter_dir: Path | None = None) -> str:
    """The name a model is served under: its registry name, plus ``+<task>/<preset>`` for an adapter
    (an adapter folder from `slmbench train` is ``adapters/<model>/<task>/<preset>``)."""
    if adapter_dir is None:
        return model
    return f"{model}+{Path(adapter_dir).parent.name}/{Path(adapter_dir).name}"


_VERSIONS: dict[str, str] = {}


def server_version(engine: ServerEngine) -> str:
    """"server <version>" where the server reports one (vLLM's /version), else "unknown"; asked once."""
    if engine.base_url not in _VERSIONS:
        try:
            root = engine.base_url.rstrip("/").removesuffix("/v1")
            with urllib.request.urlopen(f"{root}/version", timeout=5.0) as answer:
                _VERSIONS[engine.base_url] = f"server {json.loads(answer.read())['version']}"
        except Exception:  # no /version route, or not JSON: servers differ, none of it is an error
            _VERSIONS[engine.base_url] = "unknown"
    return _VERSIONS[engine.base_url]
