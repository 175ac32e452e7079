"""`slmbench main`, what `make main` runs: train the missing adapters, then bench, in one progress view.

    slmbench main --model smollm2-135m-instruct,gemma3-270m --train "fast:it_entities,recipes balanced:iris" \\
        -- bench --bench-models smollm2-135m-instruct,gemma3-270m -q

The plan: every model × task pair of each PRESET:TASKS group of --train, skipped when it already has
an adapter of any preset (as `slmbench train --skip-trained` skips) or when an earlier group of this
job trains it. A pair's time is estimated as the train tokens its run goes through (its train split
tokenized, with the model's tokenizer only, times its epochs) over the rate measured on this
machine: whole-run train tokens over wall seconds (load, steps, validation, saving) of the model's
adapters already trained here, else of the slowest model measured here, else a stated guess. After
each pair the rates are read again and the rest re-estimated. Then the bench runs as
`python -m pytest <the arguments after -->` with one line per finished case (bench/case_progress.py);
its exit status is the job's.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import platform
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from slmbench.registry import OFFLINE_MODELS, resolve
from slmbench.training.config import TrainConfig, make_config

DEFAULT_TRAIN = "fast:it_entities,recipes,products,bioqa balanced:iris"  # the Makefile's TRAIN; why: docs/adapters.md
DEFAULT_TOKENS_PER_SEC = 100.0  # until a rate is measured here; a 2-core CPU trained the offline models at 56-234


@dataclass(frozen=True)
class Pair:
    """One model × task of the plan: trained with `config`, unless `skipped` says why not."""

    config: TrainConfig
    skipped: str | None = None
    tokens: int = 0  # train tokens its run goes through, all epochs (counted for pairs to train)

    @property
    def model_name(self) -> str:
        return resolve(self.config.model).name

    @property
    def label(self) -> str:
        return f"{self.model_name} × {self.config.task}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `main` flags; everything after `--` goes to pytest."""
    parser.add_argument("--model", default=",".join(OFFLINE_MODELS), help="models to train, comma-separated "
                        "(default: the offline models)")
    parser.add_argument("--train", default=DEFAULT_TRAIN,
                        help=f"space-separated PRESET:TASKS groups (default {DEFAULT_TRAIN!r}); '' trains nothing")
    parser.add_argument("--out", help="adapters root (default $SLMBENCH_ADAPTERS or ./adapters); the bench reads it")
    parser.add_argument("--max-steps", type=int, help="stop each training after this many optimizer steps (smoke runs)")
    parser.add_argument("bench_args", nargs=argparse.REMAINDER, metavar="-- PYTEST_ARGS",
                        help="the bench's pytest arguments (default: --pyargs slmbench.bench -q -rs --bench-models M)")


def run_main(args: argparse.Namespace) -> int:
    """Train the adapters that are missing, then run the bench; the bench's pytest exit status."""
    from slmbench.training.cli import comma_list, exit_on_sigterm

    exit_on_sigterm()
    models = comma_list(args.model, "--model")
    pairs = plan_pairs(models, train_groups(args.train), args.out, args.max_steps)
    for pair in pairs:
        if pair.skipped:
            print(f"{pair.label}: skipped, {pair.skipped}", flush=True)
    to_train = with_token_counts([pair for pair in pairs if pair.skipped is None])
    if not to_train:
        print("nothing to train" + (": every pair has an adapter" if pairs else " (--train is empty)"), flush=True)
    train_pairs(to_train, args.out)
    bench_args = args.bench_args[1:] if args.bench_args[:1] == ["--"] else args.bench_args
    bench_args = bench_args or [
        "--pyargs", "slmbench.bench", "-q", "-rs", "--bench-models", ",".join(models)]
    return run_bench(bench_args, args.out)


def train_groups(spec: str) -> list[tuple[str, list[str]]]:
    """`fast:a,b balanced:c` -> [("fast", ["a", "b"]), ("balanced", ["c"])]; an empty spec trains nothing."""
    from slmbench.errors import TrainingConfigError
    from slmbench.training.cli import task_list

    groups = []
    for entry in spec.split():
        preset, colon, tasks = entry.partition(":")
        if not (preset and colon and tasks):
            raise TrainingConfigError(f"--train entry {entry!r} is not PRESET:TASKS (e.g. fast:it_entities,recipes)")
        groups.append((preset, task_list(tasks)))
    return groups


def plan_pairs(models: list[str], groups: list[tuple[str, list[str]]], out_root: str | None,
               max_steps: int | None = None) -> list[Pair]:
    """Every model × task of every group, in order, each checked before any model loads."""
    from slmbench.training.cli import trained_adapters

    pairs, planned = [], {}
    for preset, tasks in groups:
        for model in models:
            for task in tasks:
                config = make_config(model, task, preset, max_steps=max_steps)
                key = (config.model, config.task)
                existing = trained_adapters(config, out_root)
                skipped = (f"trained by this job with {planned[key]}" if key in planned
                           else f"already has {', '.join(map(str, existing))}" if existing else None)
                pairs.append(Pair(config, skipped))
                if skipped is None:
                    planned[key] = preset
    return pairs


