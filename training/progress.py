"""The Trainer's progress bar, showing loss and train tokens/s, and measuring that throughput.

In a longer job (`slmbench main`) the bar also names the pair it trains ("pair 3/10 gemma3-270m ×
recipes") and how long the whole job's training has left. Without a terminal (CI logs, `CI=true`)
there is no bar: whoever runs the training prints one line when it finishes.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

from tqdm.auto import tqdm
from transformers import ProgressCallback


@dataclass(frozen=True)
class PairStatus:
    """Where one training run sits in a job of several (`slmbench main`)."""

    index: int  # 1-based
    total: int  # pairs the job trains
    label: str  # "gemma3-270m × recipes"
    estimate: float  # seconds this pair should take, from the rates measured so far
    later: float  # seconds the pairs after this one should take


def quiet_output() -> bool:
    """True without a terminal to redraw a bar on (stderr is not a TTY) or in CI (`CI=true`)."""
    return not sys.stderr.isatty() or os.environ.get("CI", "").lower() in ("true", "1")


def pair_seconds_left(steps_done: int, steps_total: int, seconds: float, estimate: float) -> float:
    """Seconds a run has left: at its own pace once it made a step, else what is left of its estimate."""
    if steps_done > 0:
        return seconds / steps_done * max(steps_total - steps_done, 0)
    return max(estimate - seconds, 0.0)


def format_duration(seconds: float) -> str:
    """`45s`, `3m20s`, `1h05m`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class TrainProgress(ProgressCallback):
    """Trainer's tqdm bar with `loss` and `tok/s` in its postfix and one line per validation.

    Throughput counts non-padding input tokens over the time spent inside optimizer steps
    (forward, backward, update), so evaluation and checkpointing do not dilute it. Given a
    `pair`, the bar is named after it, shows the last val loss and the job's training time left
    instead of a line per validation, and is cleared when the run ends. `quiet` (default: no
    terminal, or CI) shows no bar at all.
    """

    def __init__(self, pair: PairStatus | None = None, quiet: bool | None = None):
        super().__init__()
        self.pair = pair
        self.quiet = quiet_output() if quiet is None else quiet
        self.train_seconds = 0.0
        self.train_tokens = 0
        self._step_started = 0.0
        self._tokens_before = 0
        self._train_started = 0.0
        self._val_loss: float | None = None

    @property
    def tokens_per_sec(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else 0.0

    def job_seconds_left(self, steps_done: int, steps_total: int) -> float:
        """This pair's time left at its pace so far, plus the estimate of the pairs after it."""
        elapsed = time.perf_counter() - self._train_started
        return pair_seconds_left(steps_done, steps_total, elapsed, self.pair.estimate) + self.pair.later

    def on_train_begin(self, args, state, control, **kwargs):
        self._train_started = time.perf_counter()
        self.current_step = 0
        if self.quiet or not state.is_world_process_zero:
            return
        name = f"pair {self.pair.index}/{self.pair.total} {self.pair.label}" if self.pair else None
        # a pair's bar is cleared at its end: the job prints the finished pair's line in its place
        self.training_bar = tqdm(total=state.max_steps, desc=name, leave=self.pair is None, dynamic_ncols=True)

    def on_step_begin(self, args, state, control, **kwargs):
        self._step_started = time.perf_counter()
        self._tokens_before = state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):
        self.train_seconds += time.perf_counter() - self._step_started
        self.train_tokens += state.num_input_tokens_seen - self._tokens_before
        if not self.quiet:
            super().on_step_end(args, state, control, **kwargs)

    def on_prediction_step(self, args, state, control, **kwargs):
        if not self.quiet:
            super().on_prediction_step(args, state, control, **kwargs)

    def on_train_end(self, args, state, control, **kwargs):
        if not self.quiet:
            super().on_train_end(args, state, control, **kwargs)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.training_bar is None or not logs:
            return
        if "eval_loss" in logs and self.pair:
            self._val_loss = logs["eval_loss"]
        elif "eval_loss" in logs:
            self.training_bar.write(f"epoch {logs.get('epoch', 0):.2f}: val loss {logs['eval_loss']:.4f}")
        if "loss" in logs:
            shown = {"loss": f"{logs['loss']:.4f}", "tok_s": f"{self.tokens_per_sec:.0f}"}
            if self.pair:
                shown["val"] = "-" if self._val_loss is None else f"{self._val_loss:.4f}"
                shown["job_left"] = format_duration(self.job_seconds_left(state.global_step, state.max_steps))
            # redrawn now: a bar that only redraws on tqdm's own schedule may never show it in a short run
            self.training_bar.set_postfix(shown, refresh=True)
