"""Checks on the ``--bench-*`` options, made when pytest starts: a bad value is a usage error (exit 4)
that names the option, before any model is loaded or any output generated.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import pytest

from slmbench.errors import SlmbenchError

from slmbench.bench.baseline import load_baseline
from slmbench.bench.cases import select_models, select_tasks
from slmbench.bench.store import check_store
from slmbench.bench.thresholds import load_thresholds


def names(value: str) -> list[str]:
    """A comma-separated list with at least one name (an empty value must not mean "everything")."""
    found = [part.strip() for part in value.split(",") if part.strip()]
    if not found:
        raise argparse.ArgumentTypeError(f"names nothing ({value!r}); leave the option out to run the default set")
    return found


def positive_int(value: str) -> int:
    """A whole number >= 1 (sample limits and batch sizes)."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {value!r}")
    return number


def names_bench_options(config: pytest.Config) -> bool:
    """Whether the command line names any --bench-* option (then this is surely a bench run)."""
    return any(str(arg).startswith("--bench-") for arg in config.invocation_params.args)


def check_options(config: pytest.Config, collected: bool = False) -> None:
    """Fail the run, naming the option, when a --bench-* value cannot work.

    Called when pytest starts and again once tests are collected (``collected=True``, only when bench
    cases were). The checks run at start when the command line names a --bench-* option, otherwise
    after collection: the plugin is active in every pytest session of a project that installed
    slmbench, and that project's own ``results.db`` or ``leaderboard.md`` must not stop its tests.
    """
    if config.getoption("help", False):  # `pytest --help` must work whatever is in the working directory
        return
    if names_bench_options(config) == collected:  # checked at the other call
        return
    option = lambda name: config.getoption(f"bench_{name}")  # noqa: E731
    for name in ("leaderboard", "json"):
        if Path(option(name)).is_dir():
            raise pytest.UsageError(f"--bench-{name}: {option(name)} is a directory; give a file path")
    try:
        if option("tasks") is not None:
            select_tasks(option("tasks"))  # first: it loads task files the thresholds may name
        load_thresholds(Path(option("thresholds")))
        if option("models") is not None:
            select_models(option("models"))
        if option("store").lower() != "none":
            check_store(Path(option("store")))
        if option("baseline") and not option("update_baseline"):
            load_baseline(Path(option("baseline")))
    except SlmbenchError as error:
        raise pytest.UsageError(f"slmbench: {error}") from None
    if option("update_baseline") and not option("baseline"):
        raise pytest.UsageError("--bench-update-baseline needs --bench-baseline PATH")


SAVE_OPTIONS = ("benchmark_save", "benchmark_autosave", "benchmark_compare", "benchmark_compare_fail")


def keep_benchmark_storage_private(config: pytest.Config) -> tempfile.TemporaryDirectory | None:
    """Point pytest-benchmark's storage at a temporary folder unless the user saves or compares runs.

    pytest-benchmark creates its storage folder (``./.benchmarks``) when it starts, whether or not
    anything is saved; the bench only reads tokens/s from it, so a bare run leaves the working
    directory as it found it. Returns the folder to clean up at the end, or None.
    """
    if not hasattr(config.option, "benchmark_storage") or any(config.getoption(o, None) for o in SAVE_OPTIONS):
        return None
    if config.getoption("benchmark_storage") != "file://./.benchmarks":  # the user chose a storage
        return None
    folder = tempfile.TemporaryDirectory(prefix="slmbench-benchmarks-")
    config.option.benchmark_storage = f"file://{folder.name}"
    return folder
