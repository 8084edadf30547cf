"""What each retrieval adjustment brings: every step switched off in turn, on one index.

    .venv/bin/python benchmarks/ablate.py [--json OUT] [--dataset covid-qa|sec-10-q|all]
        [--covid-data PATH] [--sec-data PATH] [--limit N]

The adjustments are the named steps of rag/retrieval/adjustments.py (`STEPS`), on top
of dense + BM25 fusion. Per dataset of `rag.datasets.DATASETS`, this indexes the
documents ONCE in a temporary store with the default settings, then asks every
question on that index: with the default search, with each step switched off alone
(`evaluate(..., without=...)`, what `python -m rag eval ... --without NAME` runs), and
with all of them off. It prints each run's main measures and, with `--json`, writes
every run's measures (`EvalReport.measures()`, with the questions each counts and the
search times), the settings and the command line.

Why one index: Chroma's approximate index and the int8 embeddings differ slightly from
one indexing of the same files to the next (a COVID-QA question or so, one SEC 10-Q
question), which is as large as some steps' effect. Separate `eval --without` runs
would each build their own index; here every run differs from the default by the step
alone.

Left out: the dense-only and BM25-only baselines (`python -m rag eval all` gives them,
and no step touches them), and steps switched off in pairs.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from rag import Settings
from rag.datasets import DATASETS, Dataset
from rag.evaluation.measures import EvalReport
from rag.evaluation.runs import brief, corpus_index, evaluate
from rag.retrieval.adjustments import STEP_NAMES

ROOT = Path(__file__).resolve().parents[1]  # the registry's data paths start here


def runs() -> list[tuple[str, tuple[str, ...]]]:
    """(name, steps switched off): the default, each step alone, then all of them."""
    return [("default", ()), *((n, (n,)) for n in STEP_NAMES), ("all", STEP_NAMES)]


def run_record(name: str, without: tuple[str, ...], r: EvalReport) -> dict[str, object]:
    return {"run": name, "without": list(without), **brief(r)}


def ablate_dataset(
    d: Dataset, path: Path, settings: Settings, limit: int | None
) -> tuple[dict[str, object], dict[str, object]]:
    """Index one dataset in a throw-away data dir (`corpus_index`, as `python -m rag
    eval` does) and ask its questions once per run: (the dataset's record, the
    settings that shaped the hits)."""
    articles, questions = d.load(path, limit)

    def indexing(stage: str, done: int, total: int) -> None:
        print(f"\r{d.title}: {stage} {done}/{total}", end="", file=sys.stderr)

    with corpus_index(d.name, articles, questions, settings, allow_rejected=True,
                      progress=indexing) as corpus:  # fmt: skip
        print(f"\n{d.title}: indexed in {corpus.index_seconds:.0f} s", file=sys.stderr, flush=True)
        reports: list[EvalReport] = []
        for name, without in runs():
            reports.append(r := evaluate(corpus.app, questions, without=without))
            shown = ", ".join(f"{m} {r.measures()[m]}" for m in d.measures)
            print(f"{d.title}: {name}: {shown}", file=sys.stderr, flush=True)
        loaded = corpus.loaded()
    print_table(d, reports)
    first = reports[0]
    record: dict[str, object] = {
        "title": d.title,
        "measures": list(d.measures),  # the main ones, for the report's table
        "questions": first.questions,
        "questions_with_answer": first.with_answer,
        "questions_with_source": first.with_source,
        "documents": first.documents,
        "chunks": first.chunks,
        **{k: loaded[k] for k in ("files", "files_indexed", "rejected")},
        "index_seconds": round(corpus.index_seconds, 1),
        "runs": [run_record(n, wo, r) for (n, wo), r in zip(runs(), reports, strict=True)],
    }
    return record, dict(first.settings)


def print_table(d: Dataset, reports: Sequence[EvalReport]) -> None:
    """One line per run: the dataset's main measures."""
    print(d.title)
    print("  " + "run".ljust(14) + "".join(m.ljust(26) for m in d.measures).rstrip())
    for (name, _), r in zip(runs(), reports, strict=True):
        cells = "".join(str(r.measures()[m]).ljust(26) for m in d.measures)
        print("  " + name.ljust(14) + cells.rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--json", metavar="OUT", type=Path, default=None, help="write the figures")
    p.add_argument("--dataset", choices=[*DATASETS, "all"], default="all")
    for d in DATASETS.values():
        p.add_argument(
            f"--{d.option}-data", type=Path, default=ROOT / d.data, help=f"{d.title} data"
        )
    p.add_argument("--limit", type=int, default=None, help="first N documents of each set")
    args = p.parse_args(args_in)
    started = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    settings = Settings.from_env()
    chosen = [d for d in DATASETS.values() if args.dataset in ("all", d.name)]
    datasets: dict[str, dict[str, object]] = {}
    used: dict[str, object] = {}
    for d in chosen:
        datasets[d.name], used = ablate_dataset(
            d, getattr(args, f"{d.option}_data"), settings, args.limit
        )
    if args.json:
        payload = {
            "benchmark": "ablation",
            "date": started,
            "command": shlex.join(["python", "benchmarks/ablate.py", *args_in]),
            "settings": used,
            "steps": list(STEP_NAMES),
            "datasets": datasets,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
