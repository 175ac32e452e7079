"""Which collected tests finished, so a board written after Ctrl-C, ``-x`` or a crash says it is partial."""

from __future__ import annotations

import pytest


class RunProgress:
    """A pytest plugin counting collected tests (here or on xdist workers) and finished ones."""

    def __init__(self) -> None:
        self.planned: set[str] = set()
        self.finished: set[str] = set()

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node, ids: list[str]) -> None:
        self.planned.update(ids)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.planned.update(item.nodeid for item in session.items)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "teardown":
            self.finished.add(report.nodeid)

    def partial_marks(self, session: pytest.Session, exitstatus: int, cases_ran: list[str], full_board: str) -> dict:
        """The keys that mark a board partial (and say what ran), or {} when every collected test finished."""
        unfinished = self.planned - self.finished
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        if not (interrupted or unfinished):
            return {}
        reason = "interrupted" if interrupted else (session.shouldfail or session.shouldstop or "tests left unrun")
        return {"partial": True, "partial_reason": f"{reason}; {len(unfinished)} of {len(self.planned)} tests did not finish",
                "cases_ran": cases_ran, "full_board": full_board}
