"""`slmbench evaluate` and `slmbench infer` (slmbench/task_commands.py) on a tiny random model."""

import json

from slmbench.cli import main


def test_evaluate_prints_and_saves_metrics_with_every_output(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    output = tmp_path / "results.json"
    code = main(["evaluate", "--model", "tiny-random-llama", "--task", "iris", "--split", "val", "--limit", "3",
                 "--output", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "tiny-random-llama on iris (val: val.jsonl@" in printed and "| accuracy " in printed
    saved = json.loads(output.read_text())
    assert saved["data_set"].startswith("val.jsonl@") and saved["n"] == 3 and len(saved["samples"]) == 3 and saved["metrics"]["accuracy"]["value"] == 0.0
    assert saved["samples"][0]["explanation"]


def test_infer_prints_text_for_a_text_task(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    assert main(["infer", "--model", "tiny-random-llama", "--task", "products", "--document", "Blue enamel mug"]) == 0
    assert capsys.readouterr().out.strip()


def test_infer_reports_a_malformed_structured_input(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    document = tmp_path / "flower.json"
    document.write_text('{"sepal_length": "low"}')
    assert main(["infer", "--model", "tiny-random-llama", "--task", "iris", "--file", str(document)]) == 2
    assert "iris needs exactly the fields sepal_length, sepal_width, petal_length, petal_width" in capsys.readouterr().err


def test_infer_marks_garbage_json_output_instead_of_crashing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SLMBENCH_CACHE", str(tmp_path / "cache"))
    assert main(["infer", "--model", "tiny-random-llama", "--task", "it_entities", "--document", "Mario a Roma"]) == 0
    assert "(no valid JSON:" in capsys.readouterr().out


def test_slmbench_train_rejects_a_bad_config_before_loading_anything(capsys):
    assert main(["train", "--model", "smollm2-135m-instruct", "--task", "iris", "--lora-r", "0"]) == 2
    assert "lora_r must be a positive number, got 0" in capsys.readouterr().err


def test_the_command_line_and_a_warm_provision_load_neither_torch_nor_transformers():
    """`make main` runs `slmbench provision` on every call: warm, it only checks the cache, and
    importing torch and transformers for that cost about 12 s of a one-minute warm `make main`."""
    import subprocess
    import sys

    probe = ("import sys; from slmbench.cli import build_parser; build_parser(); "
             "import slmbench.gguf_models; print(sorted({'torch', 'transformers', 'sklearn'} & set(sys.modules)))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
