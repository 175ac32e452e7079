"""LoRA fine-tuning recipe: set up, train, save. Read it top to bottom.

Run:  python -m slmbench.training --model smollm2-135m-instruct --task iris --preset fast
      torchrun --nproc_per_node N -m slmbench.training ...  or  accelerate launch -m slmbench.training ...
      (the Trainer places devices; batch_size is the step's examples over all processes, so N processes
      train the adapter one process would, tests/test_distributed.py)

The base model is loaded in float32 and wrapped with a PEFT LoRA adapter; bf16 autocast (on CPU
too) comes from TrainingArguments. Examples are the task's own prompt, rendered as the model sees
it at test time, followed by the reference completion and EOS; only completion tokens carry loss.
The val loss is measured after every epoch and the best epoch's adapter is the one kept.
`compile_layers` (off by default) torch.compile's each decoder layer for training (training/compiled.py).

Output, in `<out_root>/<model>/<task>/<preset>/` (out_root: argument, $SLMBENCH_ADAPTERS, or ./adapters):
    adapter_model.safetensors, adapter_config.json   the PEFT adapter (save_pretrained; README.md is PEFT's card)
    training_config.json   every setting, base weights hash, data hashes, versions, throughput, best epoch
    loss_history.json, loss.png   train loss per step, val loss per epoch
Everything is written to a hidden staging folder beside the target and renamed into place at the
end, so an interrupted run leaves no half-written adapter. Rerunning with the same settings, data
and base returns the finished adapter without training (unless force=True).
"""

from __future__ import annotations

import logging
import os
import platform
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import torch
from filelock import FileLock, Timeout
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import ProgressCallback, Trainer, TrainingArguments, set_seed

from slmbench.adapters import TRAINING_CONFIG, AdapterInfo, is_finished, read_adapter, weights_sha256
from slmbench.atomic import write_json_atomic
from slmbench.errors import AdapterError, SlmbenchWarning, TrainingConfigError
from slmbench.hashing import files_sha256
from slmbench.loading import LoadedModel, load_model
from slmbench.paths import adapters_root as default_adapters_root
from slmbench.registry import resolve
from slmbench.tasks import resolve_task
from slmbench.tasks.data_sources import with_data
from slmbench.training.compiled import compile_decoder_layers, uncompile
from slmbench.training.config import TrainConfig, accumulation, check_config, processes, with_target_modules
from slmbench.training.data import ExampleSet, PadCollator, StepSampler, build_examples, filler
from slmbench.training.loss import causal_lm_loss
from slmbench.training.progress import PairStatus, TrainProgress
from slmbench.training.report import describe_run, loss_history, plot_loss, replacement_reason

log = logging.getLogger(__name__)
CONFIG_FILE = TRAINING_CONFIG


@dataclass(frozen=True)
class TrainResult:
    """Where the adapter is and how its training went (read back from disk when reused)."""

    adapter_dir: Path
    reused: bool  # True: an adapter with the same fingerprint was found; nothing was trained
    wall_seconds: float  # of the run that trained the adapter
    train_tokens_per_sec: float
    best_epoch: float | None
    best_val_loss: float | None
    loaded: LoadedModel | None = field(default=None, repr=False, compare=False)  # trained model in memory
    replaced: str | None = None  # why an earlier adapter in the same folder was replaced; None if there was none


def adapters_root(out_root: str | Path | None = None) -> Path:
    """Where adapters go: `out_root`, else $SLMBENCH_ADAPTERS, else ./adapters (where the bench looks)."""
    return Path(out_root).expanduser() if out_root else default_adapters_root()


def adapter_dir_for(config: TrainConfig, out_root: str | Path | None = None) -> Path:
    """`<root>/<model>/<task>/<preset>` (`<preset>-seed<N>` for a seed other than 0), where `slmbench` finds adapters.

    Seeds sit side by side, so `--seeds 0,1,2` leaves `fast`, `fast-seed1` and `fast-seed2`: one
    variant (`lora-fast`) the leaderboard summarises across seeds.
    """
    folder = config.preset if config.seed == 0 else f"{config.preset}-seed{config.seed}"
    return adapters_root(out_root) / resolve(config.model).name / config.task / folder


