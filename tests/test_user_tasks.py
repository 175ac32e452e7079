"""Tasks from outside slmbench (tasks/registry.py, tasks/validation.py): by file, module or entry point.

The same task module runs through the bench, `slmbench train` and `slmbench evaluate`; every
mistake in it fails with one line naming the module and the field.
"""

import json
import re
import sys
import textwrap
from pathlib import Path

import pytest

from slmbench.cli import main as slmbench_main
from slmbench.errors import TaskError
from slmbench.tasks import TASKS, registry, resolve_task, task_names
from slmbench.tasks.scoring import score_outputs
from slmbench.tasks.validation import check_task

BENCH = Path(__file__).resolve().parents[1] / "bench"

INVOICES = '''
"""invoices: the vendor and total of a one-line invoice, as JSON."""
from dataclasses import replace

from slmbench.tasks import Sample, SampleScore, Task
from slmbench.tasks.metrics import check_json, mean_of

SCHEMA = {"type": "object", "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
          "required": ["vendor", "total"], "additionalProperties": False}


def prompt(sample: Sample) -> str:
    return f"Invoice: {sample.input}\\nReply with JSON: {{\\"vendor\\": ..., \\"total\\": ...}}\\nJSON:"


def judge(output: str, sample: Sample) -> SampleScore:
    value, json_valid, schema_valid, reason = check_json(output, SCHEMA)
    exact = schema_valid and value == sample.target
    stats = {"json_valid": float(json_valid), "schema_valid": float(schema_valid), "exact": float(exact)}
    return SampleScore(sample.id, stats, reason or ("exact" if exact else f"expected {sample.target}"))


TASK = Task(name="invoices", version="1", prompt=prompt, schema=SCHEMA, judge=judge,
            metrics={"json_valid": mean_of("json_valid"), "schema_valid": mean_of("schema_valid"),
                     "exact_match": mean_of("exact")},
            thresholds={"json_valid": 0.9, "exact_match": 0.8}, headline="exact_match", max_new_tokens=24)
'''


