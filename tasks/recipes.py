"""recipes: turn a recipe narrated as prose into JSON (title, ingredients, directions).

Scored at three levels, reported separately: L1 the output parses as JSON, L2 it conforms to the
schema, L3 it is semantically correct (see ``judge``). ``from_recipenlg_csv`` builds samples from
the RecipeNLG corpus by narrating each row deterministically.
"""

from __future__ import annotations

import csv
import json
import zlib
from pathlib import Path

import numpy as np
from rapidfuzz import fuzz

from slmbench.errors import DatasetError
from slmbench.tasks.core import Sample, SampleScore, Task
from slmbench.tasks.metrics import check_json, mean_of, normalise, rouge_f

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "ingredients": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "directions": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["title", "ingredients", "directions"],
    "additionalProperties": False,
}
TITLE_MIN_RATIO = 80  # rapidfuzz ratio (0-100) for a title that is not an exact normalised match
INGREDIENT_MIN_RATIO = 85  # token-sort ratio for two ingredient strings to count as the same
INGREDIENT_MIN_F1 = 0.8
DIRECTIONS_MIN_ROUGE_L = 0.6  # at 0.5, pasting the whole prose as directions passed on 82% of samples


def prompt(sample: Sample) -> str:
    """Ask for the recipe's title, ingredient list and steps as one JSON object."""
    return ("Read the recipe below and return one JSON object with the keys \"title\" (the dish name), "
            "\"ingredients\" (a list of the ingredients with their quantities, as written) and \"directions\" "
            "(a list of short steps, in order).\n\n"
            f"Recipe: {sample.input}\nJSON:")


def ingredient_f1(predicted: list, reference: list[str]) -> float:
    """F1 of ingredient strings under the pairing that matches the most of them.

    Two strings can pair when their token-sort ratio reaches INGREDIENT_MIN_RATIO; each string
    pairs at most once. The pairing is an optimal assignment (scipy), so the order of either
    list never changes the score, unlike pairing each reference with its best unused match.
    """
    from scipy.optimize import linear_sum_assignment

    predicted = [normalise(p) for p in predicted if isinstance(p, str) and p.strip()]
    reference = [normalise(r) for r in reference]
    if not predicted or not reference:
        return float(predicted == reference)
    can_pair = np.array([[fuzz.token_sort_ratio(p, r) >= INGREDIENT_MIN_RATIO for r in reference] for p in predicted])
    rows, columns = linear_sum_assignment(can_pair, maximize=True)
    matched = int(can_pair[rows, columns].sum())
    precision, recall = matched / len(predicted), matched / len(reference)
    return 0.0 if matched == 0 else 2 * precision * recall / (precision + recall)


def title_score(predicted: object, reference: str) -> float:
    """1.0 for an exact normalised match, else the rapidfuzz ratio as a fraction."""
    if not isinstance(predicted, str):
        return 0.0
    return 1.0 if normalise(predicted) == normalise(reference) else fuzz.ratio(normalise(predicted), normalise(reference)) / 100


def judge(output: str, sample: Sample) -> SampleScore:
    """L1 (``json_valid``) / L2 (``schema_valid``) / L3 (``l3_semantic``) and the components behind L3.

    L3 (semantically correct) holds when the output conforms to the schema, the title matches
    (normalised, or fuzzy ratio >= 0.8), ingredient-set F1 >= 0.8 and the directions' ROUGE-L >= 0.6.
    """
    value, json_valid, schema_valid, reason = check_json(output, SCHEMA)
    value = value if isinstance(value, dict) else {}
    ingredients = value.get("ingredients") if isinstance(value.get("ingredients"), list) else []
    directions = value.get("directions") if isinstance(value.get("directions"), list) else []
    directions_text = "\n".join(d for d in directions if isinstance(d, str))
    stats = {
        "json_valid": float(json_valid), "schema_valid": float(schema_valid),  # L1, L2
        "title": title_score(value.get("title"), sample.target["title"]),
        "ingredient_f1": ingredient_f1(ingredients, sample.target["ingredients"]),
        "directions_rougeL": rouge_f(directions_text, "\n".join(sample.target["directions"]), ("rougeL",))["rougeL"]
        if directions_text else 0.0,
    }
    checks = [
        (schema_valid, reason or "schema"),
        (stats["title"] >= TITLE_MIN_RATIO / 100, f"title {value.get('title')!r} vs {sample.target['title']!r}"),
        (stats["ingredient_f1"] >= INGREDIENT_MIN_F1, f"ingredient F1 {stats['ingredient_f1']:.2f} < {INGREDIENT_MIN_F1}"),
        (stats["directions_rougeL"] >= DIRECTIONS_MIN_ROUGE_L,
         f"directions ROUGE-L {stats['directions_rougeL']:.2f} < {DIRECTIONS_MIN_ROUGE_L}"),
    ]
    failed = [why for ok, why in checks if not ok]
    stats["l3_semantic"] = float(not failed)
    return SampleScore(sample.id, stats, "; ".join(failed) if failed else "correct")