def train(config: TrainConfig, out_root: str | Path | None = None, force: bool = False,
          pair: PairStatus | None = None) -> TrainResult:
    """Train (or find) the LoRA adapter for `config`; see the module docstring for what is written.

    `pair` places the run in a longer job (`slmbench main`): its progress bar names it and shows the job's time left.
    """
    started = time.perf_counter()
    check_config(config)
    task, target = with_data(resolve_task(config.task), config.data), adapter_dir_for(config, out_root)

    # --- setup: base model, examples, run identity
    loaded = load_model(config.model, dtype="float32")
    inference_attention = loaded.model.config._attn_implementation  # training may use another kernel
    config = with_target_modules(config, loaded.model.config.model_type)
    train_set = build_examples(loaded, task, "train", config.max_seq_len)
    val_set = build_examples(loaded, task, "val", config.max_seq_len)
    run = describe_run(config, loaded, task, train_set, val_set)
    previous = previous_adapter(target)
    if previous and not force and previous.training.get("fingerprint") == run["fingerprint"]:
        log.info("%s: same settings, data and base; reusing it (force=True retrains)", target)
        return result_from_record(target, previous.training, reused=True)
    replaced = replacement_reason(previous.training, run) if previous else None
    if replaced:
        log.warning("%s: the adapter there is replaced when this run finishes, kept until then (%s)",
                    target, replaced)
    model = wrap_with_lora(loaded, config)

    # --- train, in a staging folder renamed into place only when complete
    with staging_folder(target) as staging:
        trainer, progress = make_trainer(model, config, train_set, val_set, staging / "checkpoints",
                                         loaded.tokenizer.pad_token_id, pair)
        trainer.train()
        model = release_from_trainer(trainer).eval()
        model.get_base_model().set_attn_implementation(inference_attention)
        if not trainer.is_world_process_zero():
            return TrainResult(target, False, time.perf_counter() - started, progress.tokens_per_sec, None, None)

        # --- save: adapter, provenance, loss history and plot, then publish
        run = write_adapter_folder(staging, model, trainer, progress, run, time.perf_counter() - started)
        publish(staging, target)
    adapter_hash = files_sha256(sorted(target.glob("adapter_model.*")) + [target / "adapter_config.json"])
    trained = replace(loaded, model=model, adapter_dir=target, adapter_hash=adapter_hash)
    return replace(result_from_record(target, run, reused=False, loaded=trained), replaced=replaced)


def write_adapter_folder(staging: Path, model: PeftModel, trainer: Trainer, progress: TrainProgress, run: dict,
                         wall_seconds: float) -> dict:
    """Adapter (PEFT format), loss history and plot, and training_config.json; returns the latter's record."""
    # A base AutoPeftModelForCausalLM can load; our registry name stays in training_config.json.
    model.peft_config["default"].base_model_name_or_path = run["base_model_loadable"]
    model.save_pretrained(staging, save_embedding_layers=False)  # embeddings are never trained here
    shutil.rmtree(staging / "checkpoints")
    history = loss_history(trainer.state.log_history)
    write_json_atomic(staging / "loss_history.json", history)
    plot_loss(history, staging / "loss.png", f"{run['base_model_name']} LoRA {run['preset']} on {run['task']}")
    run = {**run, **run_results(trainer, progress, history, wall_seconds),
           "adapter_sha256": weights_sha256(staging)}  # checked on every load: damaged weights are refused
    write_json_atomic(staging / CONFIG_FILE, run)
    return run


def previous_adapter(target: Path) -> AdapterInfo | None:
    """The finished adapter already in `target`, if any (one with unreadable metadata is warned about and replaced)."""
    if not is_finished(target):
        return None
    try:
        return read_adapter(target)
    except AdapterError as error:
        warnings.warn(f"{error}; the adapter in {target} is replaced when this run finishes", SlmbenchWarning)
        return AdapterInfo(target, None, None, None, {"unreadable": str(error)})


def result_from_record(target: Path, record: dict, reused: bool, loaded: LoadedModel | None = None) -> TrainResult:
    return TrainResult(target, reused, record["wall_seconds"], record["train_tokens_per_sec"],
                       record["best_epoch"], record["best_val_loss"], loaded)


def wrap_with_lora(loaded: LoadedModel, config: TrainConfig) -> PeftModel:
    """The base model, on `config.attn_implementation`, with fresh LoRA adapters on `config.target_modules` (seeded).

    With `config.compile_layers` each decoder layer is compiled in place (`release_from_trainer` undoes it).
    """
    set_seed(config.seed)
    loaded.model.set_attn_implementation(config.attn_implementation)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules), task_type="CAUSAL_LM")
    try:
        model = get_peft_model(loaded.model, lora)
    except ValueError as error:
        raise TrainingConfigError(f"{loaded.spec.name}: LoRA target modules {', '.join(config.target_modules)} "
                                  f"do not fit: {str(error).splitlines()[0][:300]}") from None
    if config.compile_layers:
        compile_decoder_layers(model)
    return model


