"""CoNLL/IOB conversion (tasks/conll.py) and any data for any task (tasks/data_sources.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slmbench.cli import main as slmbench_main
from slmbench.errors import DatasetError, TrainingConfigError
from slmbench.tasks import TASKS
from slmbench.tasks.conll import detokenise, read_conll
from slmbench.tasks.data_sources import data_set_label, parse_data_option, with_data
from slmbench.tasks.scoring import score_outputs
from slmbench.training.config import make_config

ENTITIES = TASKS["it_entities"]
BENCH = Path(__file__).resolve().parents[1] / "bench"

NEWS = """-DOCSTART- -X- O O

Il O
presidente O
dell' O
Italia B-LOC
, O
Sergio B-PER
Mattarella I-PER
, O
ha O
detto O
: O
" O
Roma B-LOC
è O
bella O
" O
. O

Mario B-PER
Rossi I-PER
Luigi B-PER
Bianchi I-PER
e O
la O
Juventus B-ORG
a O
Torino B-LOC
( O
TO O
) O
. O
"""

IOB1 = """Anna I-PER
Neri I-PER
Carlo B-PER
Verdi I-PER
vive O
a O
l' O
Aquila I-LOC
dal O
2001 I-DATE
"""


def write(tmp_path: Path, text: str, name: str = "news.conll") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_elisions_and_punctuation_are_detokenised_and_entities_occur_verbatim(tmp_path):
    first, second = read_conll(write(tmp_path, NEWS))
    assert first.input == 'Il presidente dell\'Italia, Sergio Mattarella, ha detto: "Roma è bella".'
    assert dict(first.target) == {"people": ["Sergio Mattarella"], "dates": [], "places": ["Italia", "Roma"]}
    assert second.input == "Mario Rossi Luigi Bianchi e la Juventus a Torino (TO)."
    for sample in (first, second):
        assert all(entity in sample.input for kind in sample.target for entity in sample.target[kind])


def test_adjacent_entities_of_a_type_stay_separate_and_other_types_are_dropped(tmp_path):
    _, second = read_conll(write(tmp_path, NEWS))
    assert dict(second.target) == {"people": ["Mario Rossi", "Luigi Bianchi"], "dates": [], "places": ["Torino"]}


def test_iob1_tags_open_entities_with_i_and_split_them_with_b(tmp_path):
    (sample,) = read_conll(write(tmp_path, IOB1, "old.iob"))
    assert (sample.input, dict(sample.target), sample.meta["annotated"]) == (
        "Anna Neri Carlo Verdi vive a l'Aquila dal 2001",
        {"people": ["Anna Neri", "Carlo Verdi"], "dates": ["2001"], "places": ["Aquila"]},
        ["people", "dates", "places"])


def test_a_set_without_date_tags_says_so_and_is_scored_on_the_types_it_has(tmp_path):
    samples = read_conll(write(tmp_path, NEWS))
    assert samples[0].meta["annotated"] == ["people", "places"]
    guessed_date = json.dumps({"people": ["Sergio Mattarella"], "dates": ["ieri"], "places": ["Italia", "Roma"]})
    perfect = json.dumps({"people": ["Mario Rossi", "Luigi Bianchi"], "dates": [], "places": ["Torino"]})
    result = score_outputs(ENTITIES, [guessed_date, perfect], samples, resamples=0)
    assert (result.values["entity_f1"], result.values["entity_macro_f1"], result.values["people_f1"]) == (1.0, 1.0, 1.0)
    assert not {"dates_f1", "dates_precision", "dates_recall"} & set(result.values), result.values


def test_the_detokeniser_keeps_an_apocope_spaced_and_glues_a_split_apostrophe():
    assert detokenise(["un", "po'", "di", "sale", "all", "'", "Aquila"])[0] == "un po' di sale all'Aquila"


@pytest.mark.parametrize("text, message", [
    ("Roma\n", "news.conll:1: field 'tag': missing"),
    ("Roma X-LOC\n", "news.conll:1: field 'tag': 'X-LOC' is not O or B-/I-/E-/S-<TYPE>"),
    ("Juventus B-ORG\n", "no PER, LOC/GPE or DATE tag anywhere"),
])
def test_bad_conll_lines_name_file_line_and_field(tmp_path, text, message):
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_conll(write(tmp_path, text))


def test_convert_conll_command_writes_samples_the_task_loads(tmp_path, capsys):
    out = tmp_path / "news.jsonl"
    assert slmbench_main(["convert-conll", str(write(tmp_path, NEWS)), str(out)]) == 0
    samples = with_data(ENTITIES, out).samples("test")
    assert [s.id for s in samples] == ["news-0001", "news-0002"] and samples[0].meta["annotated"] == ["people", "places"]


def test_a_folder_of_split_files_and_its_errors(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "val.jsonl").write_text('{"id": "a", "input": "x", "target": {"people": [], "dates": []}}\n')
    task = with_data(ENTITIES, tmp_path / "mine")
    with pytest.raises(DatasetError, match=r"mine/val.jsonl:1: field 'target/places': missing"):
        task.samples("val")
    with pytest.raises(DatasetError, match=r"mine: no test file \(looked for test.jsonl, test.conll"):
        task.samples("test")
    with pytest.raises(DatasetError, match="CoNLL/IOB files hold entity tags: only it_entities"):
        with_data(TASKS["iris"], write(tmp_path, NEWS)).samples("test")


def test_a_file_for_the_split_benched_leaves_the_other_splits_to_the_task(tmp_path):
    """Few-shot examples and classical fits read train: never the benched file itself."""
    news = write(tmp_path, NEWS)
    task = with_data(ENTITIES, news, "test")
    assert task.data_path("test") == news and task.data_path("train") == ENTITIES.data_path("train")
    assert [s.id for s in task.samples("train")] == [s.id for s in ENTITIES.samples("train")]
    assert with_data(ENTITIES, news).data_path("train") == news  # no split named: the file is every split


@pytest.mark.parametrize("value, message", [
    ("it_entities", "expected TASK=PATH"),
    ("nope=x.jsonl", "unknown task 'nope'"),
])
def test_bad_data_options_name_the_option(value, message):
    with pytest.raises(DatasetError, match=message):
        parse_data_option([value], list(TASKS))


def test_training_on_a_single_file_asks_for_a_folder(tmp_path):
    with pytest.raises(TrainingConfigError, match="training needs a folder with train and val files"):
        make_config("tiny-random-llama", "it_entities", "fast", data=str(write(tmp_path, NEWS)))


def test_bench_data_end_to_end_on_a_conll_file(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(tmp_path / "adapters"))
    conll, board = write(tmp_path, NEWS), tmp_path / "lb.json"
    result = pytester.runpytest(str(BENCH), "-p", "no:cacheprovider", "-k", "test_metric",
                                "--bench-models", "tiny-random-llama", "--bench-tasks", "it_entities",
                                "--bench-data", f"it_entities={conll}", "--bench-leaderboard", str(tmp_path / "lb.md"),
                                "--bench-json", str(board), "--bench-store", "none",
                                "--bench-fewshot", "0", "--bench-classical", "none")
    (row,) = json.loads(board.read_text())["rows"]
    assert (row["n"], row["provenance"]["data_set"], row["provenance"]["annotated_types"]) == (
        2, data_set_label(conll), ["people", "places"]), result.stdout.str()
    assert "dates_f1" not in row["metrics"] and "entity_f1" in row["metrics"]
    assert f"test: {data_set_label(conll)} (people, places annotated)" in (tmp_path / "lb.md").read_text()
