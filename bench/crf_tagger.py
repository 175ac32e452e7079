"""A classical entity tagger for it_entities: a linear-chain CRF (python-crfsuite) over BIO tags.

Texts are split into word tokens with their character offsets; an Italian elision keeps its
apostrophe on the article (``dell'`` + ``Italia``), so an entity after it is a token of its own.
Training labels come from finding each reference entity verbatim in its text. Predicted spans
are cut from the text between their first and last token, so every output entity occurs
verbatim in the input, as the task asks of a model.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

# A word (with an elided article's apostrophe kept on it), or one punctuation character.
TOKEN = re.compile(r"\w+['’]?|[^\w\s]")
OUTSIDE = "O"
# L1 and L2 regularisation and iterations: python-crfsuite's usual starting point for NER; at
# 260 training texts training takes about a second.
CRF_PARAMS = {"c1": 0.1, "c2": 0.1, "max_iterations": 100, "feature.possible_transitions": True}


@dataclass(frozen=True)
class Token:
    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Word and punctuation tokens with their character offsets in `text`."""
    return [Token(m.group(), m.start(), m.end()) for m in TOKEN.finditer(text)]


def bio_labels(text: str, tokens: list[Token], entities: dict[str, list[str]]) -> list[str]:
    """BIO tags for the tokens: every verbatim occurrence of a reference entity, longest first.

    An occurrence counts only where it starts and ends on token boundaries; a token already
    tagged (by a longer entity) keeps its tag.
    """
    labels = [OUTSIDE] * len(tokens)
    starts = {t.start: i for i, t in enumerate(tokens)}
    ends = {t.end: i for i, t in enumerate(tokens)}
    spans = sorted(((kind, name) for kind, names in entities.items() for name in names if name.strip()),
                   key=lambda item: -len(item[1]))
    for kind, name in spans:
        for match in re.finditer(re.escape(name.strip()), text):
            first, last = starts.get(match.start()), ends.get(match.end())
            if first is None or last is None or any(labels[i] != OUTSIDE for i in range(first, last + 1)):
                continue
            labels[first:last + 1] = [f"B-{kind}"] + [f"I-{kind}"] * (last - first)
    return labels


def token_features(tokens: list[Token], index: int) -> dict[str, object]:
    """Features of one token and its neighbours (the usual CRF NER set: form, shape, affixes)."""
    word = tokens[index].text
    features: dict[str, object] = {
        "bias": 1.0, "lower": word.lower(), "suffix3": word[-3:].lower(), "prefix3": word[:3].lower(),
        "title": word.istitle(), "upper": word.isupper(), "digit": word.isdigit(),
        "shape": re.sub(r"\d+", "0", re.sub(r"[a-zà-ÿ]+", "a", re.sub(r"[A-ZÀ-Þ]+", "A", word))),
        "elided": word.endswith(("'", "’")),
    }
    for offset in (-2, -1, 1, 2):
        position = index + offset
        if 0 <= position < len(tokens):
            other = tokens[position].text
            features.update({f"{offset}:lower": other.lower(), f"{offset}:title": other.istitle(),
                             f"{offset}:digit": other.isdigit()})
        else:
            features[f"{offset}:edge"] = True
    return features


def sentence_features(tokens: list[Token]) -> list[dict[str, object]]:
    return [token_features(tokens, i) for i in range(len(tokens))]


def decode_entities(text: str, tokens: list[Token], labels: list[str], kinds: tuple[str, ...]) -> dict[str, list[str]]:
    """Entity strings per kind from BIO tags, cut verbatim from `text`; duplicates dropped, order kept."""
    found: dict[str, list[str]] = {kind: [] for kind in kinds}
    span: tuple[str, int, int] | None = None
    for token, label in [*zip(tokens, labels), (None, OUTSIDE)]:
        prefix, _, kind = label.partition("-")
        if span and (prefix != "I" or kind != span[0]):
            name = text[span[1]:span[2]]
            if span[0] in found and name not in found[span[0]]:
                found[span[0]].append(name)
            span = None
        if prefix == "B" or (prefix == "I" and span is None):  # a stray I- starts a span, as in IOB1
            span = (kind, token.start, token.end)
        elif prefix == "I":
            span = (span[0], span[1], token.end)
    return found


class CrfEntityTagger:
    """Train on texts with reference entities, then predict entities for new texts."""

    def __init__(self, kinds: tuple[str, ...]):
        self.kinds = kinds
        self._tagger = None

    def fit(self, texts: list[str], entities: list[dict[str, list[str]]]) -> "CrfEntityTagger":
        import pycrfsuite

        trainer = pycrfsuite.Trainer(verbose=False)
        for text, reference in zip(texts, entities):
            tokens = tokenize(text)
            trainer.append(sentence_features(tokens), bio_labels(text, tokens, reference))
        trainer.set_params(CRF_PARAMS)
        with tempfile.TemporaryDirectory(prefix="slmbench-crf-") as folder:  # crfsuite trains to a file
            model_path = Path(folder) / "entities.crfsuite"
            trainer.train(str(model_path))
            # crfsuite reads the model in place, without a copy: the bytes must live as long as the tagger
            self._model = model_path.read_bytes()
        self._tagger = pycrfsuite.Tagger()
        self._tagger.open_inmemory(self._model)
        return self

    def predict(self, text: str) -> dict[str, list[str]]:
        """Entities found in `text`, per kind."""
        if self._tagger is None:
            raise RuntimeError("CrfEntityTagger.predict called before fit")
        tokens = tokenize(text)
        labels = self._tagger.tag(sentence_features(tokens)) if tokens else []
        return decode_entities(text, tokens, labels, self.kinds)
