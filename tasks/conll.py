"""CoNLL / IOB named-entity files as it_entities samples.

One token per line with its tag in the last column (`Roma B-LOC`, or CoNLL-2003's four columns),
sentences separated by blank lines, `-DOCSTART-` lines skipped. Tags are IOB2 (`B-`/`I-`), IOB1
(`I-` opens an entity, `B-` only splits two adjacent ones of a type) or IOBES (`S-`, `E-`); the
types map onto the task's: PER -> people, LOC/GPE -> places, DATE -> dates; others (ORG, MISC)
are not this task's and are dropped.

The sentence text is rebuilt from the tokens (detokenised: no space before punctuation or after
an elision like `dell'`, quotes hug what they quote), and every entity is cut out of that text
by its tokens' character offsets, so it occurs verbatim in the input. Adjacent entities of a
type stay separate. Each sample's `meta.annotated` lists the types the file's tags carry at
all: a file without DATE tags is scored on people and places only (see tasks/it_entities.py).

    slmbench convert-conll news.conll news.jsonl      (or pass the .conll file to --bench-data)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from slmbench.atomic import write_text_atomic
from slmbench.errors import DatasetError
from slmbench.tasks.core import Sample

SUFFIXES = (".conll", ".iob", ".bio")
TYPE_NAMES = {"PER": "people", "PERS": "people", "PERSON": "people",
              "LOC": "places", "GPE": "places", "LOCATION": "places", "PLACE": "places",
              "DATE": "dates"}
KINDS = ("people", "dates", "places")  # the it_entities output keys, in its order
NO_SPACE_BEFORE = {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "»", "...", "…", "”", "’"}
NO_SPACE_AFTER = {"(", "[", "{", "«", "“", "‘"}
ELISION = re.compile(r"\w['’]$")  # dell' l' un' all' : the next word follows without a space
NOT_ELISION = {"po'", "po’"}  # "un po' di": an apocope, a space follows
APOSTROPHES = {"'", "’"}  # an apostrophe split off as its own token (`dell ' Italia`) is an elision too
QUOTES = {'"'}  # straight quotes open and close: they alternate within a sentence


@dataclass(frozen=True)
class Token:
    text: str
    tag: str  # "O" or "<prefix>-<TYPE>"
    where: str  # file:line, for errors


def read_conll(path: Path) -> list[Sample]:
    """The file's sentences as it_entities samples (id `<file stem>-<n>`), meta naming the annotated types."""
    path = Path(path)
    sentences = list(_sentences(path))
    annotated = sorted({TYPE_NAMES[t.tag[2:]] for s in sentences for t in s if t.tag[2:] in TYPE_NAMES},
                       key=KINDS.index)
    if not annotated:
        raise DatasetError(f"{path}: no PER, LOC/GPE or DATE tag anywhere: nothing it_entities can score")
    samples = []
    for number, tokens in enumerate(sentences, start=1):
        text, spans = detokenise([t.text for t in tokens])
        target = {kind: [] for kind in KINDS}
        for kind, first, last in _entities(tokens):
            entity = text[spans[first][0]:spans[last][1]]
            if entity not in target[kind]:
                target[kind].append(entity)
        samples.append(Sample(f"{path.stem}-{number:04d}", text, target,
                              {"annotated": annotated, "source": tokens[0].where}))
    return samples


def convert_conll(source: Path, out: Path) -> int:
    """Write `source` (CoNLL/IOB) as it_entities JSON Lines to `out` (atomically); returns the sample count."""
    samples = read_conll(source)
    lines = [json.dumps({"id": s.id, "input": s.input, "target": s.target, "meta": dict(s.meta)}, ensure_ascii=False)
             for s in samples]
    write_text_atomic(Path(out), "\n".join(lines) + "\n")
    return len(samples)


def detokenise(tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Tokens joined as written text, with each token's (start, end) character offsets in it."""
    text, spans, open_quote, glue = "", [], False, True
    for token in tokens:
        if token in APOSTROPHES:
            closing = True
        elif token in QUOTES:
            closing = open_quote
            open_quote = not open_quote
        else:
            closing = token in NO_SPACE_BEFORE
        if text and not glue and not closing:
            text += " "
        spans.append((len(text), len(text) + len(token)))
        text += token
        glue = (token in NO_SPACE_AFTER or token in APOSTROPHES or (token in QUOTES and not closing)
                or (bool(ELISION.search(token)) and token.lower() not in NOT_ELISION))
    return text, spans


def _entities(tokens: list[Token]) -> list[tuple[str, int, int]]:
    """(kind, first token, last token) of each entity of the task's types."""
    found, current = [], None  # current: [kind, first, last, tag type]
    for index, token in enumerate(tokens):
        prefix, kind = token.tag[:1], token.tag[2:]
        continues = current is not None and current[3] == kind and prefix in ("I", "E")
        if continues:
            current[2] = index
        else:
            current = [TYPE_NAMES.get(kind), index, index, kind] if prefix != "O" else None
            if current is not None:
                found.append(current)
        if prefix in ("E", "S"):
            current = None
    return [(kind, first, last) for kind, first, last, _ in found if kind]


def _sentences(path: Path):
    """Each sentence's tokens; blank lines and -DOCSTART- lines end a sentence."""
    if not path.is_file():
        raise DatasetError(f"{path}: no such data file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: not UTF-8 text: {error}") from None
    sentence = []
    for number, line in enumerate(lines, start=1):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if sentence:
                yield sentence
            sentence = []
            continue
        sentence.append(_token(columns, f"{path}:{number}"))
    if sentence:
        yield sentence


def _token(columns: list[str], where: str) -> Token:
    if len(columns) < 2:
        raise DatasetError(f"{where}: field 'tag': missing (expected 'TOKEN ... TAG', got {columns[0]!r})")
    tag = columns[-1]
    if tag != "O" and not re.fullmatch(r"[BIES]-[A-Za-z_]+", tag):
        raise DatasetError(f"{where}: field 'tag': {tag!r} is not O or B-/I-/E-/S-<TYPE>")
    return Token(columns[0], tag if tag == "O" else tag[:2] + tag[2:].upper(), where)
