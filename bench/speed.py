"""Tokens/s of a bench case: measured on the generation that produced its outputs, cached beside them.

A case's tokens/s is its generated tokens over the wall seconds of ``model.generate`` in the batched
generation of the split benched, cache hits excluded: the generation a user waits for, not a
synthetic decode. The figure goes into the generation cache with the date it was measured, keyed by
the case's output keys, the batch size and this machine's fingerprint. A warm rerun (every output
cached) generates and times nothing and shows that figure, marked cached.

Re-timing generates the case's prompts again, uncached, through pytest-benchmark: with
``--bench-retime``, or when a pytest-benchmark option asks for timings (`retime_rounds`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import shlex
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from slmbench.cache import GenerationCache

if TYPE_CHECKING:  # the plugin imports this module before any case runs: no torch here
    from slmbench.generation import DecodingConfig, GenerationRun
    from slmbench.prompting import Prompt
    from slmbench.server_engine import ServerEngine

FORMAT = 2  # layout of the key material below; renew it if tokens/s ever changes meaning
# pytest-benchmark options that only choose what is shown, where saved runs go, or whether benchmark
# tests run. Every other --benchmark-* option changes how it times (--benchmark-min-rounds, -max-time,
# -timer, -warmup, -only, -enable ...) or keeps, compares or exports timings (-save, -autosave,
# -compare, -json, -histogram, -csv, -cprofile): those would be empty or stale without a timing, so
# they re-time. Listing the harmless ones keeps options of later pytest-benchmark versions on the
# safe side (they re-time rather than silently report nothing).
DISPLAY_ONLY = frozenset({"--benchmark-columns", "--benchmark-sort", "--benchmark-group-by", "--benchmark-name",
                          "--benchmark-verbose", "--benchmark-quiet", "--benchmark-storage", "--benchmark-netrc",
                          "--benchmark-skip", "--benchmark-disable"})


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_fingerprint(loaded) -> dict:
    """What tokens/s depends on besides the outputs themselves: CPU, cores, torch and its threads, device.

    No host name: two machines of the same make share their figures (CI runners), which is the point.
    """
    import torch  # the plugin imports no torch until a case runs

    return {"machine": platform.machine(), "cpu": cpu_model(), "cpus": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name() if loaded.device == "cuda" else loaded.device}


def retime_rounds(config) -> int:
    """How many timed generations test_tokens_per_sec runs per case; 0 shows the measured or cached figure.

    --bench-retime, or any --benchmark-* option outside DISPLAY_ONLY (on the command line, in
    PYTEST_ADDOPTS or in the ini file's addopts), re-times: one round, or --benchmark-min-rounds when
    given (the fastest round counts; noise on a shared machine only slows a round down).
    """
    args = [*map(str, config.invocation_params.args), *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
            *config.getini("addopts")]
    asked = {arg.split("=", 1)[0] for arg in args if arg.startswith("--benchmark-")} - DISPLAY_ONLY
    if not (config.getoption("bench_retime") or asked):
        return 0
    return int(config.getoption("benchmark_min_rounds", 1)) if "--benchmark-min-rounds" in asked else 1


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class CaseSpeed:
    """One case's tokens/s entry in the generation cache: what was generated, at what batch size, where.

    Holds no model: the plugin releases a model before loading the next, so `loaded` is passed in.
    """

    cache: GenerationCache
    key: str
    prompts: list[Prompt]
    decoding: DecodingConfig
    batch_size: int
    machine: dict

    server: ServerEngine | None = None  # the server that generates (None: transformers here)
    schema: dict | None = None  # the task's JSON Schema (what structured decoding constrains to)

    @classmethod
    def of(cls, loaded, prompts: list[Prompt], decoding: DecodingConfig, batch_size: int,
           cache: GenerationCache, server: ServerEngine | None = None, schema: dict | None = None) -> CaseSpeed:
        from slmbench.generation import generation_keys

        machine = machine_fingerprint(loaded)
        # the outputs' keys hold the hf batch size, or the server's requests in flight (its identity)
        material = {"kind": "tokens_per_sec", "format": FORMAT, "machine": machine,
                    "outputs": generation_keys(loaded, [loaded.render(p) for p in prompts], decoding, server, schema,
                                               batch_size)}
        key = hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()
        return cls(cache, key, prompts, decoding, batch_size, machine, server, schema)

    def from_run(self, run: GenerationRun) -> dict:
        """The record's speed fields after the case's generation: measured on it when it generated
        anything (and stored), otherwise the figure cached for this machine, otherwise none."""
        if run.generated_tokens > 0:
            return self.store(run)
        # Outputs from another machine (or thread count) find no figure: theirs would pass
        # for this machine's speed, and timing the case now would cost one more generation of the whole
        # split, which is what the cache is there to save. It says "not timed here"; --bench-retime times it.
        found = self.cache.get(self.key)
        if found is None:
            return self._fields(None, None, cached=False)
        return self._fields(found.get("tokens_per_sec"), found.get("measured_at"), cached=True)

    def store(self, run: GenerationRun) -> dict:
        """Keep this run's figure (the latest measurement wins) and return the record's speed fields."""
        measured = {"tokens_per_sec": run.tokens_per_sec, "generated_tokens": run.generated_tokens,
                    "seconds": run.seconds, "measured_at": _now(), "machine": self.machine}
        self.cache.put(self.key, measured)
        return self._fields(measured["tokens_per_sec"], measured["measured_at"], cached=False)

    def retime(self, loaded, benchmark, rounds: int) -> dict:
        """Generate the case's prompts again, uncached, `rounds` times under pytest-benchmark; store the fastest."""
        from slmbench.generation import generate

        runs: list[GenerationRun] = []

        def generate_uncached() -> None:
            runs.append(generate(loaded, self.prompts, self.decoding, batch_size=self.batch_size, progress=False,
                                 server=self.server, schema=self.schema))

        benchmark.pedantic(generate_uncached, rounds=rounds, iterations=1)
        fastest = max(runs, key=lambda run: run.tokens_per_sec)
        benchmark.extra_info.update({"tokens_per_sec": fastest.tokens_per_sec, "prompts": len(self.prompts),
                                     "generated_tokens": fastest.generated_tokens, "batch": self.batch_size})
        return self.store(fastest)

    def not_timed_reason(self, case_id: str, generated_nothing: bool) -> str:
        """Why a case has no tokens/s in this run (the skip reason of its test_tokens_per_sec)."""
        if generated_nothing:
            return f"{case_id}: no tokens/s: no prompt was generated (every one too long for the context)"
        return (f"{case_id}: tokens/s not timed here: its outputs come from the generation cache and no tokens/s was "
                f"measured for them at batch size {self.batch_size} on this machine ({self.machine['cpu']}, "
                f"{self.machine['threads']} threads, {self.machine['device']}); --bench-retime times it")

    def _fields(self, tokens_per_sec: float | None, measured_at: str | None, cached: bool) -> dict:
        return {"tokens_per_sec": tokens_per_sec, "tokens_per_sec_cached": cached,
                "tokens_per_sec_measured_at": measured_at, "machine": self.machine}
