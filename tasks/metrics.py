"""Metric building blocks shared by the tasks.

Two kinds of functions live here:
- per-sample measurements (``rouge_f``, ``bleu_stats``, ``meteor_exact_stem``, ``entity_counts``,
  ``check_json``) that a task's judge calls on one output;
- metric builders (``mean_of``, ``f1_of``, ``bleu_of``, ``macro_f1_of`` ...) that turn summed
  per-sample statistics into a corpus value. They take ``(sums, n)`` where each sum is a numpy
  array (one entry per bootstrap resample), so aggregation and confidence intervals are generic.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any, Iterable, Mapping

import jsonschema
import numpy as np

from slmbench.jsontext import parse_json_output

MAX_SCORED_WORDS = 2000  # longer outputs are truncated before overlap metrics (LCS is quadratic)


def normalise(text: str) -> str:
    """Case-fold and collapse whitespace, for matching entities and titles."""
    return " ".join(unicodedata.normalize("NFC", str(text)).casefold().split())


def clean_output(output: object) -> str:
    """Model output as valid UTF-8 text: bytes are decoded, surrogates and bad bytes replaced."""
    if isinstance(output, bytes):
        return output.decode("utf-8", errors="replace")
    if not isinstance(output, str):
        return ""
    return output.encode("utf-8", errors="replace").decode("utf-8")


def truncate_words(text: str, limit: int = MAX_SCORED_WORDS) -> str:
    words = text.split()
    return text if len(words) <= limit else " ".join(words[:limit])


# ---- per-sample measurements -------------------------------------------------------------

def check_json(output: str, schema: dict) -> tuple[Any, bool, bool, str]:
    """Parse an output and validate it: (value, json_valid, schema_valid, reason if not both)."""
    value, reason = parse_json_output(clean_output(output))
    if reason:
        return None, False, False, reason
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "top level"
        return value, True, False, f"schema: at {where}: {errors[0].message[:200]}"
    return value, True, True, ""


def entity_counts(predicted: Iterable[Any], gold: Iterable[str]) -> tuple[int, int, int]:
    """(tp, fp, fn) matching entity strings after normalising case and whitespace.

    Duplicates count once; non-string predictions are false positives.
    """
    gold_set = {normalise(g) for g in gold}
    predicted_set = {normalise(p) if isinstance(p, str) else f"\0{p!r}" for p in predicted}
    tp = len(predicted_set & gold_set)
    return tp, len(predicted_set) - tp, len(gold_set) - tp


@lru_cache(maxsize=4)
def _rouge_scorer(types: tuple[str, ...]):
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(types), use_stemmer=True)


def rouge_f(prediction: str, reference: str, types: tuple[str, ...] = ("rouge1", "rouge2", "rougeL")) -> dict[str, float]:
    """ROUGE F-measures (rouge-score, Porter stemming) of one prediction."""
    scores = _rouge_scorer(types).score(reference, truncate_words(prediction))
    return {name: scores[name].fmeasure for name in types}


def bleu_stats(prediction: str, reference: str) -> dict[str, float]:
    """sacrebleu's sufficient statistics for one sentence; summed, they give corpus BLEU."""
    from sacrebleu.metrics import BLEU

    score = BLEU(effective_order=True).sentence_score(truncate_words(prediction), [reference])
    stats = {f"bleu_correct_{i + 1}": float(c) for i, c in enumerate(score.counts)}
    stats.update({f"bleu_total_{i + 1}": float(t) for i, t in enumerate(score.totals)})
    stats.update(bleu_sys_len=float(score.sys_len), bleu_ref_len=float(score.ref_len))
    return stats


class _NoSynonyms:
    """Stands in for WordNet: METEOR then matches exact words and Porter stems only."""

    @staticmethod
    def synsets(word, *args, **kwargs):
        return []


def meteor_exact_stem(prediction: str, reference: str) -> float:
    """METEOR with exact + stem matching only (NLTK's implementation, synonym stage off).

    Named apart from METEOR because no WordNet data can be installed offline here.
    """
    from nltk.translate.meteor_score import meteor_score

    hypothesis = re.findall(r"\w+", truncate_words(prediction).lower())
    tokens = re.findall(r"\w+", reference.lower())
    if not hypothesis or not tokens:
        return 0.0
    return float(meteor_score([tokens], hypothesis, wordnet=_NoSynonyms()))


def first_paragraph(text: str) -> str:
    """The answer part of a free-text output: up to the first blank line, stripped."""
    return clean_output(text).strip().split("\n\n", 1)[0].strip()


# ---- metric builders (sums of per-sample stats -> corpus value) ---------------------------

def _ratio(numerator, denominator, when_empty):
    numerator, denominator = np.asarray(numerator, float), np.asarray(denominator, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), when_empty)


def mean_of(stat: str):
    """The mean of a per-sample statistic (a rate when it is 0/1)."""
    return lambda sums, n: np.asarray(sums[stat], float) / n


