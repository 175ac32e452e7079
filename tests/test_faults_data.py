"""Fault injection on the data side (issue 16): bad data files, hostile model output, over-long inputs.

Every probe asserts the message names the file and line (and field), that nothing is silently
dropped, and, for the command line, the exit status and that no traceback is printed.
"""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from slmbench.errors import DatasetError, TrainingConfigError
from slmbench.evaluation import evaluate
from slmbench.generation import PROMPT_TOO_LONG, DecodingConfig, context_window, generate
from slmbench.loading import load_model
from slmbench.tasks import TASKS
from slmbench.tasks import core as task_core
from slmbench.tasks.core import load_samples

REPO = Path(__file__).resolve().parents[1]
GOOD_LINE = b'{"id": "a", "input": "some text", "target": "a reference"}\n'
IRIS_INPUT = {"sepal_length": "low", "sepal_width": "high", "petal_length": "low", "petal_width": "low"}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _iris_line(sample_id: str, features) -> str:
    return json.dumps({"id": sample_id, "input": features, "target": {"species": "setosa"}}) + "\n"


# --- data files -----------------------------------------------------------------------------

def test_non_utf8_bytes_name_the_file_and_line(tmp_path):
    lines = GOOD_LINE + b"\n" + b'{"id": "c", "input": "caf\xe9", "target": "t"}\n'  # a blank line 2 still counts
    path = _write(tmp_path / "test.jsonl", lines)
    with pytest.raises(DatasetError, match=rf"^{path}:3: line is not valid UTF-8: byte 0xe9 at column 26"):
        load_samples(path, None)


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\u0085"])
def test_unicode_line_separators_inside_strings_are_kept(tmp_path, separator):
    """JSON Lines ends a record at "\\n" only; Python's splitlines() also splits at these."""
    text = f"first{separator}second"
    line = json.dumps({"id": "b", "input": text, "target": "t"}, ensure_ascii=False)
    path = _write(tmp_path / "test.jsonl", GOOD_LINE + line.encode() + b"\r\n" + GOOD_LINE.replace(b'"a"', b'"c"'))
    samples = load_samples(path, None)
    assert [s.id for s in samples] == ["a", "b", "c"] and samples[1].input == text


@pytest.mark.parametrize("depth", [101, 990, 100_000])
def test_deep_nesting_in_a_data_line_is_a_data_error(tmp_path, depth):
    nested = b"[" * depth + b"]" * depth
    path = _write(tmp_path / "test.jsonl", GOOD_LINE + b'{"id": "b", "input": ' + nested + b', "target": "t"}\n')
    with pytest.raises(DatasetError, match=rf"^{path}:2: line is nested more than 100 levels deep"):
        load_samples(path, None)


@pytest.mark.parametrize(("features", "message"), [
    ("long petals", r"field 'input': 'long petals' is not of type 'object'"),
    ({k: v for k, v in IRIS_INPUT.items() if k != "petal_width"}, r"field 'input/petal_width': missing"),
    ({**IRIS_INPUT, "petal_width": "huge"}, r"field 'input/petal_width': 'huge' is not one of \['low', 'medium', 'high'\]"),
    ({**IRIS_INPUT, "colour": "blue"}, r"field 'input': Additional properties are not allowed \('colour' was unexpected\)"),
])
def test_iris_inputs_are_checked_at_load(tmp_path, monkeypatch, features, message):
    (tmp_path / "iris").mkdir()
    path = tmp_path / "iris" / "test.jsonl"
    path.write_text(_iris_line("ok", IRIS_INPUT) + _iris_line("bad", features))
    monkeypatch.setattr(task_core, "FIXTURES", tmp_path)
    with pytest.raises(DatasetError, match=rf"^{path}:2: {message}"):
        TASKS["iris"].samples("test")


@pytest.mark.parametrize("value", [["a list"], 42, {"text": "an object"}])
def test_text_tasks_refuse_inputs_that_are_not_text(tmp_path, value):
    line = json.dumps({"id": "b", "input": value, "target": "t"}).encode() + b"\n"
    path = _write(tmp_path / "test.jsonl", GOOD_LINE + line)
    with pytest.raises(DatasetError, match=rf"^{path}:2: field 'input': .* is not of type 'string'"):
        load_samples(path, None)


def test_every_fixture_input_passes_its_task_input_check():
    for task in TASKS.values():
        for split in task_core.SPLITS:
            assert task.samples(split), f"{task.name}/{split} is empty"


# --- model output ---------------------------------------------------------------------------

