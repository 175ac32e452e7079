"""Compiled decoder layers train the adapter eager ones do (training/compiled.py).

One optimizer step in float32 on four examples of different lengths, eager and with every decoder
layer torch.compile'd (dynamic shapes): the LoRA gradients must agree to float32 tolerance, and
`uncompile` must leave no compiled forward behind for generation. Auto (the default) compiles only
where it was measured to pay: CPU, a base of 50M+ parameters.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from slmbench.loading import load_model
from slmbench.tasks import TASKS
from slmbench.training.compiled import compile_decoder_layers, decoder_layers, uncompile
from slmbench.errors import TrainingConfigError
from slmbench.training.config import make_config, with_compile_choice, with_target_modules
from slmbench.training.data import ExampleSet, build_examples
from slmbench.training.lora import make_trainer, wrap_with_lora
from tests.test_accumulation import GradientSnapshot

MODEL = "tiny-random-llama"


def one_step_gradients(compiled: bool, tmp_path) -> tuple[dict, torch.nn.Module]:
    config = make_config(MODEL, "products", "fast", batch_size=4, micro_batch_size=2, max_steps=1,
                         bf16=False, lr=1e-3)
    loaded = load_model(MODEL, dtype="float32")
    examples = ExampleSet("train", build_examples(loaded, TASKS["products"], "train", 512).examples[:4], ())
    model = wrap_with_lora(loaded, with_target_modules(config, loaded.model.config.model_type))
    if compiled:
        assert compile_decoder_layers(model) == loaded.model.config.num_hidden_layers
    trainer, _ = make_trainer(model, config, examples, None, tmp_path / str(compiled), loaded.tokenizer.pad_token_id)
    snapshot = GradientSnapshot(model)
    trainer.add_callback(snapshot)
    trainer.train()
    return snapshot.steps[0], model


def test_compiled_layers_give_the_eager_gradients_and_uncompile_restores_eager(tmp_path):
    eager, _ = one_step_gradients(False, tmp_path)
    compiled, model = one_step_gradients(True, tmp_path)
    assert eager and set(compiled) == set(eager) and any(g.abs().sum() > 0 for g in eager.values())
    for name in eager:
        torch.testing.assert_close(compiled[name], eager[name], rtol=1e-3, atol=1e-6, msg=f"gradient of {name}")
    assert all(layer._compiled_call_impl is not None for layer in decoder_layers(model))
    uncompile(model)
    assert not any(getattr(m, "_compiled_call_impl", None) is not None for m in model.modules())


def test_compile_is_on_by_default_only_for_large_bases_on_cpu_and_an_explicit_choice_is_kept():
    config = make_config(MODEL, "products", "fast")
    assert config.compile_layers is None  # auto until the base is loaded
    assert with_compile_choice(config, 135_000_000, on_cpu=True).compile_layers is True
    assert with_compile_choice(config, 1_000_000, on_cpu=True).compile_layers is False
    assert with_compile_choice(config, 135_000_000, on_cpu=False).compile_layers is False  # unmeasured on GPU
    assert with_compile_choice(replace(config, compile_layers=False), 135_000_000, on_cpu=True).compile_layers is False
    with pytest.raises(TrainingConfigError, match="compile_layers"):
        make_config(MODEL, "products", "fast", compile_layers="yes")


def test_without_a_cpp_compiler_auto_is_off_and_asking_for_it_names_the_fix(monkeypatch):
    monkeypatch.setattr("torch._inductor.config.cpp.cxx", ("/nonexistent/c++",))
    config = make_config(MODEL, "products", "fast")
    assert with_compile_choice(config, 135_000_000, on_cpu=True).compile_layers is False
    with pytest.raises(TrainingConfigError, match="C\\+\\+ compiler.*--no-compile-layers"):
        with_compile_choice(replace(config, compile_layers=True), 135_000_000, on_cpu=True)