# Precision with nothing predicted, or recall with nothing expected, is undefined. Like
# scikit-learn's ``precision_recall_fscore_support(..., zero_division=1.0)`` we call it 1.0: no
# prediction was wrong, no expected entity was missed. The other ratio still counts the error
# (predicting nothing when something was expected has recall 0), and so does F1, which is 1.0
# only when nothing was expected and nothing predicted.
ZERO_DIVISION = 1.0


def precision_of(prefix: str):
    """Micro precision from ``{prefix}_tp/_fp/_fn`` sums; ZERO_DIVISION (1.0) when nothing was predicted."""
    return lambda s, n: _ratio(s[f"{prefix}_tp"], s[f"{prefix}_tp"] + s[f"{prefix}_fp"], ZERO_DIVISION)


def recall_of(prefix: str):
    """Micro recall from ``{prefix}_tp/_fp/_fn`` sums; ZERO_DIVISION (1.0) when nothing was expected."""
    return lambda s, n: _ratio(s[f"{prefix}_tp"], s[f"{prefix}_tp"] + s[f"{prefix}_fn"], ZERO_DIVISION)


def f1_of(prefix: str):
    """Micro F1 from ``{prefix}_tp/_fp/_fn`` sums (scikit-learn's F1 with zero_division=1.0)."""
    def f1(sums, n):
        p, r = precision_of(prefix)(sums, n), recall_of(prefix)(sums, n)
        return _ratio(2 * p * r, p + r, 0.0)
    return f1


def sum_counts(prefixes: Iterable[str], into: str):
    """Stats pooled over several prefixes (micro over entity types)."""
    prefixes = list(prefixes)
    return lambda sums, n: {f"{into}_{k}": sum(sums[f"{p}_{k}"] for p in prefixes) for k in ("tp", "fp", "fn")}


def micro_f1_over(prefixes: Iterable[str], kind: str = "f1"):
    """Precision / recall / F1 over the pooled counts of several prefixes."""
    pool = sum_counts(prefixes, "all")
    builder = {"precision": precision_of, "recall": recall_of, "f1": f1_of}[kind]("all")
    return lambda sums, n: builder(pool(sums, n), n)


def macro_f1_of(prefixes: Iterable[str]):
    """Unweighted mean of per-prefix F1."""
    prefixes = list(prefixes)
    return lambda sums, n: sum(f1_of(p)(sums, n) for p in prefixes) / len(prefixes)


def bleu_of():
    """Corpus BLEU (sacrebleu defaults, 0-1 scale) from summed sentence statistics."""
    from sacrebleu.metrics import BLEU

    def bleu(sums, n):
        correct = np.stack([np.atleast_1d(sums[f"bleu_correct_{i}"]) for i in range(1, 5)], axis=-1)
        total = np.stack([np.atleast_1d(sums[f"bleu_total_{i}"]) for i in range(1, 5)], axis=-1)
        sys_len, ref_len = np.atleast_1d(sums["bleu_sys_len"]), np.atleast_1d(sums["bleu_ref_len"])
        return np.array([BLEU.compute_bleu([int(x) for x in c], [int(x) for x in t], int(s), int(r),
                                           smooth_method="exp").score / 100
                         for c, t, s, r in zip(correct, total, sys_len, ref_len)])
    return bleu


def confusion_stats(true_label: str, predicted: str | None, labels: list[str]) -> dict[str, float]:
    """One-hot confusion cell ``cm_<true>_<pred>`` (pred ``invalid`` when not a label)."""
    predicted = predicted if predicted in labels else "invalid"
    return {f"cm_{t}_{p}": float(t == true_label and p == predicted) for t in labels for p in labels + ["invalid"]}


def class_prf_of(labels: list[str], kind: str, label: str | None = None):
    """Per-class (label given) or macro (label None) precision / recall / F1 from confusion sums.

    Matches scikit-learn's ``precision_recall_fscore_support(labels=labels)``: invalid
    predictions count as misses for recall and never as a class.
    """
    def value(sums, n, c):
        tp = sums[f"cm_{c}_{c}"]
        predicted = sum(sums[f"cm_{t}_{c}"] for t in labels)
        actual = sum(sums[f"cm_{c}_{p}"] for p in labels + ["invalid"])
        p, r = _ratio(tp, predicted, 0.0), _ratio(tp, actual, 0.0)
        return {"precision": p, "recall": r, "f1": _ratio(2 * p * r, p + r, 0.0)}[kind]

    if label is not None:
        return lambda sums, n: value(sums, n, label)
    return lambda sums, n: sum(value(sums, n, c) for c in labels) / len(labels)


def evaluate_metric(metric, sums: Mapping[str, float], n: int) -> float:
    """A metric's value on plain (non-resampled) sums."""
    return float(np.atleast_1d(metric({k: np.atleast_1d(v) for k, v in sums.items()}, n))[0])