def with_token_counts(pairs: list[Pair]) -> list[Pair]:
    """The pairs with the train tokens of their runs, tokenized with each model's tokenizer (no weights)."""
    from slmbench.loading import load_tokenizer
    from slmbench.tasks import resolve_task
    from slmbench.tasks.data_sources import with_data
    from slmbench.training.data import build_examples

    tokenizers, counted = {}, []
    for pair in pairs:
        config = pair.config
        if config.model not in tokenizers:
            tokenizers[config.model] = load_tokenizer(config.model)
        with _quiet("slmbench.training.data"):  # truncation is reported when the pair trains
            task = with_data(resolve_task(config.task), config.data)  # as `train` reads it
            examples = build_examples(tokenizers[config.model], task, "train", config.max_seq_len)
        counted.append(replace(pair, tokens=run_tokens(examples.tokens, len(examples.examples), config)))
    return counted


def run_tokens(epoch_tokens: int, examples: int, config: TrainConfig) -> int:
    """Train tokens a run goes through: its epochs' worth, or less when max_steps stops it first."""
    epochs = config.epochs
    if config.max_steps != -1:
        epochs = min(epochs, config.max_steps / math.ceil(examples / config.batch_size))
    return round(epoch_tokens * epochs)


def measured_rates(out_root: str | None) -> dict[str, tuple[int, float]]:
    """Per base model, (train tokens, wall seconds) summed over its adapters trained on this machine.

    Records from before `train` wrote the host count as this machine's.
    """
    from slmbench.adapters import find_adapters
    from slmbench.training.lora import adapters_root

    host, rates = platform.node(), {}
    for info in find_adapters(adapters_root(out_root)):
        tokens, seconds = info.training.get("train_tokens"), info.training.get("wall_seconds")
        if tokens and seconds and info.training.get("host", host) == host:
            summed = rates.get(info.base_model_name, (0, 0.0))
            rates[info.base_model_name] = (summed[0] + tokens, summed[1] + seconds)
    return rates


def tokens_per_sec(model: str, measured: dict[str, tuple[int, float]]) -> tuple[float, str]:
    """The rate a model's pairs are estimated with, and where it comes from."""
    if model in measured:
        tokens, seconds = measured[model]
        return tokens / seconds, "measured here"
    if measured:
        return min(tokens / seconds for tokens, seconds in measured.values()), "the slowest model measured here"
    return DEFAULT_TOKENS_PER_SEC, "a guess until a pair is measured"


def seconds_left(work: list[tuple[str, int]], measured: dict[str, tuple[int, float]]) -> float:
    """Estimated seconds to train `work`, (model, train tokens) per pair, at the `measured` rates."""
    return sum(tokens / tokens_per_sec(model, measured)[0] for model, tokens in work)


def train_pairs(pairs: list[Pair], out_root: str | None) -> None:
    """Train each pair, with the job's time left on its bar and one line when it finishes."""
    from slmbench.training.lora import train
    from slmbench.training.progress import PairStatus, format_duration

    started, measured = time.perf_counter(), measured_rates(out_root)
    if pairs:
        print(plan_line(pairs, measured), flush=True)
    for index, pair in enumerate(pairs, 1):
        work = [(p.model_name, p.tokens) for p in pairs[index - 1:]]
        status = PairStatus(index, len(pairs), pair.label, seconds_left(work[:1], measured),
                            seconds_left(work[1:], measured))
        result = train(pair.config, out_root=out_root, pair=status)
        measured = measured_rates(out_root)  # now with this pair's rate
        best = "n/a" if result.best_val_loss is None else f"{result.best_val_loss:.4f} (epoch {result.best_epoch:g})"
        print(f"pair {index}/{len(pairs)} {pair.label} ({pair.config.preset}): {format_duration(result.wall_seconds)}, "
              f"{result.train_tokens_per_sec:.0f} train tok/s, best val loss {best}; "
              f"training left ~{format_duration(seconds_left(work[1:], measured))}", flush=True)
        del result  # frees the trained model before the next pair loads its base
    if pairs:
        print(f"trained {len(pairs)} pairs in {format_duration(time.perf_counter() - started)}; now the bench", flush=True)


def plan_line(pairs: list[Pair], measured: dict[str, tuple[int, float]]) -> str:
    """`10 pairs to train, ~1h55m (smollm2-135m-instruct at 180 train tok/s, measured here; ...)`."""
    from slmbench.training.progress import format_duration

    rates = []
    for model in dict.fromkeys(pair.model_name for pair in pairs):
        rate, source = tokens_per_sec(model, measured)
        rates.append(f"{model} at {rate:.0f} train tok/s, {source}")
    total = seconds_left([(pair.model_name, pair.tokens) for pair in pairs], measured)
    return f"{len(pairs)} pairs to train, ~{format_duration(total)} ({'; '.join(rates)})"


def run_bench(bench_args: list[str], out_root: str | None) -> int:
    """`python -m pytest <bench_args>` with a line per finished case; its exit status."""
    env = dict(os.environ)
    if out_root:  # the bench finds the adapters this job trained
        env["SLMBENCH_ADAPTERS"] = str(Path(out_root).expanduser().resolve())
    command = [sys.executable, "-m", "pytest", "-p", "slmbench.bench.case_progress", *bench_args]
    return subprocess.run(command, env=env).returncode


@contextmanager
def _quiet(logger_name: str):
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
