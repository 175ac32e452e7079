"""Finding and parsing the JSON value in a model's free text."""

from __future__ import annotations

import json
from typing import Any


def json_value_end(text: str) -> int | None:
    """Index just past the first complete top-level JSON object or array in text, or None.

    Leading prose or a code fence before the value is skipped; braces inside strings
    (with escapes) do not count.
    """
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None
    depth, in_string, escaped = 0, False, False
    for index in range(min(starts), len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def parse_json_output(text: str) -> tuple[Any, str | None]:
    """Parse the first JSON object/array in a model output.

    Returns:
        (value, None) on success, or (None, reason) when there is no parsable JSON value.
    """
    if not isinstance(text, str):
        return None, f"output is {type(text).__name__}, not text"
    starts = [i for i in (text.find("{"), text.find("[")) if i >= 0]
    if not starts:
        return None, "no JSON object or array in output"
    try:
        value, _ = json.JSONDecoder().raw_decode(text[min(starts):])
    except json.JSONDecodeError as error:
        return None, f"invalid JSON: {error.msg} at char {error.pos}"
    except RecursionError:
        return None, "invalid JSON: nested too deeply"
    return value, None
