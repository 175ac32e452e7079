"""Loaders and converters on small files written here, and data-file validation errors."""

import csv
import json

import pytest

from slmbench.errors import DatasetError
from slmbench.tasks import TASKS
from slmbench.tasks.bioqa import from_bioasq, from_pubmedqa
from slmbench.tasks.core import load_samples
from slmbench.tasks.products import from_amazon_titles
from slmbench.tasks.recipes import SCHEMA as RECIPE_SCHEMA
from slmbench.tasks.recipes import from_recipenlg_csv


def write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "title", "ingredients", "directions", "link", "source", "NER"])
        writer.writerows(rows)
    return path


def test_recipenlg_rows_become_narrated_samples(tmp_path):
    path = write_csv(tmp_path / "r.csv", [
        [0, "No-Bake Nut Cookies", json.dumps(["1 c. firmly packed brown sugar", "1/2 c. evaporated milk"]),
         json.dumps(["In a heavy saucepan, mix brown sugar and milk.", "Stir over medium heat until bubbly."]),
         "x", "Gathered", json.dumps(["brown sugar", "milk"])],
    ])
    [sample] = from_recipenlg_csv(path)
    assert sample.target["title"] == "No-Bake Nut Cookies" and sample.id == "recipenlg-2"
    assert all(item in sample.input for item in sample.target["ingredients"])
    assert "Ingredients:" not in sample.input and "No-Bake Nut Cookies" in sample.input
    assert from_recipenlg_csv(path)[0].input == sample.input  # deterministic
    import jsonschema

    jsonschema.validate(sample.target, RECIPE_SCHEMA)
    assert TASKS["recipes"].judge(TASKS["recipes"].completion(sample), sample).stats["l3_semantic"] == 1


def test_recipenlg_bad_list_names_line_and_field(tmp_path):
    path = write_csv(tmp_path / "r.csv", [
        [0, "Fine", json.dumps(["a"]), json.dumps(["b"]), "", "", json.dumps(["a"])],
        [1, "Broken", "['not json']", json.dumps(["b"]), "", "", json.dumps(["a"])],
    ])
    with pytest.raises(DatasetError, match=r"r\.csv:3: field 'ingredients': not a JSON list"):
        from_recipenlg_csv(path)


def test_amazon_titles_loader(tmp_path):
    path = tmp_path / "trn.json"
    path.write_text('{"uid": "B001", "title": "Steel Bottle", "content": "Keeps drinks cold."}\n\n'
                    '{"uid": "B002", "title": "Mug", "content": "Holds tea."}\n')
    samples = from_amazon_titles(path)
    assert [(s.id, s.input, s.target) for s in samples] == [
        ("amazon-B001", "Steel Bottle", "Keeps drinks cold."), ("amazon-B002", "Mug", "Holds tea.")]
    path.write_text('{"uid": "B001", "title": "Steel Bottle", "content": ""}\n')
    with pytest.raises(DatasetError, match=r"trn\.json:1: field 'content': must be a non-empty string"):
        from_amazon_titles(path)


def test_bioasq_loader(tmp_path):
    path = tmp_path / "bioasq.json"
    path.write_text(json.dumps({"questions": [
        {"id": "q1", "body": "What does insulin do?", "ideal_answer": ["It lowers blood glucose."]},
    ]}))
    [sample] = from_bioasq(path)
    assert (sample.id, sample.input, sample.target) == ("bioasq-q1", "What does insulin do?", "It lowers blood glucose.")
    path.write_text(json.dumps({"questions": [{"id": "q1", "body": "Q?"}]}))
    with pytest.raises(DatasetError, match=r"questions\[0\]: field 'ideal_answer': missing"):
        from_bioasq(path)


def test_pubmedqa_loader(tmp_path):
    path = tmp_path / "pqa.json"
    path.write_text(json.dumps({"123": {"QUESTION": "Does X help?", "CONTEXTS": ["c1", "c2"], "LONG_ANSWER": "Yes, X helps."}}))
    [sample] = from_pubmedqa(path)
    assert (sample.id, sample.input, sample.target, sample.meta["contexts"]) == (
        "pubmedqa-123", "Does X help?", "Yes, X helps.", ["c1", "c2"])
    path.write_text("{not json")
    with pytest.raises(DatasetError, match=r"pqa\.json:1: file is not valid JSON"):
        from_pubmedqa(path)


@pytest.mark.parametrize("line, message", [
    ("{not json", r"data\.jsonl:2: line is not valid JSON"),
    ('{"id": "b", "input": "t"}', r"data\.jsonl:2: field 'target': missing"),
    ('{"id": "b", "input": "t", "target": {"people": [], "dates": []}}', r"data\.jsonl:2: field 'target/places': missing"),
    ('{"id": "b", "input": "t", "target": {"people": [1], "dates": [], "places": []}}', r"data\.jsonl:2: field 'target/people/0': 1 is not of type 'string'"),
    ('{"id": "a", "input": "t", "target": {"people": [], "dates": [], "places": []}}', r"data\.jsonl:2: field 'id': duplicate id 'a'"),
    ('{"id": "b", "input": "t", "target": {"people": [], "dates": [], "places": []}, "extra": 1}', r"data\.jsonl:2: field 'extra': unknown field"),
])
def test_malformed_data_lines_name_file_line_and_field(tmp_path, line, message):
    path = tmp_path / "data.jsonl"
    good = '{"id": "a", "input": "t", "target": {"people": [], "dates": [], "places": []}}'
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(DatasetError, match=message):
        load_samples(path, TASKS["it_entities"].schema)