def _outputs_nested(depth: int) -> list[str]:
    return ["[" * depth + "]" * depth, '{"a": ' * depth + "1" + "}" * depth,
            '{"people": ' + "[" * depth + "]" * depth + ', "dates": [], "places": []}',
            '{"species": ' + "[" * depth + "]" * depth + "}"]


@pytest.mark.parametrize("name", ["it_entities", "recipes", "iris"])
def test_deeply_nested_output_is_a_scored_failure(name):
    """Depths around the recursion limit used to parse, then overflow inside jsonschema."""
    task = TASKS[name]
    sample = task.samples("test")[0]
    for depth in [101, *range(900, 1001), 100_000]:
        for output in _outputs_nested(depth):
            score = task.judge(output, sample)
            assert score.stats["json_valid"] == 0.0, (depth, score.explanation)
            assert "nested more than 100 levels deep" in score.explanation, (depth, score.explanation)


# --- over-long inputs -----------------------------------------------------------------------

def test_context_window_is_the_models_real_limit():
    loaded = load_model("tiny-random-llama", dtype="float32")
    assert loaded.tokenizer.model_max_length > 10**12  # the tokenizer's "unset" sentinel is not a limit
    assert context_window(loaded) == 1024


def test_an_over_long_prompt_is_never_generated_and_the_rest_of_the_batch_runs(cache):
    loaded = load_model("tiny-random-llama", dtype="float32")
    prompts = ["short one", "x" * 1_000_000, "another short one"]
    run = generate(loaded, prompts, DecodingConfig(max_new_tokens=8), batch_size=3, cache=cache, progress=False)
    assert [c.finish_reason == PROMPT_TOO_LONG for c in run.completions] == [False, True, False]
    assert run.completions[1].text == "" and run.completions[1].prompt_tokens == 1_000_000
    assert run.completions[0].completion_tokens > 0 and run.completions[2].completion_tokens > 0
    assert len(list(cache.root.rglob("*.json"))) == 2  # the refused prompt is not cached


def test_a_prompt_that_leaves_no_room_for_max_new_tokens_is_refused():
    loaded = load_model("tiny-random-llama", dtype="float32")
    prompt = "y" * 1000  # 1000 byte tokens: fits 1024 alone, not with 32 new tokens
    run = generate(loaded, [prompt], DecodingConfig(max_new_tokens=32), progress=False)
    assert run.completions[0].finish_reason == PROMPT_TOO_LONG


def test_an_over_long_sample_is_scored_as_a_failure_with_its_reason(tmp_path, monkeypatch):
    loaded = load_model("tiny-random-llama", dtype="float32")
    task = replace(TASKS["it_entities"], max_new_tokens=8)  # short outputs: this test is about the input
    samples = task.samples("test")[:3]
    samples[1] = type(samples[1])(samples[1].id, "Roma " * 400, samples[1].target)
    evaluation = evaluate(loaded, task, samples, batch_size=3, resamples=0)
    assert evaluation.result.n == 3  # nothing dropped
    scores = evaluation.result.scores
    assert scores[1].explanation.startswith("not generated: prompt is 2") and "context 1024" in scores[1].explanation
    assert scores[1].stats["json_valid"] == 0.0
    assert [c.finish_reason == PROMPT_TOO_LONG for c in evaluation.run.completions] == [False, True, False]


# --- the command line -----------------------------------------------------------------------

def _slmbench(capsys, *args: str) -> tuple[int, str, str]:
    """Run the `slmbench` command in-process: an exception it lets escape fails the test with its traceback."""
    from slmbench.cli import main

    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_infer_refuses_a_document_longer_than_the_context(tmp_path, capsys):
    document = tmp_path / "long.txt"
    document.write_text("Il Prof. Marco Rossi parla a Milano. " * 6000)  # ~200 kB
    code, out, err = _slmbench(capsys, "infer", "--model", "tiny-random-llama", "--task", "it_entities",
                               "--file", str(document))
    assert (code, out) == (2, "")
    assert re.fullmatch(rf"slmbench: error: {document}: not generated: prompt is 222\d\d\d tokens, context 1024; "
                        r"shorten the input\n", err), err


def test_infer_checks_a_structured_input_against_the_task(capsys):
    features = json.dumps({**IRIS_INPUT, "sepal_length": 5.1})
    code, out, err = _slmbench(capsys, "infer", "--model", "tiny-random-llama", "--task", "iris", "--document", features)
    assert (code, out) == (2, "")
    assert err == "slmbench: error: input 1: field 'input/sepal_length': 5.1 is not one of ['low', 'medium', 'high']\n"


