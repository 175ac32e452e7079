"""Finding and parsing the JSON value in a model's free text."""

from __future__ import annotations

import json
from typing import Any

# Deeper values are refused: json, jsonschema and repr() recurse once per level, so a value nested
# near Python's recursion limit parses and then overflows in whatever reads it next. No task
# output or data row nests more than a few levels.
MAX_JSON_DEPTH = 100
TOO_DEEP = f"nested more than {MAX_JSON_DEPTH} levels deep"


def nesting_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """Levels of lists and objects in a parsed JSON value (a scalar is 0); stops counting past `limit`.

    Iterative on purpose: it must not recurse on the very values it guards against.
    """
    deepest, stack = 0, [(value, 0)]
    while stack and deepest <= limit:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in children)
    return deepest


def loads_bounded(text: str) -> Any:
    """``json.loads`` that raises ValueError(TOO_DEEP) instead of RecursionError or a too-deep value."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    if nesting_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(TOO_DEEP)
    return value


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
        (value, None) on success, or (None, reason) when there is no parsable JSON value or it is
        nested more than MAX_JSON_DEPTH levels deep.
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
        return None, f"invalid JSON: {TOO_DEEP}"
    if nesting_depth(value) > MAX_JSON_DEPTH:
        return None, f"invalid JSON: {TOO_DEEP}"
    return value, None
