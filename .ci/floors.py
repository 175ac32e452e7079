"""The declared dependency floors of pyproject.toml, as exact pins, and a check of what got installed.

Used by `tox -e min` (see tox.ini), which installs every declared floor exactly and runs the tests:

    python .ci/floors.py DIR      write DIR/floors.txt, `name==floor` for every requirement in
                                  [project] dependencies and every extra but SEPARATE_EXTRAS, and
                                  DIR/build-floors.txt for [build-system] requires (kept apart: torch
                                  itself needs a newer setuptools at run time than our build does)
    python .ci/floors.py --check  exit 1, naming each one, unless every floor in floors.txt is what
                                  is installed

The pins are generated from pyproject.toml on every run, so they cannot drift from what we declare.
Writing them uses the standard library only: it runs in a bare venv before anything is installed
(tests/test_packaging_floors.py checks this reading against `packaging`'s).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
# Extras `tox -e min` leaves out: llamacpp builds llama.cpp from source (4 minutes); `make engines` installs it
SEPARATE_EXTRAS = ("llamacpp",)
# PEP 508 name, optional [extras], then the version specifiers up to an environment marker.
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*([^;]*)")


def declared_requirements(pyproject: Path = PYPROJECT, build: bool = False) -> list[str]:
    """The requirement strings pyproject.toml declares: dependencies then each extra (but SEPARATE_EXTRAS),
    or the build system's."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    if build:
        return list(data["build-system"]["requires"])
    project = data["project"]
    extras = [req for extra, group in project.get("optional-dependencies", {}).items() for req in group
              if extra not in SEPARATE_EXTRAS]
    return [*project["dependencies"], *extras]


def floor_of(requirement: str) -> tuple[str, str]:
    """(name, floor) of a requirement such as 'pytest>=8,<9.2'; a requirement without `>=` is an error."""
    match = REQUIREMENT.match(requirement)
    floors = [spec.strip()[2:].strip() for spec in match.group(2).split(",") if spec.strip().startswith(">=")]
    if len(floors) != 1:
        raise SystemExit(f"{PYPROJECT}: requirement {requirement!r} must declare exactly one floor (>=)")
    return match.group(1), floors[0]


def floors(pyproject: Path = PYPROJECT, build: bool = False) -> dict[str, str]:
    """Declared floor per distribution name, in the order pyproject.toml lists them."""
    return dict(floor_of(requirement) for requirement in declared_requirements(pyproject, build))


def pins(declared: dict[str, str]) -> str:
    """A pip constraints file pinning each name to its floor."""
    return "".join(f"{name}=={floor}\n" for name, floor in declared.items())


def mismatches(declared: dict[str, str]) -> list[str]:
    """One line per declared floor that differs from the installed version (local labels like +cpu ignored)."""
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version  # installed with the dependencies (transformers needs it)

    problems = []
    for name, floor in declared.items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            problems.append(f"{name}: declared >={floor}, not installed")
            continue
        if Version(Version(installed).public) != Version(floor):
            problems.append(f"{name}: declared >={floor}, installed {installed}")
    return problems


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        problems = mismatches(floors())
        for problem in problems:
            print(f"floors: {problem}", file=sys.stderr)
        print(f"floors: {len(floors()) - len(problems)} of {len(floors())} declared floors are what is installed")
        return 1 if problems else 0
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    (out / "floors.txt").write_text(pins(floors()), encoding="utf-8")
    (out / "build-floors.txt").write_text(pins(floors(build=True)), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
