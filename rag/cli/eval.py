"""`python -m rag eval`: retrieval quality and speed from the command line.

    python -m rag eval covid-qa --data ../shared/data/covid-qa/covidQA.json [--json OUT]
    python -m rag eval sec-10-q --data ../shared/data/sec-10-q [--json OUT]
    python -m rag eval all [--covid-data PATH] [--sec-data PATH] [--without STEP] [--json OUT]
    python -m rag eval questions my-questions.csv --collection default [--json OUT]
    python -m rag eval claims [--dataset covid-qa|sec-10-q|all] [--data FILE.jsonl] [--json OUT]
    python -m rag eval tune --dataset covid-qa|sec-10-q [--json OUT] [--max-steps N]

Settings come from the environment as usual; `--chunk-tokens`, `--dense-weight` etc.
(or `--set NAME=VALUE` for any setting) override them for this run only. The summary
is printed; `--json OUT` also writes the figures (and, for a question set, every
question's result) to a file. `--without periods` (repeatable, or a comma list)
switches that retrieval adjustment off (rag/retrieval/adjustments.py, `STEPS`), to
measure what it brings. `eval all` runs every dataset of `rag.datasets.DATASETS` (a
new dataset is one entry there) and prints one table: its main measures under the
default search and dense-only and BM25-only search on the same index. `eval claims`
scores the claim check instead (eval_claims.py); `eval tune` measures tuning the
embedding model on a dataset's training documents (eval_tune.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from rag.cli import eval_claims, eval_tune
from rag.cli.prog import PROG
from rag.core.errors import ConfigError
from rag.core.settings import ENV_NAMES, Settings
from rag.datasets import DATASETS
from rag.engine import DocChat
from rag.evaluation.measures import EvalReport
from rag.evaluation.question_set import read_question_set
from rag.evaluation.runs import evaluate
from rag.retrieval.adjustments import STEP_NAMES, STEPS
from rag.retrieval.options import unknown_steps


def _progress(stage: str, done: int, total: int) -> None:
    end = "" if done < total else "\n"
    print(f"\r{stage}: {done}/{total}", end=end, file=sys.stderr, flush=True)


def _steps(value: str) -> frozenset[str]:
    """The adjustments named by one `--without` (a comma list), all known."""
    names = frozenset(n.strip().lower() for n in value.split(",") if n.strip())
    unknown = unknown_steps(names)
    if unknown or not names:
        known = ", ".join(STEP_NAMES)
        raise argparse.ArgumentTypeError(f"{value!r}: expected some of {known}")
    return names


def without_from(args: argparse.Namespace) -> frozenset[str]:
    """Every adjustment the `--without` options name."""
    return frozenset().union(*args.without)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG} eval", description="Evaluate retrieval.")
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
        sp.add_argument(
            "--without",
            action="append",
            type=_steps,
            default=[],
            metavar="STEP",
            help="switch a retrieval adjustment off (repeatable, or a comma list): "
            + "; ".join(f"{s.name}: {s.summary}" for s in STEPS),
        )
        sp.add_argument("--quiet", action="store_true", help="no progress on stderr")

    def tuning(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--chunk-tokens", type=int, default=None)
        sp.add_argument("--chunk-overlap", type=int, default=None)
        sp.add_argument("--embedding-backend", default=None, help="torch or onnx-int8")

    for d in DATASETS.values():
        sp = sub.add_parser(
            d.name, help=f"index {d.title} ({d.description}) in a temporary store and ask it"
        )
        sp.add_argument("--data", type=Path, default=d.data, help=f"default {d.data}")
        sp.add_argument(d.limit_flag, dest="limit", type=int, default=None, help=d.limit_help)
        sp.add_argument(
            "--no-baselines",
            action="store_true",
            help="skip the dense-only and BM25-only runs on the same index",
        )
        tuning(sp)
        common(sp)
    sp = sub.add_parser("all", help="every dataset, one table (default, dense, BM25)")
    for d in DATASETS.values():
        sp.add_argument(
            f"--{d.option}-data", type=Path, default=d.data, help=f"{d.title}, default {d.data}"
        )
    sp.add_argument("--limit", type=int, default=None, help="first N documents of each set")
    tuning(sp)
    common(sp)
    sp = sub.add_parser("questions", help="ask your own question set (CSV/JSONL) of a collection")
    sp.add_argument("file", type=Path)
    sp.add_argument("--collection", default=None)
    common(sp)
    eval_claims.add_parser(sub, tuning, common)
    eval_tune.add_parser(sub, tuning, common)
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


def _fmt(v: object) -> str:
    return "n/a" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)


def print_report(r: EvalReport, title: str) -> None:
    d = r.to_dict()
    print(f"{title}: {r.questions} questions, {r.documents} documents, {r.chunks} chunks")
    n = {"doc_hit@5": r.with_source}
    for key, v in r.measures().items():
        print(f"  {key:24} {_fmt(v):7} (n={n.get(key, r.with_answer)})")
    print(f"  {'search_ms p50 / p95':24} {r.search_ms_p50:.1f} / {r.search_ms_p95:.1f}")
    if "files" in d:
        print(f"  {'files indexed':24} {d['files_indexed']} of {d['files']}, {d['pages']} pages")
        for file, why in dict(d.get("rejected") or {}).items():  # type: ignore[call-overload]
            print(f"    rejected {file}: {why}")
    if r.index_seconds:
        print(f"  {'index seconds':24} {r.index_seconds:.1f} ({d.get('pages_per_s')} pages/s)")
    for name, b in dict(r.extra.get("baselines", {})).items():  # type: ignore[call-overload]
        shown = ", ".join(f"{k} {_fmt(v)}" for k, v in b.items() if "@4000" in k or "@5" in k)
        ms = f"search_ms p50 / p95 {b['search_ms_p50']} / {b['search_ms_p95']}"
        print(f"  same index, {name} only: {shown}, {ms}")
    print("  settings: " + ", ".join(f"{k}={v}" for k, v in r.settings.items()))


def table_rows(reports: dict[str, EvalReport]) -> list[dict[str, object]]:
    """One row per dataset and main measure: default search, dense, BM25, and the
    default's margin over the better of the two."""
    rows: list[dict[str, object]] = []
    for d in DATASETS.values():
        if d.name not in reports:
            continue
        r = reports[d.name]
        base: dict[str, dict[str, object]] = dict(r.extra.get("baselines", {}))  # type: ignore[call-overload]
        for m in d.measures:
            hyb, dense, bm25 = r.measures().get(m), base["dense"].get(m), base["bm25"].get(m)
            vs = [v for v in (dense, bm25) if isinstance(v, float)]
            margin = round(hyb - max(vs), 4) if isinstance(hyb, float) and vs else None
            n = r.with_source if m == "doc_hit@5" else r.with_answer
            rows.append(
                {"dataset": d.title, "measure": m, "hybrid": hyb, "dense": dense}
                | {"bm25": bm25, "margin": margin, "n": n}
            )
    return rows


