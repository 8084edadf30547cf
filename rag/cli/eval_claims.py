"""`python -m rag eval claims`: how well the claim check marks what its sources do not say.

    python -m rag eval claims [--dataset covid-qa|sec-10-q|all] [--sample N] [--seed N]
    python -m rag eval claims --data my-claims.jsonl [--json OUT]

With the datasets (rag/datasets/claims.py makes the labelled claims, after indexing
each in a throw-away data dir with the real model), or with a team's own labelled
claims (`--data`, JSONL: {"claim", "sources", "label", "kind"} a line; see
rag/evaluation/claims.py). Prints, per dataset and kind, the share of the claims the
check marks (caught, for the corruptions; false alarms, for the supported ones) and the
time per sentence; `--json OUT` writes them with the date and the command.

Left out: the LLM judge (its figures would be a model's, not DocChat's).
"""

from __future__ import annotations

import argparse
import datetime
import shlex
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.cli.prog import PROG
from rag.core.errors import ConfigError
from rag.core.settings import Settings
from rag.datasets import DATASETS
from rag.datasets.claims import SAMPLE, SEED, build_claims
from rag.engine import DocChat
from rag.evaluation.claims import ClaimProgress, ClaimScores, read_claims_file, score_claims

Adder = Callable[[argparse.ArgumentParser], None]
CHOICES = ("covid-qa", "sec-10-q")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], *extras: Adder) -> None:
    """The `claims` subcommand; `extras` add the options every eval takes."""
    sp = sub.add_parser("claims", help="score the claim check on labelled claims")
    sp.add_argument("--dataset", dest="which", choices=(*CHOICES, "all"), default="all")
    sp.add_argument("--data", type=Path, default=None,
                    help="a JSONL file of labelled claims, instead of the datasets")  # fmt: skip
    for name in CHOICES:
        d = DATASETS[name]
        sp.add_argument(f"--{d.option}-data", type=Path, default=d.data,
                        help=f"{d.title}, default {d.data}")  # fmt: skip
    sp.add_argument("--sample", type=int, default=SAMPLE,
                    help=f"questions per dataset (default {SAMPLE})")  # fmt: skip
    sp.add_argument("--seed", type=int, default=SEED, help=f"of the sample (default {SEED})")
    for add in extras:
        add(sp)


def run(
    args: argparse.Namespace,
    settings: Settings,
    progress: ClaimProgress | None,
    argv: Sequence[str],
) -> dict[str, object]:
    """Score, print, and return what `--json` writes."""
    if args.sample < 1:
        raise ConfigError("--sample must be 1 or more.")
    runs: dict[str, dict[str, object]] = {}
    results = []
    answers = []
    if args.data is not None:
        scores = _file_scores(args.data, settings, progress)
        runs[args.data.name] = scores.to_dict()
        results = scores.results
    else:
        names = CHOICES if args.which == "all" else (args.which,)
        for name in names:
            path = getattr(args, f"{DATASETS[name].option}_data")
            done = build_claims(name, path, settings, sample=args.sample, seed=args.seed,
                                progress=progress)  # fmt: skip
            runs[name] = done.to_dict()
            results += done.scores.results
            answers += done.scores.answers
    overall = ClaimScores(results, answers).to_dict()
    for name, d in runs.items():
        print_scores(d, name)
    if len(runs) > 1:
        print_scores(overall, "all")
    return {
        "benchmark": "claims",
        "date": datetime.date.today().isoformat(),
        "command": " ".join([PROG, "eval", *map(shlex.quote, argv)]),
        **({} if args.data is not None else {"sample": args.sample, "seed": args.seed}),
        **{k: v for k, v in overall.items() if k != "kinds"},
        "datasets": runs,
    }


def _file_scores(path: Path, settings: Settings, progress: ClaimProgress | None) -> ClaimScores:
    """A labelled claims file scored with the settings' embedder (opened on a throw-away
    data dir: scoring a file touches no collection)."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"Cannot read {path}: {e.strerror or e}") from None
    claims = read_claims_file(path.name, data)
    with tempfile.TemporaryDirectory(prefix="docchat-claims-") as tmp:
        app = DocChat.open(settings.with_(data_dir=Path(tmp), chroma_host="").without_llm())
        try:
            return score_claims(claims, app.embedder, progress=progress)
        finally:
            app.close()


def print_scores(d: dict[str, object], title: str) -> None:
    """One dataset's (or all's) figures: per kind, the share marked."""
    counts = ", ".join(f"{d[k]} {k}" for k in ("questions", "cases") if k in d)
    print(f"{title}: {d['claims']} claims" + (f" ({counts})" if counts else ""))
    kinds = d.get("kinds")
    for kind, row in (kinds if isinstance(kinds, dict) else {}).items():
        what = "caught" if row["label"] == "not_found" else "false alarms"
        if row["label"] == "computed":
            what = f"computed {row['computed']}, marked"
        print(f"  {kind:20} {row['claims']:5}  {what} {row['marked']}  (unsure {row['unsure']})")
    caught = d.get("caught")
    if isinstance(caught, dict) and "figure" in caught:
        print(f"  {'figure (all three)':20} {'':5}  caught {caught['figure']}")
    print(f"  false alarms on supported claims: {d['false_alarms']}")
    print(f"  ms per sentence p50 / p95: {d['ms_per_sentence_p50']} / {d['ms_per_sentence_p95']}")
    if "ms_per_answer_p95" in d:
        n, per = d["sentences_per_answer"], (d["ms_per_answer_p50"], d["ms_per_answer_p95"])
        print(f"  ms per answer of {n} sentences p50 / p95: {per[0]} / {per[1]}")
