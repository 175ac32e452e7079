"""The built wheel in a fresh virtual environment that has slmbench's dependencies but not this checkout.

What another project sees once it installed slmbench: ``import tasks`` fails, ``slmbench.tasks``
loads its packaged fixtures, ``pytest --pyargs slmbench.bench`` runs through the ``pytest11``
entry point with the plugin registered once, the README's "Add a task" example trains and
benches from a project of its own, and a second package's ``slmbench.tasks`` entry point is
picked up by name. Select them with ``-m wheel``; the wheel is built once per module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from slmbench.tasks import TASKS
from slmbench.tasks.core import SPLITS

pytestmark = pytest.mark.wheel

REPO = Path(__file__).resolve().parents[1]
WHEEL_SOURCES = ("pyproject.toml", "README.md", "slmbench", "tasks", "training", "bench", "fixtures")
TINY = "tiny-random-llama"


@dataclass(frozen=True)
class Installed:
    """A throwaway venv with the wheel installed; `run` executes in it with a clean environment."""

    venv: Path
    site: Path
    cache: Path

    def run(self, program: str, *args: str, cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess:
        """Run `python` or a console script of the venv in `cwd`; never sees this checkout."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "PYTEST_", "SLMBENCH_")) and k != "VIRTUAL_ENV"}
        env.update(HF_HUB_OFFLINE="1", PYTHONNOUSERSITE="1", SLMBENCH_CACHE=str(self.cache))
        if extra_path:
            env["PYTHONPATH"] = str(extra_path)
        return subprocess.run([str(self.venv / "bin" / program), *args], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=600)


def build_wheel(workdir: Path) -> Path:
    """`pip wheel` of a copy of the sources (the build writes build/ and *.egg-info beside them)."""
    source = workdir / "source"
    source.mkdir()
    for name in WHEEL_SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(workdir / "dist"), str(source)], check=True, capture_output=True, text=True)
    return next((workdir / "dist").glob("slmbench-*.whl"))


def dependency_entries() -> list[Path]:
    """Everything in this interpreter's site-packages except slmbench itself and what points at a checkout."""
    entries = []
    for folder in dict.fromkeys(Path(sysconfig.get_paths()[key]) for key in ("purelib", "platlib")):
        for entry in folder.iterdir():
            if entry.name.startswith(("__editable__", "slmbench")) or entry.name.endswith(".egg-link"):
                continue
            if entry.suffix == ".pth" and str(REPO) in entry.read_text(errors="replace"):
                continue  # a path-based editable install of this checkout
            entries.append(entry)
    return entries


def make_venv(root: Path, wheel: Path) -> Installed:
    """A venv whose site-packages links this one's dependencies, then the wheel installed by its own pip."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    for entry in dependency_entries():
        (site / entry.name).symlink_to(entry)
    installed = Installed(venv, site, root / "cache")
    result = installed.run("python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel), cwd=root)
    assert result.returncode == 0, result.stderr
    return installed


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(tmp_path_factory, wheel) -> Installed:
    return make_venv(tmp_path_factory.mktemp("installed"), wheel)


@pytest.fixture
def empty_dir(tmp_path) -> Path:
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_the_wheel_holds_one_top_level_package(wheel):
    top = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert top == {"slmbench", wheel.name.split("-py3")[0] + ".dist-info"}


def test_only_the_slmbench_namespace_imports_and_it_comes_from_the_wheel(installed, empty_dir):
    probe = installed.run("python", "-c", "import slmbench, slmbench.tasks, slmbench.training, slmbench.bench; "
                          "print(slmbench.__file__); print(slmbench.tasks.__file__)", cwd=empty_dir)
    assert probe.returncode == 0, probe.stderr
    assert all(Path(line).is_relative_to(installed.site) for line in probe.stdout.split()), probe.stdout
    for name in ("tasks", "training", "bench", "fixtures"):
        result = installed.run("python", "-c", f"import {name}", cwd=empty_dir)
        assert f"ModuleNotFoundError: No module named '{name}'" in result.stderr


def test_the_tasks_load_their_packaged_fixtures(installed, empty_dir):
    code = ("import json; from slmbench.tasks import TASKS; from slmbench.tasks.core import SPLITS; "
            "print(json.dumps({name: [len(task.samples(s)) for s in SPLITS] for name, task in TASKS.items()})); "
            "print(TASKS['iris'].data_path('test'))")
    result = installed.run("python", "-c", code, cwd=empty_dir)
    assert result.returncode == 0, result.stderr
    sizes, data_path = result.stdout.splitlines()
    assert json.loads(sizes) == {name: [len(task.samples(s)) for s in SPLITS] for name, task in TASKS.items()}
    assert Path(data_path) == installed.site / "slmbench" / "fixtures" / "iris" / "test.jsonl"


def test_the_suite_runs_through_the_entry_point_with_the_plugin_registered_once(installed, empty_dir):
    result = installed.run("python", "-m", "pytest", "--pyargs", "slmbench.bench", "--bench-models", TINY,
                           "--bench-tasks", "iris", "--bench-limit", "2", "-p", "no:cacheprovider", "--trace-config",
                           "--bench-fewshot", "0", "--bench-classical", "none",  # only the rows this test is about
                           cwd=empty_dir)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout[-3000:]  # random weights miss thresholds
    registered = [line for line in result.stdout.splitlines() if line.startswith("PLUGIN registered:")]
    assert len([line for line in registered if "<module 'slmbench.bench.plugin'" in line]) == 1
    assert len([line for line in registered if "BenchSession object" in line]) == 1
    assert f"from '{installed.site / 'slmbench' / 'bench' / 'plugin.py'}'" in "\n".join(registered)
    rows = json.loads((empty_dir / "leaderboard.json").read_text())["rows"]
    assert [(row["case_id"], row["n"]) for row in rows] == [(f"{TINY}::iris", 2)]
    assert (empty_dir / "leaderboard.md").read_text().startswith("# slmbench leaderboard")


# ---- the README's "Add a task", from a project that only has the wheel -------------------------------

def readme_example() -> tuple[str, list[str], list[str]]:
    """The task module, the data lines and the commands of the README's "Add a task" section."""
    section = REPO.joinpath("README.md").read_text().split("\n## Add a task\n", 1)[1].split("\n## ", 1)[0]
    blocks = dict(re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S))
    commands = [line for line in blocks["bash"].splitlines() if line.strip() and not line.startswith("#")]
    return blocks["python"], blocks["jsonl"].splitlines(), commands


