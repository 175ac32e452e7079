"""Few-shot prompts (slmbench/prompting.py): the draw, the rendering, the cache key and the CLI."""

import json
from pathlib import Path

import pytest

from slmbench.bench.samples_log import read_run
from slmbench.cache import GenerationCache, generation_key
from slmbench.cli import main
from slmbench.errors import DatasetError
from slmbench.evaluation import decoding_for, evaluate
from slmbench.loading import load_model
from slmbench.prompting import FewShot, FewShotPrompt, chat_messages, pick_examples, plain_text, task_prompts
from slmbench.tasks import TASKS
from slmbench.tasks.core import Sample
from slmbench.tasks.data_sources import data_set_label
from slmbench.training.data import build_examples

IRIS, ENTITIES, BIOQA = TASKS["iris"], TASKS["it_entities"], TASKS["bioqa"]
BENCH = Path(__file__).resolve().parents[1] / "bench"


def _pool(n: int) -> list[Sample]:
    return [Sample(f"train-{i:02d}", f"text number {i}", f"answer {i}") for i in range(n)]


def test_examples_never_include_the_sample_or_an_identical_input():
    pool = _pool(6)
    sample = Sample("train-03", "text number 3", "answer 3")  # benching the train split: it is in the pool
    twin = Sample("train-99", "  text number 3 ", "another answer")  # same input under another id
    for seed in range(50):
        picked = pick_examples(sample, [*pool, twin], 5, seed)
        assert {e.id for e in picked} == {"train-00", "train-01", "train-02", "train-04", "train-05"}


def test_structured_inputs_compare_by_value():
    features = {"petal_length": "low", "petal_width": "low"}
    pool = [Sample("a", dict(reversed(features.items())), {"species": "setosa"}),
            Sample("b", {**features, "petal_width": "high"}, {"species": "virginica"})]
    assert [e.id for e in pick_examples(Sample("q", features, None), pool, 1, 0)] == ["b"]


def test_the_draw_is_fixed_by_seed_and_sample_not_by_the_other_samples():
    train, test = ENTITIES.samples("train"), ENTITIES.samples("test")
    first = task_prompts(ENTITIES, test[:5], FewShot(3, seed=0))
    assert task_prompts(ENTITIES, test[:5], FewShot(3, seed=0)) == first
    assert task_prompts(ENTITIES, test[4:5], FewShot(3, seed=0))[0] == first[4]  # --bench-limit does not matter
    other_seed = task_prompts(ENTITIES, test[:5], FewShot(3, seed=1))
    assert [p.example_ids for p in other_seed] != [p.example_ids for p in first]
    assert all(len(set(p.example_ids)) == 3 and set(p.example_ids) <= {s.id for s in train} for p in first)


def test_a_few_shot_prompt_holds_the_examples_reference_answers_then_the_query():
    sample = ENTITIES.samples("test")[0]
    (prompt,) = task_prompts(ENTITIES, [sample], FewShot(2, seed=7))
    train = {s.id: s for s in ENTITIES.samples("train")}
    examples = [train[i] for i in prompt.example_ids]
    assert prompt.examples == tuple((ENTITIES.prompt(e), ENTITIES.completion(e)) for e in examples)
    assert prompt.query == ENTITIES.prompt(sample)
    assert sample.input not in "".join(p + c for p, c in prompt.examples)


def test_zero_shot_is_the_plain_task_prompt():
    samples = IRIS.samples("test")[:3]
    assert task_prompts(IRIS, samples, FewShot(0)) == task_prompts(IRIS, samples) == [IRIS.prompt(s) for s in samples]


def test_chat_models_get_turns_and_base_models_text():
    prompt = FewShotPrompt((("Q1", "A1"), ("Q2", "A2")), "Q3", ("x", "y"))
    assert chat_messages(prompt) == [
        {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "A2"},
        {"role": "user", "content": "Q3"}]
    assert plain_text(prompt) == "Q1 A1\n\nQ2 A2\n\nQ3"
    assert chat_messages("Q") == [{"role": "user", "content": "Q"}] and plain_text("Q") == "Q"


def test_models_render_the_examples_in_their_own_format():
    prompt = FewShotPrompt((("Which species?", '{"species": "setosa"}'),), "Which one now?", ("e",))
    chat = load_model("tiny-random-qwen2", dtype="float32")
    rendered = chat.render(prompt)
    assert chat.chat and rendered == chat.tokenizer.apply_chat_template(chat_messages(prompt), tokenize=False,
                                                                        add_generation_prompt=True)
    assert rendered.index("Which species?") < rendered.index('{"species": "setosa"}') < rendered.index("Which one now?")
    base = load_model("tiny-random-llama", dtype="float32")
    assert not base.chat and base.render(prompt) == 'Which species? {"species": "setosa"}\n\nWhich one now?'


def test_the_examples_are_part_of_the_cache_key():
    loaded = load_model("tiny-random-llama", dtype="float32")
    sample = IRIS.samples("test")[0]
    decoding = decoding_for(IRIS)
    keys = {generation_key(loaded, loaded.render(prompt), decoding) for prompt in (
        IRIS.prompt(sample), *task_prompts(IRIS, [sample], FewShot(3, 0)), *task_prompts(IRIS, [sample], FewShot(3, 1)),
        *task_prompts(IRIS, [sample], FewShot(2, 0)))}
    assert len(keys) == 4


def test_too_few_examples_is_a_clear_error():
    with pytest.raises(DatasetError, match="3 examples wanted for sample q, but the train split has only 2"):
        pick_examples(Sample("q", "text", "t"), _pool(2), 3, 0)
    with pytest.raises(ValueError, match="few-shot K must be 0 or more"):
        FewShot(-1)


