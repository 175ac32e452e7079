"""Command-line front ends of training and merging; `slmbench train/merge` and `python -m slmbench.training` use them.

Examples:
    python -m slmbench.training --model smollm2-135m-instruct --task iris --preset fast
    python -m slmbench.training --model gemma3-270m --task recipes --preset quality --epochs 4 --out adapters
    python -m slmbench.training --model smollm2-135m-instruct,gemma3-270m --task all    # every missing adapter
    python -m slmbench.training merge adapters/smollm2-135m-instruct/iris/fast --out merged/smollm2-iris-fast

Heavy imports (torch, transformers) wait until a command runs, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from slmbench.training.config import DEFAULT_PRESET, PRESETS


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The `train` flags; unset tuning flags keep the preset's values."""
    parser.add_argument("--model", required=True,
                        help="registry name, local directory or hub id of the base model; comma-separate several")
    parser.add_argument("--task", required=True,
                        help="task to train on (its train split; val picks the best epoch): a name, a task module "
                             "(mypkg.tasks.invoices) or file (./tasks/invoices.py); comma-separate several, or 'all'. Each model x task pair gets its adapter, in that order; finished ones are "
                             "reused, so this also means 'train what is missing'")
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS),
                        help=f"starting values (default {DEFAULT_PRESET}); "
                             + "; ".join(f"{name}: lr {p.lr:g}, {p.epochs} epochs, batch {p.batch_size}, r {p.lora_r}"
                                         for name, p in PRESETS.items()))
    tuning = parser.add_argument_group("overrides of the preset")
    tuning.add_argument("--epochs", type=int)
    tuning.add_argument("--lr", type=float, help="peak learning rate")
    tuning.add_argument("--lora-r", type=int, help="adapter rank")
    tuning.add_argument("--lora-alpha", type=int, help="LoRA scaling numerator (default 2 * r)")
    tuning.add_argument("--lora-dropout", type=float, help="default 0 (see TrainConfig)")
    tuning.add_argument("--batch-size", type=int, help="examples per optimizer step")
    tuning.add_argument("--micro-batch-size", type=int,
                        help="examples per forward/backward pass, gradients accumulated to --batch-size "
                             "(default 4; lower it if training runs out of memory)")
    tuning.add_argument("--max-seq-len", type=int, help="longest example in tokens (default 512)")
    seeds = tuning.add_mutually_exclusive_group()
    seeds.add_argument("--seed", type=int, help="default 0")
    seeds.add_argument("--seeds", type=seed_list, metavar="0,1,2",
                       help="train one adapter per seed (folders <preset>, <preset>-seed1, ...); the leaderboard "
                            "shows each run and their mean with min-max and a t-interval over seeds")
    tuning.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (smoke runs)")
    tuning.add_argument("--target-modules", help="comma-separated layer names (default: by architecture)")
    tuning.add_argument("--full-logits", action="store_true",
                        help="compute logits at every position (slower; completion-only is the default)")
    tuning.add_argument("--fp32", action="store_true", help="no bf16 autocast (slower, reference numerics)")
    tuning.add_argument("--compile-layers", action="store_true",
                        help="torch.compile each decoder layer (faster on CPU; off by default, see docs/performance.md)")
    parser.add_argument("--data", help="a folder with train.jsonl and val.jsonl (it_entities: also .conll/.iob/.bio) "
                                       "to train on instead of the task's fixtures")
    parser.add_argument("--out", help="adapters root (default $SLMBENCH_ADAPTERS or ./adapters)")
    parser.add_argument("--force", action="store_true", help="train even if a matching adapter exists")
    parser.add_argument("--skip-trained", action="store_true",
                        help="skip a model x task pair that already has an adapter of any preset (the rule `make main` "
                             "and `slmbench main` follow: they train only the pairs that have none)")


def run_train(args: argparse.Namespace) -> int:
    """Train (or reuse) the adapter of each model x task pair and print where it is and how it went."""
    from slmbench.training.config import make_config
    from slmbench.training.lora import train

    exit_on_sigterm()
    configs = [  # every pair is checked before the first model loads
        make_config(
            model, task, args.preset, epochs=args.epochs, lr=args.lr, lora_r=args.lora_r,
            lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout, batch_size=args.batch_size,
            micro_batch_size=args.micro_batch_size,
            max_seq_len=args.max_seq_len, seed=seed, max_steps=args.max_steps,
            target_modules=args.target_modules, completion_only_logits=False if args.full_logits else None,
            bf16=False if args.fp32 else None, compile_layers=True if args.compile_layers else None, data=args.data)
        for model in comma_list(args.model, "--model") for task in task_list(args.task)
        for seed in (args.seeds or [args.seed])
    ]
    for config in configs:
        if args.skip_trained and (existing := trained_adapters(config, args.out)):
            print(f"{config.model} on {config.task}: skipped, already has {', '.join(map(str, existing))}", flush=True)
            continue
        result = train(config, out_root=args.out, force=args.force)
        if os.environ.get("RANK", "0") != "0":
            continue  # under torchrun, the main process reports
        how = ("reused (same settings, data and base; --force retrains)" if result.reused
               else f"trained, replacing the earlier adapter ({result.replaced})" if result.replaced
               else "trained (new adapter)")
        best = "n/a" if result.best_val_loss is None else f"{result.best_val_loss:.4f} (epoch {result.best_epoch:g})"
        print(f"{result.adapter_dir}: {how}; best val loss {best}; {result.train_tokens_per_sec:.0f} train tok/s; "
              f"{result.wall_seconds:.0f} s", flush=True)
        del result  # frees the trained model before the next pair loads its base
    return 0


