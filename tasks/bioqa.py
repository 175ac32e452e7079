"""bioqa: answer a biomedical question in one to three sentences (free text).

Scored with ROUGE-L, corpus BLEU and METEOR. No WordNet data installs offline, so METEOR is
computed with exact + stem matching only and reported as ``meteor_exact_stem``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slmbench.errors import DatasetError
from slmbench.tasks.core import Sample, SampleScore, Task
from slmbench.tasks.metrics import bleu_of, bleu_stats, first_paragraph, mean_of, meteor_exact_stem, rouge_f


def prompt(sample: Sample) -> str:
    """Ask for a short, factual answer to the question."""
    return ("Answer the biomedical question in one to three sentences, stating the key fact first.\n\n"
            f"Question: {sample.input}\nAnswer:")


def judge(output: str, sample: Sample) -> SampleScore:
    """ROUGE-L, BLEU statistics and METEOR (exact + stem) of the answer's first paragraph."""
    text = first_paragraph(output)
    stats = {**rouge_f(text, sample.target, ("rougeL",)), **bleu_stats(text, sample.target),
             "meteor_exact_stem": meteor_exact_stem(text, sample.target)}
    explanation = f"rougeL {stats['rougeL']:.2f}, meteor_exact_stem {stats['meteor_exact_stem']:.2f}"
    return SampleScore(sample.id, stats, explanation if text else "empty answer")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}:{error.lineno}: file is not valid JSON: {error.msg}") from None


def _text(value: Any, where: str, field: str) -> str:
    if isinstance(value, list):  # BioASQ ideal answers and PubMedQA contexts may be lists
        value = " ".join(v for v in value if isinstance(v, str))
    if not isinstance(value, str) or not value.strip():
        raise DatasetError(f"{where}: field '{field}': must be a non-empty string")
    return value.strip()


def from_bioasq(path: str | Path) -> list[Sample]:
    """Read BioASQ JSON (``{"questions": [{"id", "body", "ideal_answer"}]}``) as samples."""
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("questions"), list):
        raise DatasetError(f"{path}: field 'questions': missing or not a list")
    samples = []
    for index, question in enumerate(data["questions"]):
        where = f"{path}: questions[{index}]"
        if not isinstance(question, dict):
            raise DatasetError(f"{where}: expected an object")
        if "ideal_answer" not in question:
            raise DatasetError(f"{where}: field 'ideal_answer': missing")
        body = _text(question.get("body"), where, "body")
        answer = _text(question["ideal_answer"], where, "ideal_answer")
        samples.append(Sample(f"bioasq-{question.get('id', index)}", body, answer, {"source": "bioasq"}))
    return samples


def from_pubmedqa(path: str | Path) -> list[Sample]:
    """Read PubMedQA JSON (``{pmid: {"QUESTION", "CONTEXTS", "LONG_ANSWER"}}``) as samples.

    The contexts are kept in ``meta["contexts"]``; the prompt uses the question alone.
    """
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected an object keyed by PubMed id")
    samples = []
    for pmid, item in data.items():
        where = f"{path}: {pmid}"
        if not isinstance(item, dict):
            raise DatasetError(f"{where}: expected an object")
        for field in ("QUESTION", "LONG_ANSWER"):
            if field not in item:
                raise DatasetError(f"{where}: field '{field}': missing")
        question = _text(item["QUESTION"], where, "QUESTION")
        answer = _text(item["LONG_ANSWER"], where, "LONG_ANSWER")
        contexts = item.get("CONTEXTS", [])
        samples.append(Sample(f"pubmedqa-{pmid}", question, answer, {"source": "pubmedqa", "contexts": contexts}))
    return samples


TASK = Task(
    name="bioqa",
    version="1",
    prompt=prompt,
    schema=None,
    judge=judge,
    metrics={"rougeL": mean_of("rougeL"), "bleu": bleu_of(), "meteor_exact_stem": mean_of("meteor_exact_stem")},
    thresholds={"rougeL": 0.25},  # copying the question scores 0.15
    headline="rougeL",
    max_new_tokens=128,
    fewshot_k=3,  # 3 worked examples (~100 tokens each) show the answer length and the key-fact-first style
)
