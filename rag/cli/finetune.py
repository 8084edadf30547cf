"""`python -m rag finetune-data`: a fine-tuning set from a collection, without the browser.

Generates pairs with the configured LLM (resuming an earlier, interrupted run of the
same collection unless `--restart`), drops pairs that fail validation (no one
reviews them here, so they are counted and left out), and writes to `--out`:
train.jsonl and validation.jsonl (OpenAI chat fine-tuning format), pairs.jsonl (all
pairs with their sources, for review or `import`), and eval_questions.jsonl (the
grounded pairs as a retrieval evaluation question set).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.cli.prog import PROG
from rag.core.errors import ConfigError
from rag.core.files import write_atomic
from rag.core.settings import Settings
from rag.engine import DocChat
from rag.finetune.dataset import (
    build_training_set,
    default_system_prompt,
    drop_invalid,
    eval_questions_jsonl,
    pairs_jsonl,
    validate_pairs,
)
from rag.finetune.pairs import (
    GenerationProgress,
    discard_journal,
    generate_pairs,
    journal_path,
    select_chunks,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} finetune-data",
        description="Generate a fine-tuning set (JSONL) from a collection's chunks.",
    )
    p.add_argument("--collection", required=True, help="the collection to read")
    p.add_argument("--out", required=True, type=Path, help="directory for the JSONL files")
    p.add_argument("--per-chunk", type=int, default=3, help="questions per chunk (default 3)")
    p.add_argument("--sample", type=int, default=None, help="use N chunks, seeded sample")
    p.add_argument("--style", default="", help='answer style, e.g. "in the voice of a tutor"')
    p.add_argument("--decline", type=int, default=0, help="add N off-field refusal pairs")
    p.add_argument(
        "--base-model",
        default=None,
        help="model the set is checked for (default: the chat model, DOCCHAT_CHAT_MODEL)",
    )
    p.add_argument("--validation", type=float, default=0.2, help="validation share (0.2)")
    p.add_argument("--restart", action="store_true", help="forget pairs of earlier runs")
    return p


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if args.per_chunk < 1 or (args.sample is not None and args.sample < 1):
        raise ConfigError("--per-chunk and --sample must be at least 1.")
    app = DocChat.open(Settings.from_env())
    if app.llm is None:
        raise ConfigError(
            "finetune-data needs an LLM to write the pairs: set OPENAI_API_KEY or OPENAI_BASE_URL."
        )
    info = app.collection(args.collection)
    chunks = select_chunks(app.all_chunks(info.name), sample=args.sample)
    journal = journal_path(app.settings.data_dir, info.name)
    if args.restart:
        discard_journal(journal)
    field = f"the documents in the collection '{info.name}'"

    def show(p: GenerationProgress) -> None:
        print(
            f"\r{p.done}/{p.total} chunks, {p.pairs} pairs, "
            f"{p.prompt_tokens + p.completion_tokens:,} tokens",
            end="",
            file=sys.stderr,
            flush=True,
        )

    try:
        result = generate_pairs(
            chunks,
            app.llm,
            journal=journal,
            per_chunk=args.per_chunk,
            style=args.style,
            decline=args.decline,
            field=field,
            progress=show,
        )
    except KeyboardInterrupt:
        print("\ninterrupted: the pairs made so far are kept; run again to resume", file=sys.stderr)
        return 130
    print(file=sys.stderr)
    for _, reason in result.failed:
        print(f"skipped {reason} (run again to retry)", file=sys.stderr)
    system = default_system_prompt(field)
    base_model = args.base_model or app.settings.chat_model
    pairs = list(result.pairs)
    report = validate_pairs(pairs, system_prompt=system, model=base_model)
    kept = drop_invalid(pairs, report)
    if len(kept) < len(pairs):
        print(f"dropped {len(pairs) - len(kept)} pair(s) that failed validation", file=sys.stderr)
    training = build_training_set(
        kept, system_prompt=system, model=base_model, validation_fraction=args.validation
    )
    out: Path = args.out
    paths = training.write(out)
    write_atomic(out / "pairs.jsonl", pairs_jsonl(kept))
    write_atomic(out / "eval_questions.jsonl", eval_questions_jsonl(kept))
    for warning in training.report.warnings:
        print(f"warning: {warning.message}", file=sys.stderr)
    print(
        f"{training.train_examples} train + {training.validation_examples} validation examples "
        f"from {len(chunks)} chunk(s) ({result.resumed} from an earlier run); "
        f"{result.prompt_tokens:,} prompt + {result.completion_tokens:,} completion tokens"
    )
    for path in [*paths, out / "pairs.jsonl", out / "eval_questions.jsonl"]:
        print(f"wrote {path}")
    return 0