def as_tiny_run(command: str, installed: Installed) -> list[str]:
    """A README command on the tiny random model, two training steps and two samples, in the venv."""
    words = command.split("#")[0].replace("smollm2-135m-instruct", TINY).split()
    program = ["slmbench"] if words[0] == "slmbench" else ["python", "-m", "pytest"]
    if words[:2] == ["slmbench", "train"]:
        extra = ["--max-steps", "2"]
    else:  # random weights: an adapter trained in float32 only fits the float32 checkpoint it was trained on
        extra = ["--bench-limit", "2", "--bench-dtype", "float32", "-p", "no:cacheprovider"]
    return [*program, *words[1:], *extra]


def test_the_readme_task_example_trains_benches_and_reaches_the_board(installed, tmp_path):
    module, rows, commands = readme_example()
    project = tmp_path / "project"
    (project / "tasks" / "invoices").mkdir(parents=True)
    (project / "tasks" / "invoices.py").write_text(module)
    for split in SPLITS:
        (project / "tasks" / "invoices" / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    assert [command.split()[:2] for command in commands] == [["slmbench", "train"], ["pytest", "--pyargs"]]
    for command in commands:
        result = installed.run(*as_tiny_run(command, installed), cwd=project)
        assert result.returncode in (0, pytest.ExitCode.TESTS_FAILED), f"{command}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    assert (project / "adapters" / TINY / "invoices" / "fast" / "adapter_config.json").is_file()
    rows = json.loads((project / "leaderboard.json").read_text())["rows"]
    assert [row["case_id"] for row in rows] == [f"{TINY}::invoices", f"{TINY}+lora-fast::invoices"]
    assert "## invoices" in (project / "leaderboard.md").read_text()


# ---- a second package that registers a task through the entry point ------------------------------

RECEIPTS_PYPROJECT = """
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "receipt-tasks"
version = "1.0"

[project.entry-points."slmbench.tasks"]
receipts = "receipt_tasks.receipts"

[tool.setuptools]
packages = ["receipt_tasks"]

[tool.setuptools.package-data]
receipt_tasks = ["receipts/*.jsonl"]
"""


def test_an_installed_package_registers_its_task_by_entry_point(installed, tmp_path, empty_dir):
    module, rows, _ = readme_example()
    package = tmp_path / "receipt-tasks"
    (package / "receipt_tasks" / "receipts").mkdir(parents=True)
    (package / "pyproject.toml").write_text(RECEIPTS_PYPROJECT)
    (package / "receipt_tasks" / "__init__.py").write_text("")
    (package / "receipt_tasks" / "receipts.py").write_text(module.replace('name="invoices"', 'name="receipts"'))
    for split in SPLITS:
        (package / "receipt_tasks" / "receipts" / f"{split}.jsonl").write_text("\n".join(rows) + "\n")
    target = tmp_path / "site"
    install = installed.run("python", "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                            "--target", str(target), str(package), cwd=tmp_path)
    assert install.returncode == 0, install.stderr
    shutil.rmtree(package)  # only the installed copy is left to find
    result = installed.run("python", "-m", "pytest", "--pyargs", "slmbench.bench", "--bench-models", TINY,
                           "--bench-tasks", "receipts", "--bench-limit", "2", "-p", "no:cacheprovider",
                           cwd=empty_dir, extra_path=target)
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, result.stdout[-3000:]
    rows = json.loads((empty_dir / "leaderboard.json").read_text())["rows"]
    assert [(row["case_id"], row["n"]) for row in rows] == [(f"{TINY}::receipts", 2)]