# ---- RecipeNLG converter -------------------------------------------------------------------

OPENINGS = [
    "Here is how I make {title}.",
    "{title} is a recipe worth keeping close at hand.",
    "If you have never made {title}, this is a good place to start.",
    "My family asks for {title} more often than anything else.",
    "This version of {title} comes together without fuss.",
]
GATHER = [
    "You will need {items}.",
    "Gather {items} before you begin.",
    "The shopping list is short: {items}.",
    "It takes {items}.",
]
CONNECTORS = ["First,", "Then", "Next,", "After that,", "Once that is done,", "Finally,"]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def narrate(title: str, ingredients: list[str], directions: list[str]) -> str:
    """Deterministic prose for one recipe: the same row always gives the same paragraph.

    Ingredient strings appear verbatim; the wording varies with a hash of the title.
    """
    seed = zlib.crc32(title.encode("utf-8"))
    parts = [OPENINGS[seed % len(OPENINGS)].format(title=title),
             GATHER[(seed // 7) % len(GATHER)].format(items=_join(ingredients))]
    for index, step in enumerate(directions):
        step = step.strip()
        connector = CONNECTORS[-1] if index == len(directions) - 1 and index else CONNECTORS[min(index, 4)]
        parts.append(f"{connector} {step[:1].lower()}{step[1:]}" if step else "")
    return " ".join(p for p in parts if p)


def _json_list(value: str, where: str, field: str) -> list[str]:
    try:
        items = json.loads(value)
    except json.JSONDecodeError as error:
        raise DatasetError(f"{where}: field '{field}': not a JSON list: {error.msg}") from None
    if not isinstance(items, list) or not items or not all(isinstance(i, str) and i.strip() for i in items):
        raise DatasetError(f"{where}: field '{field}': must be a non-empty JSON list of strings")
    return [i.strip() for i in items]


def from_recipenlg_csv(path: str | Path) -> list[Sample]:
    """Read a RecipeNLG-format CSV (title, ingredients, directions, NER; lists as JSON strings)."""
    path = Path(path)
    samples = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"title", "ingredients", "directions", "NER"} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{path}:1: field '{sorted(missing)[0]}': missing column")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            title = (row["title"] or "").strip()
            if not title:
                raise DatasetError(f"{where}: field 'title': empty")
            ingredients = _json_list(row["ingredients"], where, "ingredients")
            directions = _json_list(row["directions"], where, "directions")
            ner = _json_list(row["NER"], where, "NER")
            target = {"title": title, "ingredients": ingredients, "directions": directions}
            samples.append(Sample(f"recipenlg-{reader.line_num}", narrate(title, ingredients, directions), target,
                                  {"source": "recipenlg", "ner": ner}))
    return samples


TASK = Task(
    name="recipes",
    version="2",
    prompt=prompt,
    schema=SCHEMA,
    judge=judge,
    metrics={
        "json_valid": mean_of("json_valid"), "schema_valid": mean_of("schema_valid"),  # L1, L2
        "l3_semantic": mean_of("l3_semantic"),
        "title": mean_of("title"), "ingredient_f1": mean_of("ingredient_f1"), "directions_rougeL": mean_of("directions_rougeL"),
    },
    thresholds={"json_valid": 0.9, "schema_valid": 0.8, "l3_semantic": 0.5},
    headline="l3_semantic",
    max_new_tokens=384,
    # 1 worked example: one recipe and its JSON is ~360 tokens, so each example nearly doubles a
    # 200-token prompt; the first one shows the output format a base model lacks.
    fewshot_k=1,
)