def write_rows(folder: Path, counts=(("train", 8), ("val", 2), ("test", 2))) -> None:
    """Invoice samples as train/val/test JSON Lines in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in counts:
        rows = [{"id": f"{split}-{n}", "input": f"Invoice {n} from Acme {n}, total {n}.50 EUR",
                 "target": {"vendor": f"Acme {n}", "total": n + 0.5}} for n in range(count)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def write_task(folder: Path, filename: str = "invoices.py", extra: str = "", data: bool = True) -> Path:
    """The invoices task module (plus `extra` source lines) and, by default, its data folder next to it."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    path.write_text(INVOICES + textwrap.dedent(extra))
    if data:
        write_rows(folder / "invoices")
    return path


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch, tmp_path):
    """Each test starts with no task loaded from outside slmbench, and forgets the modules it imported."""
    monkeypatch.setattr(registry, "_loaded", {})
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if str(getattr(sys.modules[name], "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


# ---- finding a task ------------------------------------------------------------------------------

def test_a_task_file_resolves_with_its_data_next_to_it_then_answers_to_its_name(tmp_path):
    path = write_task(tmp_path / "tasks")
    task = resolve_task(str(path))
    assert task.name == "invoices" and task.data_path("val") == tmp_path / "tasks" / "invoices" / "val.jsonl"
    assert [s.id for s in task.samples("test")] == ["test-0", "test-1"]
    assert resolve_task("invoices") is task and resolve_task(str(path)) is task
    assert "invoices" in task_names(include_loaded=True) and "invoices" not in task_names()


def test_a_dotted_module_resolves_and_module_colon_name_picks_another_attribute(tmp_path, monkeypatch):
    package = tmp_path / "mypkg" / "tasks"
    write_task(package, extra="OTHER = replace(TASK, name='invoices_other', data_dir='shared')\n")
    for folder in (tmp_path / "mypkg", package):
        (folder / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(tmp_path)
    assert resolve_task("mypkg.tasks.invoices").data_path("train") == package / "invoices" / "train.jsonl"
    other = resolve_task("mypkg.tasks.invoices:OTHER")
    assert other.name == "invoices_other" and other.data_path("test") == package / "shared" / "test.jsonl"


def add_distribution(site: Path, entry_points: str) -> None:
    """A minimal installed distribution in `site` whose metadata declares `entry_points`."""
    info = site / "invoice_tasks-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: invoice-tasks\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.mark.parametrize("value", ["invoice_tasks.invoices", "invoice_tasks.invoices:TASK"])
def test_an_entry_point_registers_a_task_by_name(tmp_path, monkeypatch, value):
    write_task(tmp_path / "invoice_tasks")
    (tmp_path / "invoice_tasks" / "__init__.py").write_text("")
    add_distribution(tmp_path, f"[slmbench.tasks]\ninvoices = {value}\n")
    monkeypatch.syspath_prepend(tmp_path)
    assert task_names()[-1] == "invoices"
    task = resolve_task("invoices")
    assert task.data_path("val") == tmp_path / "invoice_tasks" / "invoices" / "val.jsonl" and len(task.samples("train")) == 8


def test_an_entry_point_must_carry_its_task_name(tmp_path, monkeypatch):
    write_task(tmp_path / "invoice_tasks")
    add_distribution(tmp_path, "[slmbench.tasks]\nbills = invoice_tasks.invoices\n")
    monkeypatch.syspath_prepend(tmp_path)
    with pytest.raises(TaskError, match=r"entry point bills = 'invoice_tasks.invoices' \(slmbench.tasks\): names a "
                                        r"task called 'invoices'; the entry point's name must be the task's name"):
        resolve_task("bills")


# ---- checks on a foreign task ----------------------------------------------------------------------

def test_the_builtin_tasks_pass_the_checks_a_foreign_task_gets():
    assert all(check_task(task, name) is task for name, task in TASKS.items())


@pytest.mark.parametrize("extra, message", [
    ("TASK = replace(TASK, schema={'type': 'objekt'})", "schema/type: not a valid JSON Schema: 'objekt' is not valid"),
    ("TASK = replace(TASK, schema=['vendor'])", "schema: must be a JSON Schema (a dict) or None"),
    ("TASK = replace(TASK, metrics={**TASK.metrics, 'exact_match': 0.5})",
     "metrics['exact_match']: must be a function (sums, n) -> value, got float"),
    ("TASK = replace(TASK, metrics={'exact_match': mean_of('exact')}, thresholds={})",
     "metrics: a JSON task must report json_valid and schema_valid (the bench's JSON tests read them); "
     "missing json_valid, schema_valid"),
    ("TASK = replace(TASK, thresholds={'accuracy': 0.5})", "thresholds['accuracy']: not one of its metrics (json_valid"),
    ("TASK = replace(TASK, thresholds={'exact_match': 80})", "thresholds['exact_match']: must be a number in [0, 1]"),
    ("TASK = replace(TASK, thresholds={'exact_match': True})", "thresholds['exact_match']: must be a number in [0, 1]"),
    ("TASK = replace(TASK, prompt='Invoice: {input}')", "prompt: must be a function (sample) -> str, got str"),
    ("TASK = replace(TASK, judge=lambda output: None)", "judge: must accept 2 argument(s) (output, sample) -> SampleScore"),
    ("TASK = replace(TASK, prepare='embed')", "prepare: must be a function (outputs) -> None, got str"),
    ("TASK = replace(TASK, name='my::invoices')", "name: must be letters, digits, '_' or '-'"),
    ("TASK = replace(TASK, version=1)", "version: must be a non-empty string"),
    ("TASK = replace(TASK, max_new_tokens=0)", "max_new_tokens: must be a positive whole number, got 0"),
    ("TASK = replace(TASK, fewshot_k=-1)", "fewshot_k: must be a whole number of worked examples, 0 or more, got -1"),
])
def test_a_bad_field_fails_naming_the_module_and_the_field(tmp_path, extra, message):
    path = write_task(tmp_path, extra=extra + "\n")
    with pytest.raises(TaskError) as caught:
        resolve_task(str(path))
    assert str(path) in str(caught.value) and message in str(caught.value)


@pytest.mark.parametrize("extra, message", [
    ("del TASK", "no TASK in the module; a task module defines TASK = Task(...)"),
    ("TASK = {'name': 'invoices'}", "TASK is a dict, expected slmbench.tasks.Task"),
    ("TASK = replace(TASK, name='iris')", "name: 'iris' is a built-in task; give yours another name"),
    ("raise RuntimeError('no API key')", "importing it failed ({path}:{line}): RuntimeError: no API key"),
    ("def broken(:\n", "{path}:{line}: syntax error"),
])
def test_a_module_that_yields_no_usable_task_says_why(tmp_path, extra, message):
    path = write_task(tmp_path, extra=extra + "\n")
    with pytest.raises(TaskError, match="^" + str(path)) as caught:
        resolve_task(str(path))
    assert message.format(path=path, line=INVOICES.count("\n") + 1) in str(caught.value)


def test_two_different_tasks_cannot_share_a_name(tmp_path):
    first, second = write_task(tmp_path / "a"), write_task(tmp_path / "b")
    resolve_task(str(first))
    with pytest.raises(TaskError, match=f"{second}: name: a task called 'invoices' is already loaded from {first}"):
        resolve_task(str(second))


def test_unknown_names_list_the_known_tasks_and_the_other_forms():
    with pytest.raises(TaskError, match=r"unknown task 'invoice'; choose one of it_entities, recipes, iris, products, "
                                        r"bioqa, or name a task module of your own \(mypkg.tasks.invoices or "
                                        r"./tasks/invoices.py\)"):
        resolve_task("invoice")
    with pytest.raises(TaskError, match="unknown task 'nopkg.invoices': no module named 'nopkg' to import"):
        resolve_task("nopkg.invoices")
    with pytest.raises(TaskError, match="nowhere/invoices.py: no such task file"):
        resolve_task("nowhere/invoices.py")


# ---- the same module through the bench and the command line ----------------------------------------

@pytest.fixture
def bench(pytester, tmp_path, monkeypatch):
    """Run `pytest bench` in a scratch directory; returns (run, outputs dir)."""
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(tmp_path / "adapters"))
    out = tmp_path / "out"

    def run(*args, subprocess=False):
        options = [str(BENCH), "-p", "no:cacheprovider", "--bench-models", "tiny-random-llama", "--bench-limit", "2",
                   "--bench-fewshot", "0", "--bench-classical", "none",  # only the rows these tests are about
                   "--bench-leaderboard", str(out / "lb.md"), "--bench-json", str(out / "lb.json"),
                   "--bench-store", str(out / "results.db"), *args]
        return pytester.runpytest_subprocess(*options) if subprocess else pytester.runpytest(*options)

    return run, out


def test_the_bench_runs_a_task_file_with_thresholds_naming_it(bench, tmp_path):
    run, out = bench
    path = write_task(tmp_path / "project" / "tasks")
    thresholds = tmp_path / "thresholds.toml"
    thresholds.write_text('["tiny-random-*::invoices"]\nexact_match = 0.0\n')
    result = run("--bench-tasks", f"iris,{path}", "--bench-thresholds", str(thresholds), "-k", "invoices")
    result.stdout.fnmatch_lines(["*slmbench leaderboard*", "*## invoices*"])
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] >= 1, result.stdout.str()  # exact_match >= 0.0 holds even for random weights
    rows = json.loads((out / "lb.json").read_text())["rows"]
    assert [(r["case_id"], r["task"], r["n"]) for r in rows] == [("tiny-random-llama::invoices", "invoices", 2)]
    assert rows[0]["provenance"]["task_version"] == "1"


def test_a_broken_task_module_fails_collection_with_one_line(bench, tmp_path):
    run, _ = bench
    path = write_task(tmp_path / "tasks", extra="TASK = replace(TASK, thresholds={'accuracy': 0.5})\n")
    result = run("--bench-tasks", str(path), "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # checked when pytest starts (bench/options.py)
    printed = result.stdout.str() + result.stderr.str()  # (not fnmatch: the message has brackets)
    assert f"slmbench: --bench-tasks: invoices ({path}): thresholds['accuracy']: not one of its metrics" in printed
    assert "Traceback" not in printed


def test_xdist_controller_writes_the_board_for_a_task_file(bench, tmp_path, monkeypatch):
    run, out = bench
    path = write_task(tmp_path / "tasks")
    monkeypatch.setenv("PYTHONPATH", str(BENCH.parent))  # this checkout's slmbench, not an installed one
    result = run("--bench-tasks", f"{path},iris", "-n", "1", "-k", "json_valid", subprocess=True)
    result.stdout.fnmatch_lines(["*slmbench leaderboard*"])
    rows = json.loads((out / "lb.json").read_text())["rows"]
    assert sorted(r["case_id"] for r in rows) == ["tiny-random-llama::invoices", "tiny-random-llama::iris"]


def test_train_then_evaluate_a_dotted_module_from_the_command_line(tmp_path, monkeypatch, capsys):
    package = tmp_path / "mypkg"
    write_task(package)
    (package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(tmp_path)
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    adapters = tmp_path / "adapters"
    assert slmbench_main(["train", "--model", "tiny-random-llama", "--task", "mypkg.invoices", "--preset", "fast",
                          "--max-steps", "2", "--out", str(adapters)]) == 0
    adapter = adapters / "tiny-random-llama" / "invoices" / "fast"
    assert json.loads((adapter / "training_config.json").read_text())["task"] == "invoices"
    output = tmp_path / "results.json"
    assert slmbench_main(["evaluate", "--model", "tiny-random-llama", "--adapter", str(adapter), "--task",
                          "mypkg.invoices", "--split", "test", "--dtype", "float32", "--output", str(output)]) == 0
    assert json.loads(output.read_text())["task"] == "invoices" and "| exact_match " in capsys.readouterr().out


def test_the_command_line_reports_a_bad_task_module_in_one_line(tmp_path, capsys):
    path = write_task(tmp_path, extra="TASK = replace(TASK, version='')\n")
    for command in (["train", "--model", "tiny-random-llama"], ["evaluate", "--model", "tiny-random-llama"]):
        assert slmbench_main([*command, "--task", str(path)]) == 2
        assert capsys.readouterr().err.strip() == (f"slmbench: error: invoices ({path}): version: must be a non-empty "
                                                   "string (bump it when prompt, data or scoring change), got ''")


# ---- the README's examples -------------------------------------------------------------------------

def readme_blocks(section: str) -> dict[str, str]:
    """Language -> code of the fenced blocks in one `## section` of the README."""
    text = (BENCH.parent / "README.md").read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"```(\w+)\n(.*?)```", text, flags=re.S))


def test_the_readme_metric_scores_the_readme_task(tmp_path):
    task_example, metric = readme_blocks("Add a task"), readme_blocks("Add a metric")["python"]
    module = tmp_path / "invoices.py"
    module.write_text(task_example["python"] + "\n" + metric + "\nfrom dataclasses import replace\n"
                      "TASK = replace(TASK, version='2', metrics={**TASK.metrics, 'exact_when_valid': exact_when_valid})\n")
    (tmp_path / "invoices").mkdir()
    for split in ("train", "val", "test"):
        (tmp_path / "invoices" / f"{split}.jsonl").write_text(task_example["jsonl"])
    task = resolve_task(str(module))
    samples = task.samples("test")  # the README's rows match the README's schema
    outputs = [json.dumps(samples[0].target), '{"vendor": "Acme", "total": 1.0}', "no JSON here"]
    values = score_outputs(task, outputs, samples, resamples=0).values
    assert (values["exact_match"], values["exact_when_valid"], values["json_valid"]) == (1 / 3, 0.5, 2 / 3)
