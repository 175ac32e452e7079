"""Compiled decoder layers train the adapter eager ones do (training/compiled.py).

One optimizer step in float32 on four examples of different lengths, eager and with every decoder
layer torch.compile'd (dynamic shapes): the LoRA gradients must agree to float32 tolerance, and
`uncompile` must leave no compiled forward behind for generation. Compiling is opt-in.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from slmbench.errors import TrainingConfigError
from slmbench.loading import load_model
from slmbench.tasks import TASKS
from slmbench.training.compiled import compile_decoder_layers, decoder_layers, uncompile
from slmbench.training.config import check_compiler, make_config, with_target_modules
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


def test_compile_is_off_by_default_and_without_a_cpp_compiler_asking_for_it_names_the_fix(monkeypatch):
    assert make_config(MODEL, "products", "fast").compile_layers is False
    config = make_config(MODEL, "products", "fast", compile_layers=True)
    monkeypatch.setattr("torch._inductor.config.cpp.cxx", ("/nonexistent/c++",))
    check_compiler(replace(config, compile_layers=False), on_cpu=True)  # not asked for: nothing to check
    with pytest.raises(TrainingConfigError, match="C\\+\\+ compiler.*--compile-layers"):
        check_compiler(config, on_cpu=True)
    with pytest.raises(TrainingConfigError, match="C\\+\\+ compiler"):  # before any model loads
        make_config(MODEL, "products", "fast", compile_layers=True)
    with pytest.raises(TrainingConfigError, match="compile_layers must be true or false"):
        make_config(MODEL, "products", "fast", compile_layers="yes")
