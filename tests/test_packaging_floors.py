"""slmbench as other projects install it: declared floors (.ci/floors.py, `tox -e min`), a plugin that
costs little in their pytest sessions, and a plugin that registers once."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "transformers", "peft", "sentence_transformers")  # not yet sklearn: html_report imports it


def _floors_script():
    spec = importlib.util.spec_from_file_location("floors", ROOT / ".ci" / "floors.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


floors = _floors_script()


@pytest.mark.parametrize("build", [False, True], ids=["dependencies", "build-system"])
def test_the_stdlib_reading_of_each_floor_agrees_with_packaging(build):
    declared = floors.declared_requirements(build=build)
    ours = [floors.floor_of(text) for text in declared]
    theirs = [(Requirement(text).name, next(s.version for s in Requirement(text).specifier if s.operator == ">="))
              for text in declared]
    assert ours == theirs


def test_pins_cover_every_declared_requirement_exactly(tmp_path):
    assert floors.main([str(tmp_path)]) == 0
    pinned = [Requirement(line) for line in (tmp_path / "floors.txt").read_text().splitlines()]
    declared = [Requirement(text) for text in floors.declared_requirements()]
    assert [(p.name, str(p.specifier)) for p in pinned] == \
        [(d.name, f"=={floors.floor_of(str(d))[1]}") for d in declared]
    assert (tmp_path / "build-floors.txt").read_text().startswith("setuptools==")


def test_the_extras_built_from_source_are_left_out_of_the_pins():
    names = [floors.floor_of(text)[0] for text in floors.declared_requirements()]
    assert "llama-cpp-python" not in names and "openai" in names  # llamacpp out, other extras in


def test_a_requirement_without_a_floor_is_refused():
    with pytest.raises(SystemExit, match="'torch' must declare exactly one floor"):
        floors.floor_of("torch")


def test_check_names_every_floor_that_is_not_installed():
    installed = pytest.__version__
    problems = floors.mismatches({"pytest": installed, "PyTest": "7.0", "no-such-dist-slmbench": "1.0"})
    assert problems == [f"PyTest: declared >=7.0, installed {installed}",
                        "no-such-dist-slmbench: declared >=1.0, not installed"]


PROBE = """
import json
import sys
from pathlib import Path


def pytest_sessionfinish(session):
    record = {"plugin": session.config.pluginmanager.has_plugin("slmbench.bench.plugin"),
              "heavy": sorted(name for name in %r if name in sys.modules)}
    Path("modules.json").write_text(json.dumps(record))
"""


@pytest.mark.parametrize("mode", [["--collect-only", "-q"], ["-q"]], ids=["collect-only", "run"])
def test_an_unrelated_project_never_imports_torch_through_the_plugin(pytester, monkeypatch, mode):
    """A project with slmbench installed but no bench test: the plugin loads, torch and friends do not."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's slmbench, whatever is installed
    pytester.makeconftest(PROBE % (HEAVY,))
    pytester.makepyfile(test_trivial="def test_nothing_to_do_with_models():\n    assert 1 + 1 == 2\n")
    result = pytester.run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *mode)
    assert result.ret == 0, result.stdout.str()
    record = json.loads((pytester.path / "modules.json").read_text())
    assert record == {"plugin": True, "heavy": []}, \
        f"imported {record['heavy']}" if record["plugin"] else "the pytest11 entry point is missing: pip install -e ."


def test_the_plugin_registers_once_in_the_checkout(pytestconfig):
    """The root conftest lists the plugin and the editable install's entry point loads it: one copy."""
    manager = pytestconfig.pluginmanager
    plugins = manager.get_plugins()
    modules = [p for p in plugins if getattr(p, "__name__", None) == "slmbench.bench.plugin"]
    sessions = [p for p in plugins if type(p).__name__ == "BenchSession"]
    entry_points = [canonicalize_name(dist.project_name) for plugin, dist in manager.list_plugin_distinfo()
                    if plugin in modules]
    root_conftest = next(p for p in plugins if getattr(p, "__file__", None) == str(ROOT / "conftest.py"))
    assert "slmbench.bench.plugin" in root_conftest.pytest_plugins
    assert (len(modules), len(sessions), entry_points) == (1, 1, ["slmbench"]), \
        f"modules {modules}, sessions {sessions}, registered by entry points of {entry_points}"
