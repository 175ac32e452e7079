"""The slmbench pytest plugin: options, case parametrization, and the leaderboard at session end.

Registered from the root conftest.py and through the ``pytest11`` entry point. It does nothing
unless a collected test asks for a bench fixture (the suite lives in ``bench/test_models.py``).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from slmbench.atomic import write_json_atomic
from slmbench.cache import GenerationCache
from slmbench.defaults import DEFAULT_BATCH_SIZE, DEFAULT_CONCURRENCY, DEFAULT_DTYPE, DTYPE_NAMES
from slmbench.serving import default_base_url
from slmbench.errors import SlmbenchError
from slmbench.prompting import FewShot, shots_option
from slmbench.tasks import resolve_task
from slmbench.tasks.core import JSON_METRICS, Task
from slmbench.tasks.data_sources import parse_data_option, with_data

from slmbench.bench import leaderboard, store
from slmbench.bench.backends import BACKENDS, Backends, BackendUnavailable
from slmbench.bench.backends import provenance as backend_provenance
from slmbench.bench.baseline import baseline_document, load_baseline
from slmbench.bench.board_files import BoardFiles, partial_path
from slmbench.bench.cases import Case, build_cases, default_models, default_tasks, select_tasks
from slmbench.bench.checks import BenchOutcome
from slmbench.bench.options import check_options, keep_benchmark_storage_private, names, positive_int
from slmbench.bench.progress import RunProgress
from slmbench.bench.classical import ClassicalCase, classical_cases, evaluate_classical
from slmbench.bench.speed import CaseSpeed, retime_rounds
from slmbench.bench.thresholds import DEFAULT_FILE, load_thresholds

GATE_TEST = "test_no_regression"
RESULTS_NOT_SAVED = 6  # exit status: the run finished but the store (or the board) could not be written

def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bench", "slmbench model benchmark")
    group.addoption("--bench-models", type=names, default=None, metavar="NAMES",
                    help="comma-separated registry names, globs, HF ids or model directories "
                         "(default: every real registry model; uncached hub models skip with the reason)")
    group.addoption("--bench-tasks", type=names, default=None, metavar="NAMES",
                    help="comma-separated task names, task modules (mypkg.tasks.invoices) or files "
                         "(./tasks/invoices.py) (default: the built-in tasks and those installed packages register)")
    group.addoption("--bench-adapters", type=names, default=["auto"], metavar="DIRS",
                    help="adapter directories, 'auto' (those `slmbench train` wrote under $SLMBENCH_ADAPTERS "
                         "or ./adapters, default) or 'none'")
    group.addoption("--bench-fewshot", type=shots_option, default=None, metavar="K",
                    help="K-shot base rows: K worked examples from the train split before each prompt "
                         "(default: each task's fewshot_k; 0 turns the K-shot rows off)")
    group.addoption("--bench-fewshot-seed", type=int, default=0, metavar="SEED",
                    help="seed that picks each sample's worked examples (default 0)")
    group.addoption("--bench-classical", default="all", choices=["all", "none"],
                    help="classical baseline rows (CRF, nearest neighbour, logistic regression; default all)")
    group.addoption("--bench-data", action="append", default=[], metavar="TASK=PATH",
                    help="hold TASK to your data: a JSON Lines file (or .conll/.iob/.bio for it_entities) used "
                         "as the split benched, or a folder of <split>.jsonl files; repeat for several tasks")
    group.addoption("--bench-split", default="test", choices=["train", "val", "test"], help="split (default test)")
    group.addoption("--bench-limit", type=positive_int, default=None, metavar="N", help="only the first N samples")
    group.addoption("--bench-batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE, metavar="N",
                    help=f"generation batch size (default {DEFAULT_BATCH_SIZE})")
    group.addoption("--bench-dtype", default=DEFAULT_DTYPE, choices=list(DTYPE_NAMES), help="model dtype")
    group.addoption("--bench-thresholds", default=str(DEFAULT_FILE), metavar="PATH",
                    help="per-model threshold overrides (TOML; default bench/thresholds.toml)")
    group.addoption("--bench-leaderboard", default="leaderboard.md", metavar="PATH", help="markdown leaderboard")
    group.addoption("--bench-json", default="leaderboard.json", metavar="PATH", help="leaderboard as JSON")
    group.addoption("--bench-store", default="results.db", metavar="PATH",
                    help="SQLite results store every run is appended to ('none' to skip)")
    group.addoption("--bench-samples", default=None, metavar="DIR",
                    help="per-sample logs go to DIR/<run-id>/<case>.jsonl (default: results/ beside the "
                         "leaderboard; 'none' to skip)")
    group.addoption("--bench-report", default=None, metavar="PATH",
                    help="self-contained HTML report (default: report.html beside the leaderboard; 'none' to skip)")
    group.addoption("--bench-baseline", default=None, metavar="PATH",
                    help="fail cases whose metrics drop significantly against this baseline (paired per-sample Δ, "
                         "one-sided 95%%) or beyond a thresholds-file tolerance")
    group.addoption("--bench-update-baseline", action="store_true",
                    help="write this run's results to --bench-baseline instead of gating on it")
    group.addoption("--bench-backend", default="hf", choices=list(BACKENDS),
                    help="what generates: hf (transformers here, default), vllm (a vLLM server slmbench starts: "
                         "`make engines` installs it) or openai (any OpenAI-compatible server at --bench-base-url)")
    group.addoption("--bench-base-url", default=default_base_url(), metavar="URL",
                    help="the OpenAI-compatible server of --bench-backend openai (default $OPENAI_BASE_URL or "
                         "http://127.0.0.1:8000/v1); models by registry name, adapters as <model>+<task>/<preset>")
    group.addoption("--bench-api-key-env", default="OPENAI_API_KEY", metavar="NAME",
                    help="environment variable holding the server's API key (default OPENAI_API_KEY)")
    group.addoption("--bench-concurrency", type=positive_int, default=DEFAULT_CONCURRENCY, metavar="N",
                    help=f"requests in flight to a server backend (default {DEFAULT_CONCURRENCY})")
    group.addoption("--bench-structured", action="store_true",
                    help="beside each case of a JSON task, run it again with its outputs constrained to the task's "
                         "JSON Schema (structured outputs: llguidance on hf, `pip install 'slmbench[structured]'`; "
                         "the server's own on vllm/openai); the rows end in +structured")
    group.addoption("--bench-vllm-adapters", default="auto", choices=["auto", "lora", "hf"],
                    help="with --bench-backend vllm, what generates adapter cases: lora (the vLLM server, multi-LoRA), "
                         "hf (transformers here, PEFT) or auto (default: lora with a GPU, hf without; on CPU vLLM's "
                         "LoRA took 1.2-1.4x the hf engine's time on adapter cases)")
    group.addoption("--bench-vllm-args", default="", metavar="ARGS",
                    help="more `vllm serve` arguments for --bench-backend vllm, e.g. '--tensor-parallel-size 2'")
    group.addoption("--bench-retime", action="store_true",
                    help="time each case's generation again (uncached, through pytest-benchmark) instead of showing "
                         "the tokens/s cached with its outputs; pytest-benchmark timing options imply it")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "xdist_group(name): keep a model's cases on one xdist worker")
    check_options(config)
    session = BenchSession(config)
    config.pluginmanager.register(session, "slmbench-session")
    config.pluginmanager.register(session.progress, "slmbench-progress")


class BenchSession:
    """Owns one pytest run's bench state: cases, loaded model, evaluations and records."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.option = lambda name: config.getoption(f"bench_{name}")
        self.run_id = getattr(config, "workerinput", {}).get("bench_run_id") or uuid.uuid4().hex
        # decided once by the controller: xdist workers do not see the command line it was given
        self.retime_rounds = getattr(config, "workerinput", {}).get("bench_retime_rounds", retime_rounds(config))
        self._cases: list[Case] | None = None
        self._loaded: tuple[tuple, object] | None = None
        self._outcomes: dict[str, BenchOutcome | str] = {}
        self._speeds: dict[str, CaseSpeed] = {}  # case id -> its tokens/s entry in the generation cache
        self.records: dict[str, dict] = {}
        self.received: list[dict] = []  # records sent back by xdist workers
        self.progress = RunProgress()  # registered beside this session: which collected tests finished
        self.problems: list[str] = []  # results that could not be saved, reported at the end
        self.board_files = BoardFiles(Path(self.option("leaderboard")), Path(self.option("json")))
        self._benchmark_storage = keep_benchmark_storage_private(config)
        self.samples: dict[str, list[dict]] = {}  # case id -> per-sample log rows (workers' included)
        self.backends = Backends(self.option, self.cases)

    # ---- collection ------------------------------------------------------------------------
    def cases(self) -> list[Case]:
        if self._cases is None:
            try:
                cases = build_cases(self.option("models") or default_models(), self.option("tasks") or default_tasks(),
                                    self.option("adapters"), fewshot=self.option("fewshot"),
                                    structured=self.option("structured"))
                self._cases = cases + classical_cases(list(dict.fromkeys(c.task for c in cases)),
                                                      self.option("classical"))
                self.thresholds = load_thresholds(Path(self.option("thresholds")))  # may name the tasks just loaded
                self._data = parse_data_option(self.option("data"), list(dict.fromkeys(c.task for c in self._cases)))
                for name, path in self._data.items():
                    self.task(name).data_path(self.option("split"))  # a missing file fails here, once
            except SlmbenchError as error:
                problem = f"slmbench: {error}"
            else:
                return self._cases
            pytest.fail(problem, pytrace=False)
        return self._cases

    def _param(self, case: Case, *extra, suffix: str = ""):
        marks = [pytest.mark.xdist_group(case.group)]
        reason = case.unavailable()
        if reason:
            marks.append(pytest.mark.skip(reason=reason))
        return pytest.param(case, *extra, marks=marks, id=case.id + suffix)

    @pytest.hookimpl
    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "bench_case" not in metafunc.fixturenames:
            return
        if "bench_metric" in metafunc.fixturenames:
            params = [self._param(case, metric, suffix=f"-{metric}") for case in self.cases()
                      for metric in self.thresholds.minimums(case.id, case.task) if metric not in JSON_METRICS]
            metafunc.parametrize("bench_case,bench_metric", params, scope="function")
        else:
            metafunc.parametrize("bench_case", [self._param(case) for case in self.cases()], scope="function")

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        """Run a case's tests together (one model load, one generation); drop the gate without a baseline."""
        if any(_case(item) for item in items):
            check_options(config, collected=True)  # a bench run without --bench-* options: check before generating
        if self.option("baseline") is None:
            gated = [item for item in items if getattr(item, "originalname", "") == GATE_TEST and _case(item)]
            if gated:
                config.hook.pytest_deselected(items=gated)
                items[:] = [item for item in items if item not in gated]
        order = {case.id: i for i, case in enumerate(self._cases or [])}
        items.sort(key=lambda item: order.get(_case(item).id, -1) if _case(item) else -1)

    # ---- running ----------------------------------------------------------------------------
    def outcome(self, case: Case) -> BenchOutcome:
        """The case's evaluation, computed once per session (from the generation cache when possible)."""
        if case.id not in self._outcomes:
            try:
                self._outcomes[case.id] = self._evaluate(case)
            except BackendUnavailable as error:
                self._outcomes[case.id] = ("skip", str(error))
            except SlmbenchError as error:
                self._outcomes[case.id] = f"{case.id}: {error}"
        found = self._outcomes[case.id]
        if isinstance(found, tuple):
            pytest.skip(found[1])
        if isinstance(found, str):
            pytest.fail(found, pytrace=False)
        return found

    def task(self, name: str) -> Task:
        """The task, reading the split benched (a file) or every split (a folder) from --bench-data."""
        return with_data(resolve_task(name), self._data.get(name), self.option("split"))

    def _evaluate(self, case: Case) -> BenchOutcome:
        # torch and transformers load here, not at plugin import: every pytest session of a project
        # that installed slmbench imports this plugin, most never run a bench case.
        from slmbench.bench import samples_log
        from slmbench.bench.records import classical_record, make_record
        from slmbench.evaluation import evaluate

        task = self.task(case.task)
        split, limit = self.option("split"), self.option("limit")
        samples = task.samples(split)[:limit]
        if not samples:
            raise SlmbenchError(f"{task.data_path(split)}: the {split} split of {task.name} has no samples")
        if isinstance(case, ClassicalCase):
            evaluation = evaluate_classical(case, samples, task.samples("train"))
            record = classical_record(case, task, split, limit, evaluation)
        else:
            loaded, cache = self._load(case), GenerationCache()
            server = self.backends.server_for(case, loaded)
            evaluation = evaluate(loaded, task, samples, batch_size=self.option("batch_size"), cache=cache, server=server,
                                  fewshot=FewShot(case.shots, self.option("fewshot_seed")), structured=case.structured)
            record = make_record(case, task, split, limit, loaded, evaluation, self.option("batch_size"))
            record["provenance"].update(backend_provenance(server))
            speed = CaseSpeed.of(loaded, [c.prompt for c in evaluation.run.completions], evaluation.decoding,
                                 self.option("batch_size"), cache, server, task.schema if task.is_json else None)
            record["speed"].update(speed.from_run(evaluation.run))
            self._speeds[case.id] = speed
        self.records[case.id] = record
        self._log_samples(case.id, samples_log.sample_rows(case.id, task, evaluation))
        return BenchOutcome(case, record, evaluation, self.thresholds.minimums(case.id, case.task),
                            {m: self.thresholds.tolerance(case.id, m) for m in task.metrics},
                            self._baseline(), str(self.option("baseline")))

    def _output_path(self, name: str, default: str) -> Path | None:
        """--bench-<name> as a path, `default` beside the leaderboard when unset, None for 'none'."""
        value = self.option(name)
        if value is None:
            return Path(self.option("leaderboard")).parent / default
        return None if value.lower() == "none" else Path(value)

    def _log_samples(self, case_id: str, rows: list[dict]) -> None:
        """Keep a case's per-sample rows and write its log at once (a killed run keeps finished cases)."""
        self.samples[case_id] = rows
        folder = self._output_path("samples", "results")
        if folder is not None:
            from slmbench.bench import samples_log  # imports torch

            samples_log.write_log(folder / self.run_id, case_id, rows)

    def _run_reference(self) -> dict:
        """The run id and its per-sample log folder (relative to the JSON), for `slmbench compare`."""
        folder = self._output_path("samples", "results")
        json_dir = Path(self.option("json")).resolve().parent
        return {"run_id": self.run_id,
                "samples_dir": os.path.relpath((folder / self.run_id).resolve(), json_dir) if folder else None}

    def _baseline(self) -> dict[str, dict] | None:
        """The baseline rows (read once), or None without --bench-baseline or while updating it."""
        path = self.option("baseline")
        if not path or self.option("update_baseline"):
            return None
        if not hasattr(self, "_baseline_rows"):
            self._baseline_rows = load_baseline(Path(path))
        return self._baseline_rows

    def _load(self, case: Case):
        from slmbench.loading import load_model

        key = (case.model, str(case.adapter), self.option("dtype"))
        if self._loaded is None or self._loaded[0] != key:
            self._loaded = None  # release the previous model before loading the next
            # weights load when a prompt misses the generation cache: a warm case never loads them
            self._loaded = (key, load_model(case.model, dtype=self.option("dtype"), adapter=case.adapter,
                                            defer_weights=True))
        return self._loaded[1]

    def measure_speed(self, case: Case, benchmark) -> float:
        """The case's tokens/s: from its generation (or the cache), or timed again when re-timing is asked for."""
        if isinstance(case, ClassicalCase):
            pytest.skip(f"{case.id}: a classical baseline has no language model to time")
        self.outcome(case)
        speed, record = self._speeds[case.id], self.records[case.id]["speed"]
        if self.retime_rounds:
            record.update(speed.retime(self._load(case), benchmark, self.retime_rounds))
        elif record["tokens_per_sec"] is None:
            pytest.skip(speed.not_timed_reason(case.id, generated_nothing=record["cache_hits"] == 0))
        return record["tokens_per_sec"]

    # ---- session end ------------------------------------------------------------------------
    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node) -> None:
        node.workerinput["bench_run_id"] = self.run_id
        node.workerinput["bench_retime_rounds"] = self.retime_rounds

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Board first (so a store failure cannot lose it), then the store; problems set their own exit status."""
        self.backends.close()
        if hasattr(self.config, "workeroutput"):  # an xdist worker: the controller writes the board
            self.config.workeroutput["bench_records"] = json.dumps(list(self.records.values()))
            self.config.workeroutput["bench_samples"] = json.dumps(self.samples, default=str)
            self._store()
            self.config.workeroutput["bench_problems"] = json.dumps(self.problems)
            return
        records = list(self.records.values()) + self.received
        if self.received and self.option("tasks"):
            select_tasks(self.option("tasks"))  # the xdist controller collected nothing: load user tasks for the board
        self.board = self._board(records, session, exitstatus) if records else None
        if self.board:
            self._write(self.board, records)
            self._write_report(records)
        self._store()
        if self.problems and session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
            session.exitstatus = RESULTS_NOT_SAVED

    def _board(self, records: list[dict], session: pytest.Session, exitstatus: int) -> dict:
        board = {**leaderboard.to_json(records), **self._run_reference()}
        cases_ran = [row["case_id"] for row in board["rows"]]
        return {**board, **self.progress.partial_marks(session, exitstatus, cases_ran, str(self.board_files.markdown))}

    def _write_report(self, records: list[dict]) -> None:
        """report.html (report.partial.html for a partial run, like the board); a failure is a problem, not a crash."""
        path = self._output_path("report", "report.html")
        if path is None:
            return
        self.report_path = partial_path(path) if self.board.get("partial") else path
        try:
            from slmbench.bench import html_report  # matplotlib: imported when a report is written, not per session

            html_report.write_report(self.report_path, records, self.samples, self.run_id)
        except OSError as error:
            self.problems.append(f"the report was not written: {error}")
            self.report_path = None

    def _write(self, board: dict, records: list[dict]) -> None:
        try:
            self.written = self.board_files.write(leaderboard.render_markdown(board), board, self.run_id)
        except OSError as error:
            self.problems.append(f"the leaderboard was not written: {error}")
        if not self.option("update_baseline"):
            return
        if board.get("partial"):
            self.problems.append(f"baseline not updated: this run is partial; {self.option('baseline')} is unchanged")
            return
        try:
            write_json_atomic(Path(self.option("baseline")), baseline_document(records))
        except OSError as error:
            self.problems.append(f"baseline not updated: {error}")

    def _store(self) -> None:
        if not self.records or self.option("store").lower() == "none":
            return
        path = Path(self.option("store"))
        for record in self.records.values():
            try:
                store.append_record(path, self.run_id, _with_speed_rows(record), self.samples.get(record["case_id"], []))
            except store.StoreError as error:
                self.problems.append(f"the results store was not updated ({error}); this run's rows are not "
                                     f"stored in it, the leaderboard JSON has them. Fix the store and rerun: "
                                     f"outputs come from the generation cache")
                return

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error) -> None:
        output = getattr(node, "workeroutput", {})
        self.received += json.loads(output.get("bench_records", "[]"))
        self.problems += json.loads(output.get("bench_problems", "[]"))
        self.samples.update(json.loads(output.get("bench_samples", "{}")))

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._benchmark_storage is not None:
            self._benchmark_storage.cleanup()

    def pytest_terminal_summary(self, terminalreporter) -> None:
        board = getattr(self, "board", None)
        if board is None:
            if self._outcomes or terminalreporter.stats.get("skipped"):
                terminalreporter.write_sep("-", "slmbench: no case ran; leaderboard not written")
        else:
            title = "slmbench leaderboard" + (" (PARTIAL: the run stopped early)" if board.get("partial") else "")
            terminalreporter.write_sep("=", title)
            terminalreporter.write_line(leaderboard.render_markdown(board))
            written = getattr(self, "written", None)
            if written:
                paths = [*written.paths] + ([self.option("baseline") + " (baseline updated)"]
                                            if self.option("update_baseline") and not board.get("partial") else [])
                terminalreporter.write_line(f"written to: {', '.join(os.path.abspath(p) for p in paths)}")
                for note in written.notes:
                    terminalreporter.write_line(f"slmbench: {note}")
            if getattr(self, "report_path", None):
                terminalreporter.write_line(f"report: {os.path.abspath(self.report_path)}")
        if self.problems:
            terminalreporter.write_sep("!", f"slmbench: results not saved (exit status {RESULTS_NOT_SAVED})", red=True)
            for problem in self.problems:
                terminalreporter.write_line(f"slmbench: {problem}", red=True)


def _case(item: pytest.Item) -> Case | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("bench_case") if callspec else None


def _with_speed_rows(record: dict) -> dict:
    speed = record["speed"]
    extra = {"tokens_per_sec": speed["tokens_per_sec"], "eval_seconds": speed["eval_seconds"]}
    return {**record, "metrics": {**record["metrics"], **{k: {"value": v} for k, v in extra.items() if v is not None}}}


@pytest.fixture
def bench_session(request: pytest.FixtureRequest) -> BenchSession:
    """The run's BenchSession (cases, evaluations, records)."""
    return request.config.pluginmanager.get_plugin("slmbench-session")


@pytest.fixture
def bench_outcome(bench_session: BenchSession, bench_case: Case) -> BenchOutcome:
    """The case's evaluation and the thresholds it is held to (generated once per session)."""
    return bench_session.outcome(bench_case)