def exit_on_sigterm() -> None:
    """Make SIGTERM (`kill`, a cancelled CI job) exit like Ctrl-C does: the staging folder is removed."""
    signal.signal(signal.SIGTERM, _exit_143)
    signal.signal(signal.SIGALRM, _exit_143)


def _exit_143(signum, frame) -> None:
    # Python ignores an exception raised inside a __del__ (seen: regex's Group.__del__ during a
    # tokenizer call), which would leave the run training on; there, retry 50 ms later instead.
    if frame is not None and frame.f_code.co_name == "__del__":
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        return
    sys.exit(128 + signal.SIGTERM)


def trained_adapters(config, out_root: str | None) -> list[Path]:
    """Finished adapters (any preset) of the config's model, task and seed; no model is loaded."""
    from slmbench.adapters import find_adapters
    from slmbench.training.lora import adapter_dir_for

    def same_seed(folder: Path) -> bool:
        return folder.name.endswith(f"-seed{config.seed}") if config.seed else "-seed" not in folder.name

    folder = adapter_dir_for(config, out_root)
    return [info.path for info in find_adapters(folder.parents[2], [folder.parts[-3]], [folder.parts[-2]])
            if same_seed(info.path)]


def seed_list(value: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2] (argparse type of --seeds)."""
    from slmbench.errors import SlmbenchError

    try:
        seeds = [int(item) for item in comma_list(value, "--seeds")]
    except (ValueError, SlmbenchError) as error:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, e.g. 0,1,2 ({error})") from None
    if any(seed < 0 for seed in seeds):
        raise argparse.ArgumentTypeError("seeds must be >= 0")
    return seeds


def comma_list(value: str, flag: str) -> list[str]:
    """`a,b` -> [a, b]; an empty item is an error naming the flag."""
    from slmbench.errors import TrainingConfigError

    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise TrainingConfigError(f"{flag} {value!r} has an empty name; separate names with single commas")
    return list(dict.fromkeys(items))


def task_list(value: str) -> list[str]:
    """The tasks named by --task: a comma list (names, modules, files), or 'all' for every registered task."""
    from slmbench.tasks import task_names

    return task_names() if value.strip() == "all" else comma_list(value, "--task")


def run_list(args: argparse.Namespace) -> int:
    """List the trained adapters under the adapters root with how their training went."""
    from tabulate import tabulate

    from slmbench.adapters import find_adapters
    from slmbench.paths import adapters_root

    root = Path(args.out).expanduser() if args.out else adapters_root()
    rows = [_listing_row(info) for info in find_adapters(root)]
    if not rows:
        print(f"no adapters under {root}; train one with `slmbench train --model M --task T`")
        return 0
    print(tabulate(rows, tablefmt="github", headers=["model", "task", "preset", "train examples", "steps",
                                                      "best val loss @ epoch", "train tok/s", "wall s", "finished"]))
    return 0


def _listing_row(info) -> list:
    record = info.training
    loss, epoch = record.get("best_val_loss"), record.get("best_epoch")
    best = "" if loss is None or epoch is None else f"{loss:.4f} @ {epoch:g}"
    tokens_per_sec = record.get("train_tokens_per_sec")
    seconds = record.get("wall_seconds")
    return [info.base_model_name, info.task, info.preset, record.get("train_examples"), record.get("steps"), best,
            "" if tokens_per_sec is None else f"{tokens_per_sec:.0f}", "" if seconds is None else f"{seconds:.0f}",
            record.get("finished_at")]


def add_merge_arguments(parser: argparse.ArgumentParser) -> None:
    """The `merge` flags."""
    parser.add_argument("adapter", metavar="ADAPTER_DIR", help="adapter directory (e.g. adapters/<model>/<task>/<preset>)")
    parser.add_argument("--out", required=True, help="directory for the merged model (replaced if an earlier merge)")


def run_merge(args: argparse.Namespace) -> int:
    """Merge the adapter into its base and print where the model is."""
    from slmbench.training.merge import merge_adapter

    out = merge_adapter(args.adapter, args.out)
    print(f"{out}: merged model; load it with load_model({str(out)!r}) or --model {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m slmbench.training [train flags]` or `python -m slmbench.training merge [merge flags]`."""
    from slmbench.console import run_command

    argv = sys.argv[1:] if argv is None else argv
    merging = bool(argv) and argv[0] == "merge"
    parser = argparse.ArgumentParser(prog="python -m slmbench.training" + (" merge" if merging else ""),
                                     description=(run_merge if merging else run_train).__doc__)
    (add_merge_arguments if merging else add_train_arguments)(parser)
    args = parser.parse_args(argv[1:] if merging else argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network at run time, as in `slmbench`
    return run_command(run_merge if merging else run_train, args)
