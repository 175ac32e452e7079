"""Bench cases done / total, one line per case: `pytest bench -p slmbench.bench.case_progress`.

    bench case 3/20 gemma3-270m+lora-fast::iris ..... 5 passed, 34s; ~9m10s left at this pace

`slmbench main` runs the bench with it. pytest -q prints one letter per test, and a case is several
tests (its thresholds and its speed), so letters alone say neither which case is generating nor how
many cases are left. With -q, a case's line starts when its first test starts, so a terminal shows
which case is generating while its letters follow, and ends when its last test finishes: a CI log,
which shows whole lines, gets exactly one line per finished case. The same output suits both, so
there is no separate no-TTY mode. Without -q (pytest writes file names or a line per test) the
case's line is written whole when it finishes. Under pytest-xdist the controller holds no test
items, and this stays silent. A run in which a case's tests errored exits with CASE_ERRORS, not
pytest's 1, so `slmbench main` fails on it while a case below a threshold does not fail the job.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

OUTCOMES = ("failed", "passed", "skipped", "error")  # in the order pytest's summary names them
CASE_ERRORS = 7  # exit status when a case's tests errored: pytest says 1 for errors and failures alike, and
# `slmbench main` must fail on an error (a case that could not be evaluated), not on a case below a threshold


class CaseProgress:
    """Counts each bench case's tests as they finish and writes the case's line."""

    def __init__(self, terminal) -> None:
        self.terminal = terminal
        self.inline = terminal.verbosity < 0 and not terminal.showfspath  # -q: letters only, no file names
        self.case_of: dict[str, str] = {}  # test node id -> case id
        self.tests_left: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = {}
        self.started: dict[str, float] = {}
        self.finished = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        for item in session.items:
            case = getattr(item, "callspec", None) and item.callspec.params.get("bench_case")
            if case is not None:
                self.case_of[item.nodeid] = case.id
        self.tests_left = Counter(self.case_of.values())

    @pytest.hookimpl(trylast=True)  # after pytest's own writing for the test
    def pytest_runtest_logstart(self, nodeid: str) -> None:
        case = self.case_of.get(nodeid)
        if case is None or case in self.started:
            return
        self.started[case] = time.perf_counter()
        self.outcomes[case] = Counter()
        if self.inline:
            self.terminal.ensure_newline()
            self.terminal.write(self.heading(case) + " ", flush=True)

    @pytest.hookimpl(trylast=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        case = self.case_of.get(report.nodeid)
        if case is None or case not in self.outcomes:
            return
        outcome = outcome_of(report)
        if outcome:
            self.outcomes[case][outcome] += 1
        if report.when == "teardown":
            self.tests_left[case] -= 1
            if self.tests_left[case] == 0:
                self.finish(case)

    def finish(self, case: str) -> None:
        from slmbench.training.progress import format_duration  # imports transformers: only once a case ran

        self.finished += 1
        counts = ", ".join(f"{self.outcomes[case][outcome]} {outcome}" for outcome in OUTCOMES
                           if self.outcomes[case][outcome])
        line = f"{counts}, {format_duration(time.perf_counter() - self.started[case])}"
        left = len(self.tests_left) - self.finished
        if left:
            pace = (time.perf_counter() - min(self.started.values())) / self.finished
            line += f"; ~{format_duration(pace * left)} left at this pace"
        if self.inline:
            self.terminal.write(f" {line}\n", flush=True)
        else:
            self.terminal.write_line(f"{self.heading(case)}: {line}")

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        errors = sum(counts["error"] for counts in self.outcomes.values())
        if errors and session.exitstatus == pytest.ExitCode.TESTS_FAILED:
            self.terminal.write_line(f"bench: {errors} tests errored (cases that could not be evaluated, not "
                                     f"thresholds missed): exit status {CASE_ERRORS}", red=True)
            session.exitstatus = CASE_ERRORS

    def heading(self, case: str) -> str:
        return f"bench case {list(self.started).index(case) + 1}/{len(self.tests_left)} {case}"


def outcome_of(report: pytest.TestReport) -> str | None:
    """What a report adds to its test's tally, as pytest's summary words it (setup, call and teardown)."""
    if report.when == "call":
        return "skipped" if report.skipped else report.outcome
    if report.failed:
        return "error"
    return "skipped" if report.skipped else None


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    if terminal is not None:
        config.pluginmanager.register(CaseProgress(terminal), "slmbench-case-progress")
