"""`slmbench report` (report.html from results.db) and `slmbench compare` (deltas between two leaderboards)."""

from __future__ import annotations

import argparse
from pathlib import Path

from slmbench.bench import compare, html_report, run_loader

DEFAULT_STORE = "results.db"


def cmd_report(args: argparse.Namespace) -> int:
    """Write the HTML report of a stored run (the latest one by default) from results.db."""
    source = args.source
    if source and Path(source).is_file():
        store_path, run_id = Path(source), None
    else:
        store_path, run_id = Path(args.store), source
    run = run_loader.load_run(store_path, run_id)
    out = html_report.write_report(Path(args.out), run.records, run.samples, run.run_id)
    print(f"run {run.run_id}: {len(run.records)} cases, {sum(map(len, run.samples.values()))} sample rows -> {out}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Print per-case metric deltas between two leaderboard JSONs as a markdown table (paired CIs)."""
    print(compare.compare_markdown(compare.load_board(Path(args.old)), compare.load_board(Path(args.new))), end="")
    return 0


def add_commands(commands) -> None:
    """Register `report` and `compare` on the `slmbench` subcommand parser."""
    report = commands.add_parser("report", help=cmd_report.__doc__)
    report.add_argument("source", nargs="?", metavar="RUN_ID|results.db",
                        help="a run id in --store, or a results store (default: the latest run in --store)")
    report.add_argument("--store", default=DEFAULT_STORE, help=f"results store (default {DEFAULT_STORE})")
    report.add_argument("--out", default="report.html", help="where to write the report (default report.html)")
    report.set_defaults(run=cmd_report)
    comparison = commands.add_parser("compare", help=cmd_compare.__doc__)
    comparison.add_argument("old", metavar="OLD.json", help="leaderboard JSON of the earlier run")
    comparison.add_argument("new", metavar="NEW.json", help="leaderboard JSON of the later run")
    comparison.set_defaults(run=cmd_compare)
