"""How torch's CPU threads wait for work: decided once, before torch is imported."""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

WAIT_POLICY = "OMP_WAIT_POLICY"


def choose_wait_policy() -> str | None:
    """Let idle OpenMP threads sleep instead of spin when other work is using the CPU right now.

    torch's CPU build parallelises each op with GNU OpenMP, whose idle threads spin before they
    sleep. Alone on the machine spinning is faster (LoRA training ran 1.3-1.45x faster than with
    sleeping threads). When another job shares the cores, the spinning threads take turns with
    the working ones and every op waits for a thread that is not running: the same training step
    ran 20x slower than with sleeping threads (docs/performance.md). So: sleeping threads when
    other jobs keep at least half the cores busy at start, the default otherwise. A policy the
    user set is kept; OpenMP reads it once, when torch loads, so nothing changes once torch is
    imported. Returns the policy set, or None when it left the choice alone.
    """
    if "torch" in sys.modules or WAIT_POLICY in os.environ:
        return None
    if busy_elsewhere() >= max(1, (os.cpu_count() or 1) / 2):
        os.environ[WAIT_POLICY] = "PASSIVE"
        return "PASSIVE"
    return None


def busy_elsewhere() -> float:
    """Threads other than this one running now: median of a few reads of /proc/loadavg's runnable count.

    The 1-minute load average would be simpler, but it still counts a job that ended a minute ago
    (make main's pip install before training); it is the fallback where /proc is not available.
    """
    try:
        samples = []
        for _ in range(5):
            runnable = int(Path("/proc/loadavg").read_text().split()[3].split("/")[0])
            samples.append(runnable - 1)  # this process's thread is running while it reads
            time.sleep(0.002)
        return statistics.median(samples)
    except (OSError, ValueError, IndexError):
        try:
            return os.getloadavg()[0]
        except OSError:
            return 0.0
