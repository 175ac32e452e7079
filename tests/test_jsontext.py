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
    # a stop the parser confirms: prose in brackets, mismatched brackets and invalid JSON are passed over
    ('Result [see below]: {"a": 1} done', 28),
    ('Result [see below]: {"a": [1', None),
    ('{"a": [1, 2}', None),
    ('{"a": 1,} then {"b": 2}', 23),
    ('[note] [1, 2]', 13),
    ('[see {"a": 1} below] {"b": 2}', 29),
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
    assert parse_json_output('Result [see below]: {"a": 1}') == ({"a": 1}, None)
    assert parse_json_output('{"a": 1,} then {"b": 2}') == ({"b": 2}, None)
    deep = "[" * 50000 + "]" * 50000  # balanced, too deep to parse: found invalid in linear time
    assert json_value_end(deep) is None and parse_json_output(deep)[0] is None
    assert json_value_end("[" * 50000 + "}" + "[1]") == 50004  # mismatched: skipped whole, linear time
