"""torchrun scales the training recipe out: two CPU processes (gloo) train the adapter one process trains.

The same `python -m slmbench.training` command runs once as one process and once under
`torchrun --nproc_per_node 2`; `--batch-size` is the optimizer step's examples over all processes,
so both take steps of 8 examples (one process: 4 passes of 2; two: 2 passes of 2 each). Float32
(--fp32) and no dropout (--lora-dropout 0) leave nothing random but the seeded order and LoRA init.
Two epochs of iris' 90 train examples (12 steps each, the last one short: 90 is not a multiple of
2 processes x 2 examples) show each of the three ways the runs drifted apart before: the Trainer
grouped examples by length over one process's share of a step, accelerate topped the short step
up with examples trained twice, and the val loss divided each process's batch by both batches'
token count.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[1]
TORCHRUN = Path(sys.executable).with_name("torchrun")
FLAGS = ["--model", "tiny-random-llama", "--task", "iris", "--preset", "fast", "--epochs", "2", "--batch-size", "8",
         "--micro-batch-size", "2", "--lora-dropout", "0", "--fp32"]


@pytest.fixture(scope="module")
def adapters(tmp_path_factory) -> dict[str, Path]:
    """The adapter folder of the one-process run and of the two-process run."""
    if not TORCHRUN.is_file():
        pytest.skip(f"no torchrun beside {sys.executable}")
    root = tmp_path_factory.mktemp("distributed")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    commands = {"one": [sys.executable, "-m", "slmbench.training"],
                "two": [str(TORCHRUN), "--nproc_per_node", "2", "-m", "slmbench.training"]}
    folders = {}
    for name, command in commands.items():
        result = subprocess.run([*command, *FLAGS, "--out", str(root / name)], env=env, cwd=root,
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{name} process(es):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        folders[name] = root / name / "tiny-random-llama" / "iris" / "fast"
    return folders


def test_two_processes_train_the_adapter_of_one(adapters):
    """Tolerance: float32 sums in another order (DDP's all-reduce of two halves against one process's
    four passes) differ by ~1e-7 relative, and Adam divides each update by the gradient's own scale,
    so the weights differ by ~1e-8 here (values ~0.1). A step with other examples, or a loss weighed
    differently, moves weights by the order of the learning rate (5e-4); 1e-6 is far below that."""
    one, two = (load_file(adapters[name] / "adapter_model.safetensors") for name in ("one", "two"))
    differences = {name: (two[name] - one[name]).abs().max().item() for name in one}
    worst = max(differences, key=differences.get)
    assert set(two) == set(one) and differences[worst] <= 1e-6, f"{worst} differs by up to {differences[worst]:.2e}"

def test_two_processes_log_the_losses_of_one(adapters):
    """Train loss per step (the step's completion-token mean) and val loss per epoch."""
    one, two = (json.loads((adapters[name] / "loss_history.json").read_text()) for name in ("one", "two"))
    assert [e["loss"] for e in two["train"] + two["val"]] == pytest.approx(
        [e["loss"] for e in one["train"] + one["val"]], rel=1e-5)