def print_table(rows: Sequence[dict[str, object]]) -> None:
    cols = ("dataset", "measure", "hybrid", "dense", "bm25", "margin", "n")
    widths = (10, 24, 7, 7, 7, 7, 5)
    for cells in [list(cols), *([_fmt(row[c]) for c in cols] for row in rows)]:
        print("  ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)).rstrip())


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    settings = settings_from(args)
    progress = None if args.quiet else _progress
    without = without_from(args)
    payload: dict[str, object]
    if args.dataset == "all":
        reports = {}
        for d in DATASETS.values():
            path = getattr(args, f"{d.option}_data")
            reports[d.name] = r = d.run(path, settings, args.limit, True, progress, without)
            print_report(r, d.title)
        rows = table_rows(reports)
        print()
        print_table(rows)
        payload = {"table": rows, "datasets": {k: r.to_dict() for k, r in reports.items()}}
    elif args.dataset in DATASETS:
        d = DATASETS[args.dataset]
        baselines = not args.no_baselines
        report = d.run(args.data, settings, args.limit, baselines, progress, without)
        print_report(report, d.title)
        payload = report.to_dict()
    elif args.dataset == "claims":
        payload = eval_claims.run(args, settings, progress, argv)
    elif args.dataset == "tune":
        payload = eval_tune.run(args, settings, progress, sorted(without), argv)
    else:
        try:
            data = args.file.read_bytes()
        except OSError as e:
            raise ConfigError(f"Cannot read {args.file}: {e.strerror or e}") from None
        questions = read_question_set(args.file.name, data)
        app = DocChat.open(settings.without_llm())
        report = evaluate(
            app, questions, collection=args.collection, progress=progress, without=without
        )
        print_report(report, args.file.name)
        payload = report.to_dict(with_results=True)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {out}")
    return 0
