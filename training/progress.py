"""The Trainer's progress bar, showing loss and train tokens/s, and measuring that throughput."""

from __future__ import annotations

import time

from transformers import ProgressCallback


class TrainProgress(ProgressCallback):
    """Trainer's tqdm bar with `loss` and `tok/s` in its postfix and one line per validation.

    Throughput counts non-padding input tokens over the time spent inside optimizer steps
    (forward, backward, update), so evaluation and checkpointing do not dilute it.
    """

    def __init__(self):
        super().__init__()
        self.train_seconds = 0.0
        self.train_tokens = 0
        self._step_started = 0.0
        self._tokens_before = 0

    @property
    def tokens_per_sec(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = time.perf_counter()
        self._tokens_before = state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        self.train_seconds += time.perf_counter() - self._step_started
        self.train_tokens += state.num_input_tokens_seen - self._tokens_before
        super().on_step_end(args, state, control, **kwargs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        if "loss" in logs:
            self.training_bar.set_postfix(loss=f"{logs['loss']:.4f}", tok_s=f"{self.tokens_per_sec:.0f}", refresh=False)
        if "eval_loss" in logs:
            self.training_bar.write(f"epoch {logs.get('epoch', 0):.2f}: val loss {logs['eval_loss']:.4f}")