class CompletionLossTrainer(Trainer):
    """A Trainer whose loss is `causal_lm_loss`: completion tokens only, optionally completion-only logits.

    The loss of a pass is its completion-token sum over the completion tokens of the whole optimizer
    step (`num_items_in_batch`), so micro_batch_size never reweights tokens. The Trainer counts that
    number only for models it believes take loss kwargs, and divides a loss by the passes of the step
    unless told it is already scaled; both are set here, for every architecture, so neither is left
    to how a model's forward happens to be declared. Examples come in `StepSampler`'s order, so
    several processes (torchrun) train the adapter one process would.
    """

    loss_is_scaled_for_ga = None  # decided per pass by the Trainer: scaled exactly when num_items_in_batch is given

    def __init__(self, *args, completion_only_logits: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.completion_only_logits = completion_only_logits
        self.model_accepts_loss_kwargs = True  # makes the Trainer count num_items_in_batch over each step
        self._loss_shifts_labels = True  # ...over labels[:, 1:], the positions causal_lm_loss scores

    def _get_train_sampler(self, train_dataset=None):
        per_pass, processes = self.args.train_batch_size, self.args.world_size  # a pass: one dataloader batch
        lengths = [len(example["input_ids"]) for example in self.train_dataset[:-1]]  # the last one is the filler
        return StepSampler(lengths, per_pass * self.args.gradient_accumulation_steps * processes,
                           fill_to=per_pass * processes if processes > 1 else 1)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            # val loss: each batch's own token mean, averaged over the batches, on any number of
            # processes (the Trainer would divide by the count of every process's batch at once)
            num_items_in_batch = None
        loss = causal_lm_loss(model, inputs, self.completion_only_logits, num_items=num_items_in_batch)
        if num_items_in_batch is not None and self.args.average_tokens_across_devices:
            # num_items_in_batch is then the count over every process, and DDP averages the gradients
            # of the processes: scale back up by their number, as Trainer.compute_loss does
            loss = loss * self.accelerator.num_processes
        return (loss, {"loss": loss}) if return_outputs else loss


def training_arguments(config: TrainConfig, output_dir: Path, evaluate: bool) -> TrainingArguments:
    """TrainingArguments for `config`; `evaluate` turns on per-epoch val loss and best-epoch selection."""
    on_cpu = not torch.cuda.is_available()
    per_epoch = "epoch" if evaluate else "no"
    per_pass, passes = accumulation(config, processes())
    return TrainingArguments(
        output_dir=str(output_dir), num_train_epochs=config.epochs, max_steps=config.max_steps,
        per_device_train_batch_size=per_pass, gradient_accumulation_steps=passes, per_device_eval_batch_size=per_pass,
        learning_rate=config.lr, seed=config.seed, bf16=config.bf16, use_cpu=on_cpu,
        eval_strategy=per_epoch, save_strategy=per_epoch, load_best_model_at_end=evaluate,
        metric_for_best_model="eval_loss", greater_is_better=False, save_total_limit=1, save_only_model=True,
        logging_steps=1, include_num_input_tokens_seen="non_padding", disable_tqdm=False, report_to="none",
        remove_unused_columns=False, label_names=["labels"], prediction_loss_only=True,
        dataloader_pin_memory=not on_cpu,
    )


def make_trainer(model: torch.nn.Module, config: TrainConfig, train_set: ExampleSet, val_set: ExampleSet | None,
                 output_dir: Path, pad_token_id: int, pair: PairStatus | None = None,
                 ) -> tuple[CompletionLossTrainer, TrainProgress]:
    """The Trainer for one run, with the progress bar that also measures train tokens/s."""
    trainer = CompletionLossTrainer(
        model=model, args=training_arguments(config, output_dir, evaluate=val_set is not None),
        train_dataset=[*train_set.examples, filler(pad_token_id)],  # sampled only to top an epoch up (StepSampler)
        eval_dataset=val_set.examples if val_set else None,
        data_collator=PadCollator(pad_token_id), completion_only_logits=config.completion_only_logits,
    )
    progress = TrainProgress(pair)
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(progress)
    return trainer, progress


def release_from_trainer(trainer: Trainer) -> torch.nn.Module:
    """The trained model as a plain module again: eager layers, without accelerate's autocast forward wrapper.

    accelerate also marks a model it prepared and skips it ever after: a later Trainer on the same
    model object (the benchmark's) would silently run without its own autocast setting. Compiled
    layers go back to eager so generation afterwards does not compile decode shapes.
    """
    model = trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)
    model.__dict__.pop("_is_accelerate_prepared", None)
    uncompile(model)
    return model


def run_results(trainer: Trainer, progress: TrainProgress, history: dict, wall_seconds: float) -> dict:
    """What training_config.json records about how the run went."""
    best = history["best"]
    return {
        "wall_seconds": round(wall_seconds, 2), "train_seconds": round(progress.train_seconds, 2),
        "train_tokens": progress.train_tokens, "train_tokens_per_sec": round(progress.tokens_per_sec, 1),
        "steps": trainer.state.global_step, "best_epoch": best["epoch"] if best else None,
        "best_val_loss": best["loss"] if best else None, "device": str(trainer.args.device),
        "host": platform.node(),  # `slmbench main` estimates from the rates measured on this machine
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def publish(staging: Path, target: Path) -> None:
    """Move the finished staging folder to `target`, replacing an older adapter there."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        staging.rename(target)


@contextmanager
def staging_folder(target: Path) -> Iterator[Path]:
    """A hidden folder beside `target` to build the adapter in, removed on exit whatever happens.

    Every process of a torchrun job gets the same name (they must agree on where the Trainer's
    checkpoints are); only the main process locks, cleans and removes it.
    """
    staging = target.with_name(f".{target.name}.partial")
    if os.environ.get("RANK", "0") != "0":
        yield staging
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(staging) + ".lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise TrainingConfigError(f"another training is writing {target} (it holds {lock.lock_file}); "
                                  f"wait for it to finish") from None
    try:
        shutil.rmtree(staging, ignore_errors=True)  # left by a killed run
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)
