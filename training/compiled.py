"""Regional torch.compile for training: each decoder layer compiled on its own, shapes dynamic.

The profile (docs/performance.md) puts about a third of a CPU step outside the matmuls: norms,
residual adds, the LoRA branches' scaling and adds, activations. Those are short elementwise ops
that each read and write the activations again; Inductor fuses chains of them into single C++
loops. Compiling the whole training step lost (it recompiled per sequence length and spent minutes
before its first steps); compiling each decoder layer with dynamic shapes compiles one graph that
every layer of the model and every sequence length reuse. Kernels are cached on disk by Inductor
(``TORCHINDUCTOR_CACHE_DIR``), so later runs of the same model start warm.

``nn.Module.compile`` compiles in place (state-dict keys, PEFT saving and loading unchanged);
``uncompile`` puts the eager forward back, so a model used for generation after training does not
compile decode shapes, and clears Dynamo's cache for the next run in the same process.
"""

from __future__ import annotations

import torch


def cpp_compiler() -> str | None:
    """The C++ compiler Inductor builds CPU kernels with (``$CXX``, g++, clang++...), or None if there is none.

    Asks Inductor itself (a private module, the only place its search rules live), so the answer is
    the compiler the first training step would use.
    """
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        return get_cpp_compiler()
    except Exception:  # InvalidCxxCompiler, or a torch without that module: no compiled layers
        return None


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The model's repeated blocks: the classes transformers names in ``_no_split_modules``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    kinds = set(getattr(base, "_no_split_modules", None) or ())
    return [module for module in base.modules() if type(module).__name__ in kinds]


def compile_decoder_layers(model: torch.nn.Module) -> int:
    """Compile every decoder layer in place (dynamic shapes); returns how many were compiled."""
    layers = decoder_layers(model)
    for layer in layers:
        layer.compile(dynamic=True)
    return len(layers)


def uncompile(model: torch.nn.Module) -> None:
    """Back to the eager forward on every module `compile_decoder_layers` compiled.

    torch has no public inverse of ``nn.Module.compile``; it keeps the compiled callable in
    ``_compiled_call_impl`` and calls the eager one when that is None.
    """
    compiled = [module for module in model.modules() if getattr(module, "_compiled_call_impl", None) is not None]
    for module in compiled:
        module._compiled_call_impl = None
    if compiled:
        # Every compiled module shares one code object (Module._call_impl), and Dynamo stops compiling a
        # code object after 8 variants: `slmbench main` trains ten pairs in one process, so each pair
        # starts from an empty cache (Inductor's disk cache still spares the kernel builds)
        torch.compiler.reset()
