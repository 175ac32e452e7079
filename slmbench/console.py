"""How commands end for people: one line per error, warning or interrupt, never a traceback for those."""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Callable

from slmbench.errors import SlmbenchError, SlmbenchWarning

USAGE_ERROR = 2
INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
INTERRUPTED_MESSAGE = "slmbench: interrupted; nothing was half-written, and a rerun resumes from what finished"


def run_command(command: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a subcommand: SlmbenchError prints `slmbench: error: ...` (exit 2), Ctrl-C one line (exit 130)."""
    _plain_warnings()
    try:
        return command(args)
    except SlmbenchError as error:
        print(f"slmbench: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        _close_progress_bars()
        print(INTERRUPTED_MESSAGE, file=sys.stderr)
        return INTERRUPTED


def _close_progress_bars() -> None:
    """End interrupted tqdm bars on their own line, so the message does not trail one."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):  # tqdm's registry of open bars
        bar.close()


def _plain_warnings() -> None:
    """Show our warnings as `slmbench: warning: ...`, without Python's file:line prefix."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, SlmbenchWarning):
            print(f"slmbench: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1 (argparse names the option in its error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_empty_text(text: str) -> str:
    """argparse type: text with something in it besides whitespace."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty; give the text to complete")
    return text
