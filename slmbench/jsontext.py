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


CLOSERS = {"}": "{", "]": "["}


def _open_until(text: str, start: int) -> tuple[str, int]:
    """Scan the bracketed value starting at text[start] ("{" or "["), matching bracket types and
    skipping strings: ("closed", index past its closing bracket), ("mismatched", index past the
    bracket of the wrong type that ends it), or ("open", len(text)) when it is still open."""
    stack, in_string, escaped = [], False, False
    for index in range(start, len(text)):
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
            stack.append(char)
        elif char in CLOSERS:
            if stack.pop() != CLOSERS[char]:
                return "mismatched", index + 1
            if not stack:
                return "closed", index + 1
    return "open", len(text)


def _json_starts(text: str):
    return (index for index, char in enumerate(text) if char in "{[")


def json_value_end(text: str) -> int | None:
    """Index just past the first JSON object or array in text that the json parser accepts, or None
    (see `json_span`)."""
    span = json_span(text)
    return None if span is None else span[1]


def json_span(text: str) -> tuple[int, int] | None:
    """(start, end) of the first JSON object or array in text that the json parser accepts, or None.

    Each "{" or "[" is a candidate start; leading prose or a code fence is skipped. A candidate whose
    brackets close but that does not parse (prose such as ``Result [see below]:``, a trailing comma,
    mismatched bracket types) is passed over with what it encloses; a candidate still open at the
    end of the text means the value may still be coming, so the answer is None (a JSON stop waits).
    """
    decoder = json.JSONDecoder()
    position = 0
    for start in _json_starts(text):
        if start < position:
            continue
        state, position = _open_until(text, start)
        if state == "open":
            return None
        if state == "closed":
            try:
                _, end = decoder.raw_decode(text, start)
            except (json.JSONDecodeError, RecursionError):
                end = None
            if end == position:
                return start, end
        # not JSON: look after it (or after the wrong bracket), so any text is scanned in linear time
    return None


def parse_json_output(text: str) -> tuple[Any, str | None]:
    """Parse the first JSON object/array in a model output.

    Returns:
        (value, None) on success, or (None, reason) when there is no parsable JSON value or it is
        nested more than MAX_JSON_DEPTH levels deep.
    """
    if not isinstance(text, str):
        return None, f"output is {type(text).__name__}, not text"
    first = next(_json_starts(text), None)
    if first is None:
        return None, "no JSON object or array in output"
    span = json_span(text)  # the first candidate the parser accepts (the JSON stop's value)
    start = first if span is None else span[0]
    try:
        value, _ = json.JSONDecoder().raw_decode(text[start:])
    except json.JSONDecodeError as error:
        return None, f"invalid JSON: {error.msg} at char {error.pos}"
    except RecursionError:
        return None, f"invalid JSON: {TOO_DEEP}"
    if nesting_depth(value) > MAX_JSON_DEPTH:
        return None, f"invalid JSON: {TOO_DEEP}"
    return value, None

