"""`slmbench evaluate` and `slmbench infer`: a model (plus adapter) on one task from the command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from tabulate import tabulate

from slmbench.atomic import write_json_atomic
from slmbench.console import positive_int
from slmbench.defaults import DEFAULT_BATCH_SIZE, DTYPE_NAMES
from slmbench.errors import DatasetError, OutputPathError
from slmbench.jsontext import parse_json_output
from slmbench.serving import add_backend_arguments, serving
from slmbench.prompting import FewShot, provenance as fewshot_provenance, shots_option
from slmbench.tasks import resolve_task
from slmbench.tasks.core import Sample, Task, check_input
from slmbench.tasks.data_sources import annotated_types, data_set_label, with_data


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registry name, local directory or hub id")
    parser.add_argument("--adapter", help="PEFT adapter directory (e.g. adapters/<model>/<task>/<preset>)")
    parser.add_argument("--task", required=True,
                        help="a built-in or installed task name, a task module (mypkg.tasks.invoices) or file")
    parser.add_argument("--data", help="your data instead of the task's fixtures: a JSON Lines file (it_entities: "
                                       "also .conll/.iob/.bio), or a folder of <split>.jsonl files")
    parser.add_argument("--dtype", default="bfloat16", choices=list(DTYPE_NAMES))
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--allow-download", action="store_true", help="let a hub model download (network)")
    add_backend_arguments(parser)
    parser.add_argument("--structured", action="store_true",
                        help="constrain a JSON task's outputs to its JSON Schema (structured outputs; on the hf backend "
                             "this needs `pip install 'slmbench[structured]'`)")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a model on a task split; print the metrics and save them (with every output) as JSON."""
    from slmbench.cache import GenerationCache  # torch and transformers load with the command, not the parser
    from slmbench.evaluation import evaluate
    from slmbench.loading import load_model

    task = with_data(resolve_task(args.task), args.data, args.split)
    if args.output:
        check_output_path(Path(args.output), "--output")  # before the work, not after it
    loaded = load_model(args.model, dtype=args.dtype, adapter=args.adapter, allow_download=args.allow_download,
                        defer_weights=args.backend != "hf")
    samples = task.samples(args.split)[:args.limit]
    fewshot = FewShot(args.fewshot, args.fewshot_seed)
    with serving(loaded, args) as server:
        evaluation = evaluate(loaded, task, samples, batch_size=args.batch_size,
                              cache=None if args.no_cache else GenerationCache(), fewshot=fewshot, server=server,
                              structured=args.structured)
    result = evaluation.result
    rows = [[name, f"{value:.4f}", "[{:.4f}, {:.4f}]".format(*result.intervals[name])] for name, value in result.values.items()]
    shots = f", {fewshot.k}-shot (seed {fewshot.seed})" if fewshot.k else ""
    shots += ", structured outputs" if evaluation.decoding.structured else ""
    data_set = data_set_label(task.data_path(args.split))
    print(f"{loaded.label} on {task.name} ({args.split}: {data_set}, N={result.n}{shots}, "
          f"{evaluation.run.cache_hits} from cache)")
    print(tabulate(rows, headers=["metric", "value", "95% CI"], tablefmt="github", disable_numparse=True))
    if args.output:
        write_json_atomic(Path(args.output), {
            "model": loaded.spec.name, "label": loaded.label, "adapter": str(args.adapter) if args.adapter else None,
            "adapter_hash": loaded.adapter_hash, "model_hash": loaded.weights_hash, "dtype": loaded.dtype,
            "task": task.name, "task_version": task.version, "split": args.split, "data_set": data_set,
            "annotated_types": annotated_types(samples), "n": result.n, "structured": evaluation.decoding.structured,
            "fewshot": fewshot_provenance(fewshot, [c.prompt for c in evaluation.run.completions], samples),
            "metrics": {name: {"value": v, "low": result.intervals[name][0], "high": result.intervals[name][1]}
                        for name, v in result.values.items()},
            "samples": [{"id": s.id, "output": c.text, "explanation": score.explanation, "stats": dict(score.stats)}
                        for s, c, score in zip(samples, evaluation.run.completions, result.scores)],
        })
        print(f"saved to {args.output}")
    return 0


def check_output_path(path: Path, option: str) -> None:
    """Refuse a results path that could not be written, before any model is loaded."""
    if path.is_dir():
        raise OutputPathError(f"{option} {path} is a directory; give a file path such as {path / 'results.json'}")
    parent = next((p for p in path.parents if p.exists()), Path("."))
    if not parent.is_dir():
        raise OutputPathError(f"{option} {path}: {parent} is a file, so no folder can be made there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{option} {path}: {parent} is not writable")