def test_evaluate_records_the_examples_and_training_keeps_the_zero_shot_prompt(cache):
    loaded = load_model("tiny-random-llama", dtype="float32")
    samples = IRIS.samples("val")[:2]
    evaluation = evaluate(loaded, IRIS, samples, cache=cache, fewshot=FewShot(2, seed=5), resamples=0)
    prompts = [c.prompt for c in evaluation.run.completions]
    assert prompts == task_prompts(IRIS, samples, FewShot(2, seed=5)) and all(p.examples for p in prompts)
    examples = build_examples(loaded, IRIS, "val", max_seq_len=512).examples
    prompt_ids = [i for i, label in zip(examples[0]["input_ids"], examples[0]["labels"]) if label == -100]
    assert loaded.tokenizer.decode(prompt_ids, skip_special_tokens=True) == IRIS.prompt(IRIS.samples("val")[0])


def test_slmbench_evaluate_takes_fewshot_and_saves_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    output = tmp_path / "results.json"
    assert main(["evaluate", "--model", "tiny-random-llama", "--task", "iris", "--split", "val", "--limit", "2",
                 "--fewshot", "3", "--fewshot-seed", "4", "--output", str(output)]) == 0
    data_set = data_set_label(TASKS["iris"].data_path("val"))
    assert f"tiny-random-llama on iris (val: {data_set}, N=2, 3-shot (seed 4)" in capsys.readouterr().out
    saved = json.loads(output.read_text())["fewshot"]
    assert saved["k"] == 3 and saved["seed"] == 4 and len(saved["example_ids"]["iris-val-001"]) == 3
    with pytest.raises(SystemExit):
        main(["evaluate", "--model", "tiny-random-llama", "--task", "iris", "--fewshot", "-1"])
    assert "'-1' is not a number of worked examples (0 or more)" in capsys.readouterr().err


def _answer(sample: Sample, right: bool) -> str:
    return sample.target if right else "zzz"  # ROUGE-L 1 or 0


def _put_outputs(loaded, prompts, outputs) -> None:
    """Store outputs in the generation cache under the keys the bench will look up."""
    store = GenerationCache()
    for prompt, text in zip(prompts, outputs):
        store.put(generation_key(loaded, loaded.render(prompt), decoding_for(BIOQA)),
                  {"text": text, "prompt_tokens": 1, "completion_tokens": 1, "finish_reason": "eos", "seconds": 0.0})


def _adapter(root: Path) -> Path:
    from peft import LoraConfig, get_peft_model

    directory = root / "tiny-random-llama" / "bioqa" / "fast"
    model = get_peft_model(load_model("tiny-random-llama", dtype="float32").model,
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    model.peft_config["default"].base_model_name_or_path = "tiny-random-llama"
    model.save_pretrained(directory)
    (directory / "training_config.json").write_text(
        json.dumps({"base_model_name": "tiny-random-llama", "task": "bioqa", "preset": "fast"}))
    return directory


@pytest.mark.parametrize("shot_right, zero_right, adapter_right, best, delta", [
    ([1, 1, 1, 1], [0, 0, 0, 0], [1, 1, 0, 0], "tiny-random-llama+2shot::bioqa", -0.5),  # K-shot beats 0-shot
    ([0, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1], "tiny-random-llama::bioqa", 0.25),  # 0-shot beats K-shot
])
def test_the_adapter_delta_is_against_the_best_base_row(pytester, tmp_path, monkeypatch, shot_right, zero_right,
                                                        adapter_right, best, delta):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SLMBENCH_ADAPTERS", str(tmp_path / "adapters"))
    adapter = _adapter(tmp_path / "adapters")
    samples = BIOQA.samples("test")[:4]
    base, adapted = load_model("tiny-random-llama", dtype="float32"), load_model("tiny-random-llama", "float32", adapter)
    _put_outputs(base, task_prompts(BIOQA, samples, FewShot(2, 0)), map(_answer, samples, shot_right))
    _put_outputs(base, task_prompts(BIOQA, samples), map(_answer, samples, zero_right))
    _put_outputs(adapted, task_prompts(BIOQA, samples), map(_answer, samples, adapter_right))
    board = tmp_path / "lb.json"
    result = pytester.runpytest(str(BENCH), "-p", "no:cacheprovider", "--bench-models", "tiny-random-llama",
                                "--bench-tasks", "bioqa", "--bench-limit", "4", "--bench-dtype", "float32",
                                "--bench-fewshot", "2", "--bench-classical", "none", "--bench-store", "none",
                                "--bench-leaderboard", str(tmp_path / "lb.md"), "--bench-json", str(board),
                                "-k", "not tokens_per_sec")
    assert "error" not in result.parseoutcomes()  # every case, K-shot included, wrote its per-sample log
    logs = {row["case_id"]: row for rows in read_run(next((tmp_path / "results").iterdir())).values() for row in rows}
    assert len(logs["tiny-random-llama+2shot::bioqa"]["fewshot_ids"]) == 2
    rows = {r["case_id"]: r for r in json.loads(board.read_text())["rows"]}
    assert [r["speed"]["cache_hits"] for r in rows.values()] == [4, 4, 4]  # every output is an injected one
    (found,) = json.loads(board.read_text())["deltas"]
    assert found["base_case_id"] == best and found["chosen_by"] == "rougeL"
    assert found["metrics"]["rougeL"]["value"] == pytest.approx(delta)
    assert f"| Δ vs {rows[best]['variant']}" in (tmp_path / "lb.md").read_text()
