import pytest

from slmbench.jsontext import json_value_end, parse_json_output


@pytest.mark.parametrize("text, end", [
    ('{"a": 1} and more', 8),
    ('Sure! ```json\n{"a": [1, {"b": 2}]}\n```', 34),
    ('{"a": "}{ not a brace"}tail', 23),
    ('{"a": "quote \\" inside }"}x', 26),
    ('[1, 2]!', 6),
    ('{"open": [1, 2', None),
    ("no json here", None),
])
def test_json_value_end(text, end):
    assert json_value_end(text) == end


def test_parse_json_output_returns_value_or_reason():
    assert parse_json_output('Here: {"a": 1} thanks') == ({"a": 1}, None)
    value, reason = parse_json_output('{"a": 1,}')
    assert value is None and reason.startswith("invalid JSON")
    assert parse_json_output("plain words") == (None, "no JSON object or array in output")
    assert parse_json_output(None)[1] == "output is NoneType, not text"
    assert parse_json_output("[" * 100000)[0] is None