def test_training_on_an_empty_train_split_names_the_file(tmp_path, monkeypatch):
    from slmbench.training.cli import main as training_main

    (tmp_path / "iris").mkdir()
    (tmp_path / "iris" / "train.jsonl").write_text("\n")
    (tmp_path / "iris" / "val.jsonl").write_text((REPO / "fixtures" / "iris" / "val.jsonl").read_text())
    monkeypatch.setattr(task_core, "FIXTURES", tmp_path)
    with pytest.raises(TrainingConfigError, match=rf"^{tmp_path / 'iris' / 'train.jsonl'}: the train split has no samples"):
        from slmbench.training.data import build_examples

        build_examples(load_model("tiny-random-llama", dtype="float32"), TASKS["iris"], "train", 256)
    assert training_main(["--model", "tiny-random-llama", "--task", "iris", "--preset", "fast", "--max-steps", "1",
                          "--out", str(tmp_path / "adapters")]) == 2
    assert not (tmp_path / "adapters" / "tiny-random-llama" / "iris" / "fast").exists()


def test_evaluate_on_a_non_utf8_split_is_a_clear_error(tmp_path, monkeypatch, capsys):
    (tmp_path / "iris").mkdir()
    good = (REPO / "fixtures" / "iris" / "val.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "iris" / "val.jsonl").write_bytes(b"".join(good[:4]) + good[4].replace(b"setosa", b"set\xf6sa"))
    monkeypatch.setattr(task_core, "FIXTURES", tmp_path)
    code, out, err = _slmbench(capsys, "evaluate", "--model", "tiny-random-llama", "--task", "iris")
    assert (code, out) == (2, "")
    assert err.startswith(f"slmbench: error: {tmp_path / 'iris' / 'val.jsonl'}:5: line is not valid UTF-8: byte 0xf6"), err


# --- task definitions -----------------------------------------------------------------------

def test_every_task_names_its_headline_metric_and_the_board_reads_it():
    from slmbench.bench.leaderboard import headline_metric

    headlines = {name: task.headline for name, task in TASKS.items()}
    assert headlines == {"it_entities": "entity_f1", "recipes": "l3_semantic", "iris": "accuracy",
                         "products": "rougeL", "bioqa": "rougeL"}
    assert all(headline_metric(name) == headline for name, headline in headlines.items())


@pytest.mark.parametrize(("change", "message"), [
    ({"headline": "acuracy"}, r"headline: 'acuracy' is not one of its metrics \(json_valid, schema_valid, "),
    ({"input_schema": {"type": "objekt"}}, r"input_schema/type: not a valid JSON Schema"),
    ({"input_schema": None}, r"input_schema: must be a JSON Schema of every sample's input, got NoneType"),
])
def test_a_headline_or_input_schema_that_cannot_work_is_refused(change, message):
    from slmbench.errors import TaskError
    from slmbench.tasks.validation import check_task

    with pytest.raises(TaskError, match=rf"^iris \(a test\): {message}"):
        check_task(replace(TASKS["iris"], **change), "a test")


def test_a_metric_reading_a_misspelt_stat_is_an_error():
    from slmbench.errors import TaskError
    from slmbench.tasks.metrics import mean_of
    from slmbench.tasks.scoring import score_outputs

    task = TASKS["iris"]
    misspelt = replace(task, metrics={**task.metrics, "accuracy": mean_of("corect")})
    samples = task.samples("test")[:2]
    with pytest.raises(TaskError, match=r"^task iris: metric 'accuracy' reads stat 'corect', which its "
                                                  r"judge does not report \(it reports cm_setosa_invalid, "):
        score_outputs(misspelt, ['{"species": "setosa"}'] * 2, samples, resamples=0)


def test_a_judge_that_forgets_a_stat_on_some_samples_is_an_error():
    from slmbench.errors import TaskError
    from slmbench.tasks.core import SampleScore
    from slmbench.tasks.scoring import score_outputs

    task = TASKS["iris"]

    def forgetful(output, sample):
        score = task.judge(output, sample)
        stats = {k: v for k, v in score.stats.items() if not (k == "correct" and sample.id.endswith("2"))}
        return SampleScore(score.sample_id, stats, score.explanation, score.details)

    samples = task.samples("test")[:2]
    with pytest.raises(TaskError, match=rf"^task iris: sample {samples[1].id}: the judge reported no "
                                                  r"'correct', which other samples have"):
        score_outputs(replace(task, judge=forgetful), ['{"species": "setosa"}'] * 2, samples, resamples=0)
