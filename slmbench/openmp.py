"""How torch's CPU threads wait for work: decided once, before torch is imported."""

from __future__ import annotations

import os
import sys

WAIT_POLICY = "OMP_WAIT_POLICY"


def choose_wait_policy() -> str | None:
    """Let idle OpenMP threads sleep instead of spin when other work already shares the CPU.

    torch's CPU build parallelises each op with GNU OpenMP, whose idle threads spin before they
    sleep. Alone on the machine spinning is faster (LoRA training ran 1.3-1.45x faster than with
    sleeping threads). When another job shares the cores, the spinning threads take turns with
    the working ones and every op waits for a thread that is not running: the same training step
    ran 20x slower than with sleeping threads (docs/performance.md). So: sleeping threads when the
    1-minute load average is at least half the cores at start, the default otherwise. A policy the
    user set is kept; OpenMP reads it once, when torch loads, so nothing changes once torch is
    imported. Returns the policy set, or None when it left the choice alone.
    """
    if "torch" in sys.modules or WAIT_POLICY in os.environ:
        return None
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        return None
    if load >= max(1, (os.cpu_count() or 1) / 2):
        os.environ[WAIT_POLICY] = "PASSIVE"
        return "PASSIVE"
    return None
