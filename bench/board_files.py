"""Where a run's leaderboard goes, so that no run silently replaces a board it should not.

- A **partial** run (Ctrl-C, ``-x``, a crash: not every collected test finished) writes its board
  beside the full one, as ``<name>.partial.md`` / ``.json``, marked partial; the last full board
  stays as it was. A later complete run removes a partial board that predates it.
- **Concurrent runs**: compare-and-swap on the files' content. The run notes what the board files
  held when it started; at the end, under a lock, it writes them only if they still hold that.
  If another run wrote them meanwhile, this run's board goes to ``<name>.<run id>.md`` / ``.json``
  and the terminal says so: neither run's board is lost, and neither is silently replaced.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from slmbench.atomic import write_json_atomic, write_text_atomic

LOCK_TIMEOUT_S = 60  # writing a board takes milliseconds; a longer wait means a stuck process


def partial_path(path: Path) -> Path:
    """``leaderboard.md`` -> ``leaderboard.partial.md``."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


def _fingerprint(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


@dataclass
class Written:
    """What `BoardFiles.write` did: the files written and anything the user should be told."""

    paths: list[Path]
    notes: list[str] = field(default_factory=list)


class BoardFiles:
    """The markdown and JSON board paths of one run, with what they held when the run started."""

    def __init__(self, markdown: Path, json: Path):
        self.markdown, self.json = Path(markdown), Path(json)
        self.full = (self.markdown, self.json)
        self.partial = (partial_path(self.markdown), partial_path(self.json))
        self.at_start = {path: _fingerprint(path) for path in (*self.full, *self.partial)}

    def write(self, markdown: str, board: dict, run_id: str) -> Written:
        """Write the board (full or partial, as `board` says) unless another run changed the files first."""
        targets = self.partial if board.get("partial") else self.full
        lock = FileLock(str(self.markdown.parent / f".{self.markdown.name}.lock"), timeout=LOCK_TIMEOUT_S)
        self.markdown.parent.mkdir(parents=True, exist_ok=True)
        with lock:
            changed = [path for path in targets if _fingerprint(path) != self.at_start[path]]
            written = Written(list(targets))
            if changed:
                written.paths = [path.with_name(f"{path.stem}.{run_id[:8]}{path.suffix}") for path in targets]
                written.notes.append(f"another run wrote {', '.join(map(str, changed))} while this run was going; "
                                     f"kept it, and wrote this run's board to {written.paths[0]} and {written.paths[1]}")
            write_text_atomic(written.paths[0], markdown)
            write_json_atomic(written.paths[1], board)
            if not board.get("partial") and not changed:
                written.notes += self._remove_stale_partial()
        return written

    def _remove_stale_partial(self) -> list[str]:
        """Remove a partial board this complete run supersedes (one that was there before it started)."""
        stale = [p for p in self.partial if self.at_start[p] is not None and _fingerprint(p) == self.at_start[p]]
        for path in stale:
            path.unlink()
        return [f"removed the earlier partial board {path}" for path in stale if path.suffix == ".md"]