def cmd_infer(args: argparse.Namespace) -> int:
    """Run a model on your own input for a task; prints the task's JSON (pretty) or text."""
    from slmbench.loading import load_model

    task = with_data(resolve_task(args.task), args.data)
    loaded = load_model(args.model, dtype=args.dtype, adapter=args.adapter, allow_download=args.allow_download,
                        defer_weights=args.backend != "hf")
    with serving(loaded, args) as server:
        return _infer_each(args, task, loaded, server)


def _infer_each(args: argparse.Namespace, task: Task, loaded, server) -> int:
    from slmbench.evaluation import decoding_for
    from slmbench.generation import PROMPT_TOO_LONG, generate, prompt_overflow

    skipped: list[int] = []  # stdin lines that were not UTF-8
    for index, document in enumerate(_documents(args, skipped), start=1):
        sample = Sample(f"input-{index}", _task_input(task, document, f"input {index}"), None)
        completion = generate(loaded, [task.prompt(sample)], decoding_for(task, args.structured), batch_size=1,
                              progress=False,
                              server=server, schema=task.schema if task.is_json else None).completions[0]
        if completion.finish_reason == PROMPT_TOO_LONG:
            reason = prompt_overflow(loaded, completion.prompt_tokens, task.max_new_tokens)
            raise DatasetError(f"{args.file or f'input {index}'}: not generated: {reason}; shorten the input")
        print(_present(task, completion.text), flush=True)
    return 2 if skipped else 0


def _documents(args: argparse.Namespace, skipped: list[int]):
    if args.document is not None:
        return [args.document]
    if args.file is not None:
        try:
            return [Path(args.file).read_text(encoding="utf-8")]
        except (OSError, UnicodeDecodeError) as error:
            raise DatasetError(f"{args.file}: cannot read the input: {error}") from None
    return _interactive(skipped)


def _interactive(skipped: list[int]):
    """Non-empty stdin lines; a line that is not UTF-8 is reported, skipped and counted in `skipped`."""
    print("Type an input and press Enter (Ctrl-D to stop).", file=sys.stderr)
    for number, raw in enumerate(getattr(sys.stdin, "buffer", sys.stdin), start=1):
        try:
            line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError as error:
            print(f"slmbench: error: stdin line {number} is not UTF-8 text ({error.reason} at byte {error.start}); "
                  f"skipped", file=sys.stderr, flush=True)
            skipped.append(number)
            continue
        if line.strip():
            yield line.strip()


def _task_input(task: Task, document: str, where: str):
    """The task's input from text: as is for text inputs, parsed JSON for structured ones (iris)."""
    example = task.samples("test")[0].input
    if isinstance(example, str):
        return document
    try:
        value = json.loads(document)
    except json.JSONDecodeError as error:
        raise DatasetError(f"{where}: {task.name} takes a JSON object like {json.dumps(example)}: {error}") from None
    if not isinstance(value, dict) or set(value) != set(example):
        raise DatasetError(f"{where}: {task.name} needs exactly the fields {', '.join(example)}")
    check_input(value, task.input_schema, where)
    return value


def _present(task: Task, text: str) -> str:
    if not task.is_json:
        return text.strip()
    value, reason = parse_json_output(text)
    if reason:
        return f"(no valid JSON: {reason})\n{text.strip()}"
    return json.dumps(value, indent=2, ensure_ascii=False)


def add_commands(commands) -> None:
    """Register `evaluate` and `infer` on the `slmbench` subcommand parser."""
    evaluate_parser = commands.add_parser("evaluate", help=cmd_evaluate.__doc__)
    add_model_arguments(evaluate_parser)
    evaluate_parser.add_argument("--split", default="val", choices=["train", "val", "test"])
    evaluate_parser.add_argument("--limit", type=positive_int, help="only the first N samples")
    evaluate_parser.add_argument("--output", help="write metrics and outputs to this JSON file")
    evaluate_parser.add_argument("--no-cache", action="store_true", help="always generate")
    evaluate_parser.add_argument("--fewshot", type=shots_option, default=0, metavar="K",
                                 help="put K worked examples from the train split before each prompt (default 0)")
    evaluate_parser.add_argument("--fewshot-seed", type=int, default=0, metavar="SEED",
                                 help="seed that picks each sample's worked examples (default 0)")
    evaluate_parser.set_defaults(run=cmd_evaluate)

    infer_parser = commands.add_parser("infer", help=cmd_infer.__doc__)
    add_model_arguments(infer_parser)
    source = infer_parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--document", help="the input text (iris: a JSON object of the four features)")
    source.add_argument("--file", help="read the input from this file")
    source.add_argument("--interactive", action="store_true", help="one input per line from stdin")
    infer_parser.set_defaults(run=cmd_infer)
