"""iris: predict the species from binned (low / medium / high) flower measurements.

The data is the real Iris data bundled with scikit-learn. Each measurement is cut into three
bins at the edges below. A value on a shared edge goes to the upper bin; a value inside a gap
between two bins (petal length 2.1-3.0, petal width 0.6-1.0) goes to the nearer bin, i.e. the
cut is the gap's midpoint. Build the fixtures with ``python -m tasks.iris``.
"""

from __future__ import annotations

import json

import numpy as np

from slmbench.atomic import write_text_atomic
from slmbench.tasks.core import Sample, SampleScore, Task
from slmbench.tasks.metrics import check_json, class_prf_of, confusion_stats, mean_of

LABELS = ["setosa", "versicolor", "virginica"]
LEVELS = ["low", "medium", "high"]
# feature -> (low|medium cut, medium|high cut), from the bins 4.3-5.4-6.3-7.9, 2.0-2.7-3.3-4.4,
# 1.0-2.1 | 3.0-5.0 | 5.0-7.0 (gap midpoint 2.55) and 0.1-0.6 | 1.0-1.6 | 1.6-2.5 (gap midpoint 0.8).
CUTS = {"sepal_length": (5.4, 6.3), "sepal_width": (2.7, 3.3), "petal_length": (2.55, 5.0), "petal_width": (0.8, 1.6)}
SPLIT_SIZES = {"train": 90, "val": 30, "test": 30}
SEED = 7

SCHEMA = {
    "type": "object",
    "properties": {"species": {"enum": LABELS}},
    "required": ["species"],
    "additionalProperties": False,
}
INPUT_SCHEMA = {  # every sample's input: the four binned measurements, nothing else
    "type": "object",
    "properties": {feature: {"enum": LEVELS} for feature in CUTS},
    "required": list(CUTS),
    "additionalProperties": False,
}


def bin_measurements(measurements: list[float]) -> dict[str, str]:
    """Four measurements (cm) -> {feature: low|medium|high}."""
    return {feature: LEVELS[int(np.digitize(value, cuts, right=False))]
            for (feature, cuts), value in zip(CUTS.items(), measurements)}


def prompt(sample: Sample) -> str:
    """Describe the binned flower and ask for its species as JSON."""
    described = ", ".join(f"{feature.replace('_', ' ')}: {level}" for feature, level in sample.input.items())
    return (f"An iris flower has {described}. Which species is it? Answer with JSON: "
            '{"species": "setosa"}, {"species": "versicolor"} or {"species": "virginica"}.\nJSON:')


def judge(output: str, sample: Sample) -> SampleScore:
    """Validity of the label, correctness, and the confusion-matrix cell of one output."""
    value, json_valid, schema_valid, reason = check_json(output, SCHEMA)
    predicted = value.get("species") if isinstance(value, dict) else None
    truth = sample.target["species"]
    valid_label = predicted in LABELS
    stats = {"json_valid": float(json_valid), "schema_valid": float(schema_valid), "valid_label": float(valid_label),
             "correct": float(predicted == truth), **confusion_stats(truth, predicted, LABELS)}
    if predicted == truth:
        explanation = f"correct: {truth}"
    elif valid_label:
        explanation = f"predicted {predicted}, expected {truth}"
    else:
        explanation = reason or f"{predicted!r} is not one of {', '.join(LABELS)}"
    return SampleScore(sample.id, stats, explanation, {"predicted": predicted if valid_label else None, "expected": truth})


def confusion_matrix(result) -> dict:
    """Rows: true species; columns: predicted species plus 'invalid' (scikit-learn)."""
    from sklearn.metrics import confusion_matrix as sk_confusion

    labels = LABELS + ["invalid"]
    truth = [s.details["expected"] for s in result.scores]
    predicted = [s.details["predicted"] or "invalid" for s in result.scores]
    return {"labels": labels, "matrix": sk_confusion(truth, predicted, labels=labels).tolist()}


METRICS = {
    "json_valid": mean_of("json_valid"),
    "schema_valid": mean_of("schema_valid"),
    "valid_label_rate": mean_of("valid_label"),
    "accuracy": mean_of("correct"),
    **{f"accuracy_{label}": class_prf_of(LABELS, "recall", label) for label in LABELS},
    "macro_precision": class_prf_of(LABELS, "precision"),
    "macro_recall": class_prf_of(LABELS, "recall"),
    "macro_f1": class_prf_of(LABELS, "f1"),
}

TASK = Task(
    name="iris",
    version="1",
    prompt=prompt,
    schema=SCHEMA,
    judge=judge,
    metrics=METRICS,
    thresholds={"json_valid": 0.95, "schema_valid": 0.95, "valid_label_rate": 0.95, "accuracy": 0.8},
    headline="accuracy",
    max_new_tokens=24,
    input_schema=INPUT_SCHEMA,
    # 6 worked examples: each is ~75 tokens, and six random draws show all three species 74% of the
    # time (three draws: 22%), so the examples teach the feature -> species mapping, not one label.
    fewshot_k=6,
)


def build_samples() -> dict[str, list[Sample]]:
    """The stratified, seeded 90 / 30 / 30 split of scikit-learn's Iris data."""
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split

    data = load_iris()
    indices = np.arange(len(data.target))
    rest, test = train_test_split(indices, test_size=SPLIT_SIZES["test"], stratify=data.target, random_state=SEED)
    train, val = train_test_split(rest, test_size=SPLIT_SIZES["val"], stratify=data.target[rest], random_state=SEED)
    splits = {}
    for split, chosen in (("train", train), ("val", val), ("test", test)):
        splits[split] = [
            Sample(f"iris-{split}-{n:03d}", bin_measurements(data.data[i].tolist()),
                   {"species": LABELS[data.target[i]]}, {"sklearn_index": int(i), "measurements": data.data[i].tolist()})
            for n, i in enumerate(sorted(chosen), start=1)
        ]
    return splits


def classical_baseline(train: list[Sample], evaluate_on: list[Sample]) -> list[str]:
    """A scikit-learn classifier on the same categorical features, as JSON outputs to score.

    One-hot features with a logistic regression: the LLM rows of the leaderboard read against it.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    def features(samples):
        return [[s.input[f] for f in CUTS] for s in samples]

    species = [s.target["species"] for s in train]
    if len(set(species)) < 2:  # scikit-learn would fail deep inside the solver
        from slmbench.errors import DatasetError

        raise DatasetError(f"the iris classical baseline needs train samples of at least two species; the train split "
                           f"has {len(train)} sample(s), all {species[0] if species else 'none'!r} (add samples, or "
                           f"leave the row out with --bench-classical none)")
    model = make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression(max_iter=1000))
    model.fit(features(train), species)
    return [json.dumps({"species": label}) for label in model.predict(features(evaluate_on))]


if __name__ == "__main__":
    for split, samples in build_samples().items():
        lines = [json.dumps({"id": s.id, "input": s.input, "target": s.target, "meta": s.meta}) for s in samples]
        write_text_atomic(TASK.data_path(split), "\n".join(lines) + "\n")
        print(f"wrote {TASK.data_path(split)} ({len(samples)} samples)")
