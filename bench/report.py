"""What every benchmark script ends with: its table printed, its rows saved as JSON."""

from __future__ import annotations

from pathlib import Path

import torch
from tabulate import tabulate

from slmbench.atomic import write_json_atomic


def print_and_save(table: list[list], headers: list[str], rows: list[dict], out: Path, floatfmt: str = ".2f",
                   **extra) -> None:
    """Print `table` as markdown and write `rows` (plus torch version, threads and `extra`) to `out`."""
    print(tabulate(table, headers=headers, tablefmt="github", floatfmt=floatfmt))
    write_json_atomic(out, {"torch": torch.__version__, "threads": torch.get_num_threads(), **extra, "rows": rows})
    print(f"\nsaved {out}")
