"""`python -m rag eval`: retrieval quality and speed from the command line.

    python -m rag eval covid-qa --data ../shared/data/covid-qa/covidQA.json [--json OUT]
    python -m rag eval questions my-questions.csv --collection default [--json OUT]

Settings come from the environment as usual; `--chunk-tokens`, `--dense-weight` etc.
(or `--set NAME=VALUE` for any setting) override them for this run only. The summary
is printed; `--json OUT` also writes the figures (and, for a question set, every
question's result) to a file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ..covid_qa import run_covid_qa
from ..engine import DocChat
from ..errors import ConfigError
from ..evaluation import EvalReport, evaluate
from ..question_set import read_question_set
from ..settings import ENV_NAMES, Settings


def _progress(stage: str, done: int, total: int) -> None:
    end = "" if done < total else "\n"
    print(f"\r{stage}: {done}/{total}", end=end, file=sys.stderr, flush=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m rag eval", description="Evaluate retrieval.")
    sub = p.add_subparsers(dest="dataset", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", metavar="OUT", default=None, help="also write the figures here")
        mode = sp.add_mutually_exclusive_group()
        mode.add_argument(
            "--hybrid", dest="hybrid", action="store_true", default=None, help="dense + BM25"
        )
        mode.add_argument("--dense", dest="hybrid", action="store_false", help="dense search only")
        sp.add_argument("--dense-weight", type=float, default=None, help="0 = BM25 only, 1 = dense")
        sp.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="any setting, e.g. --set chunk_tokens=128 (repeatable)",
        )
        sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    sp = sub.add_parser("covid-qa", help="index COVID-QA in a temporary store and ask it")
    sp.add_argument("--data", required=True, type=Path, help="path to covidQA.json")
    sp.add_argument("--chunk-tokens", type=int, default=None)
    sp.add_argument("--chunk-overlap", type=int, default=None)
    sp.add_argument("--embedding-backend", default=None, help="torch or onnx-int8")
    sp.add_argument("--articles", type=int, default=None, help="only the first N articles")
    sp.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the dense-only and BM25-only runs on the same index",
    )
    common(sp)
    sp = sub.add_parser("questions", help="ask your own question set (CSV/JSONL) of a collection")
    sp.add_argument("file", type=Path)
    sp.add_argument("--collection", default=None)
    common(sp)
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    env = dict(os.environ)
    overrides = list(args.set)
    for field in ("chunk_tokens", "chunk_overlap", "embedding_backend", "hybrid", "dense_weight"):
        value = getattr(args, field, None)
        if value is not None:
            overrides.append(f"{field}={value}")
    for item in overrides:
        name, sep, value = item.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or name not in ENV_NAMES:
            raise ConfigError(f"--set {item!r}: expected NAME=VALUE with NAME one of the settings.")
        env[ENV_NAMES[name]] = value
    return Settings.from_env(env)


def print_report(r: EvalReport, title: str) -> None:
    d = r.to_dict()
    print(f"{title}: {r.questions} questions, {r.documents} documents, {r.chunks} chunks")
    for key in ("answer_in_context@4000", "answer_in_context@2000", "doc_hit@5", "mrr@10"):
        v = d[key]
        print(f"  {key:24} {'n/a' if v is None else f'{v:.4f}'}")
    print(f"  {'search_ms p50 / p95':24} {r.search_ms_p50:.1f} / {r.search_ms_p95:.1f}")
    if r.index_seconds:
        print(f"  {'index seconds':24} {r.index_seconds:.1f}")
    for name, b in dict(r.extra.get("baselines", {})).items():  # type: ignore[call-overload]
        print(f"  same index, {name} only: answer_in_context@4000 {b['answer_in_context@4000']}")
    print("  settings: " + ", ".join(f"{k}={v}" for k, v in r.settings.items()))


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    settings = settings_from(args)
    progress = None if args.quiet else _progress
    if args.dataset == "covid-qa":
        report = run_covid_qa(
            args.data,
            settings,
            articles=args.articles,
            baselines=not args.no_baselines,
            progress=progress,
        )
        print_report(report, "COVID-QA")
        payload = report.to_dict()
    else:
        try:
            data = args.file.read_bytes()
        except OSError as e:
            raise ConfigError(f"Cannot read {args.file}: {e.strerror or e}") from None
        questions = read_question_set(args.file.name, data)
        app = DocChat(settings, llm=None)
        report = evaluate(app, questions, collection=args.collection, progress=progress)
        print_report(report, args.file.name)
        payload = report.to_dict(with_results=True)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0
