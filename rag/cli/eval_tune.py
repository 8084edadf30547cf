"""`python -m rag eval tune`: what tuning the embedding model on a collection's own
questions is worth, on a dataset split by document.

    python -m rag eval tune --dataset covid-qa|sec-10-q [--data PATH] [--json OUT]
                            [--max-steps N] [--held-out F] [--pseudo-limit N] [--limit N]
                            [--no-pseudo] [--dense-weights 0.5,0.6]

The dataset's documents are split (`--held-out`, default DOCCHAT_TUNE_HELD_OUT), the
model is trained on the training side's questions and, apart, on pseudo-queries of its
chunks (at most `--pseudo-limit`, default DOCCHAT_TUNE_MAX_PAIRS, as a collection's
pseudo-query job takes), and the held-out questions are asked with the base and both
tuned models, fused default and dense only (rag/evaluation/tuning.py). Prints one
table and the issue's targets, met or missed; `--json OUT` writes every figure with
the date, the command and the machine. `--no-pseudo` skips the pseudo-query model (a
quicker run to try a training setting); `--dense-weights` also searches each index fused
at those dense weights (a diagnostic, not the default search).

Left out: the gate (a collection's tuning job decides whether to swap; here every
figure is shown as it is).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from rag.cli.prog import PROG
from rag.core.errors import ConfigError
from rag.core.settings import Settings
from rag.datasets import DATASETS
from rag.evaluation.runs import EvalProgress
from rag.evaluation.tuning import TuneEvalOptions, VariantRun, tune_and_evaluate
from rag.finetune.tuning import TrainOptions

Adder = Callable[[argparse.ArgumentParser], None]
CHOICES = ("covid-qa", "sec-10-q")
# The targets: (model, search, measure, least gain over base), per dataset.
TARGETS: dict[str, tuple[tuple[str, str, str, float], ...]] = {
    "covid-qa": (
        ("tuned", "hybrid", "answer_in_context@4000", 0.03),
        ("tuned", "dense", "answer_in_context@4000", 0.08),
        ("pseudo", "hybrid", "answer_in_context@4000", 0.0),
        ("pseudo", "dense", "answer_in_context@4000", 0.0),
    ),
    "sec-10-q": (
        ("tuned", "hybrid", "figure_in_context@4000", 0.0),
        ("tuned", "hybrid", "doc_hit@5", 0.0),
        ("pseudo", "hybrid", "figure_in_context@4000", 0.0),
        ("pseudo", "hybrid", "doc_hit@5", 0.0),
    ),
}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], *extras: Adder) -> None:
    """The `tune` subcommand; `extras` add the options every eval takes."""
    sp = sub.add_parser("tune", help="tune the embedding model on a dataset's training "
                        "documents; held-out figures, base against tuned")  # fmt: skip
    sp.add_argument("--dataset", dest="which", choices=CHOICES, required=True)
    sp.add_argument("--data", type=Path, default=None, help="default: the dataset's own path")
    sp.add_argument("--limit", type=int, default=None, help="only the first N documents")
    sp.add_argument("--max-steps", type=int, default=0,
                    help="stop each training after N steps (0: the epochs decide)")  # fmt: skip
    sp.add_argument("--held-out", type=float, default=None,
                    help="share of documents held out (default DOCCHAT_TUNE_HELD_OUT)")  # fmt: skip
    sp.add_argument("--pseudo-limit", type=int, default=None,
                    help="pseudo-query pairs at most (default DOCCHAT_TUNE_MAX_PAIRS)")  # fmt: skip
    sp.add_argument("--no-pseudo", action="store_true", help="skip the pseudo-query model")
    sp.add_argument("--dense-weights", type=_weights, default=(), metavar="W,W",
                    help="also search each index fused at these dense weights")  # fmt: skip
    sp.add_argument("--seed", type=int, default=0, help="of the split and the sampling")
    for add in extras:
        add(sp)


def run(
    args: argparse.Namespace,
    settings: Settings,
    progress: EvalProgress | None,
    without: Sequence[str],
    argv: Sequence[str],
) -> dict[str, object]:
    """Split, tune, evaluate, print; return what `--json` writes."""
    held_out = settings.tune_held_out if args.held_out is None else args.held_out
    if not 0.0 < held_out < 1.0:
        raise ConfigError("--held-out must be between 0 and 1.")
    if args.max_steps < 0 or (args.pseudo_limit is not None and args.pseudo_limit < 2):
        raise ConfigError("--max-steps must be 0 or more, --pseudo-limit 2 or more.")
    d = DATASETS[args.which]
    articles, questions = d.load(args.data or d.data, args.limit)
    train = TrainOptions.from_settings(settings, max_steps=args.max_steps, seed=args.seed)
    limit = settings.tune_max_pairs if args.pseudo_limit is None else args.pseudo_limit
    limit = 0 if args.no_pseudo else limit
    options = TuneEvalOptions(held_out=held_out, train=train, pseudo_limit=limit,
                              seed=args.seed, dense_weights=args.dense_weights)  # fmt: skip
    load_before, t0 = os.getloadavg()[0], time.perf_counter()
    # Real files (bytes, not text) may fail to load, as in `eval sec-10-q`: a measure.
    real_files = any(a.data for a in articles)
    result = tune_and_evaluate(d.name, articles, questions, settings, options,
                               allow_rejected=real_files, progress=progress,
                               without=without)  # fmt: skip
    measure = d.measures[0]
    figures = result.to_dict(measure)
    limited_by = "DOCCHAT_TUNE_MAX_PAIRS" if args.pseudo_limit is None else "--pseudo-limit"
    limited_by = "--no-pseudo" if args.no_pseudo else limited_by
    figures["pairs"] = {**dict(figures["pairs"]), "pseudo_limit_from": limited_by}  # type: ignore[call-overload]
    runs = result.runs()
    targets = [_target(runs, *t) for t in TARGETS[d.name] if t[0] in runs]
    print_summary(d.title, measure, figures, runs, targets)
    return {
        "benchmark": "eval_tune",
        "dataset": d.name,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "command": " ".join([PROG, "eval", *map(shlex.quote, argv)]),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "loadavg_before": round(load_before, 2),
            "loadavg_after": round(os.getloadavg()[0], 2),
        },
        "seconds": round(time.perf_counter() - t0, 1),
        **figures,
        "targets": targets,
    }


def _target(
    runs: dict[str, VariantRun], model: str, search: str, measure: str, gain: float
) -> dict[str, object]:
    """One target: the model's figure against base's, on the same search and measure."""

    def value(name: str) -> float:
        report = getattr(runs[name], search)
        return float(report.measures().get(measure) or 0.0)

    delta = round(value(model) - value("base"), 4)
    return {"model": model, "search": search, "measure": measure, "least_gain": gain,
            "base": value("base"), "value": value(model), "gain": delta,
            "met": delta >= gain - 1e-9}  # fmt: skip


def print_summary(
    title: str,
    measure: str,
    figures: dict[str, object],
    runs: dict[str, VariantRun],
    targets: Sequence[dict[str, object]],
) -> None:
    """The split, a row per model, and the targets."""
    split = dict(figures["split"])  # type: ignore[call-overload]
    pairs = dict(figures["pairs"])  # type: ignore[call-overload]
    print(f"{title}, held out: {split['test_docs']} of "
          f"{split['test_docs'] + split['train_docs']} documents, "
          f"{split['test_questions']} questions ({split['dropped_straddling']} dropped: "
          f"sources on both sides); trained on {pairs['labelled']} labelled pairs "
          f"(of {split['train_questions']} questions) or {pairs['pseudo']} "
          "pseudo-queries")  # fmt: skip
    cols = ("model", "hybrid", "dense", "doc_hit@5", "mrr@10", "train_s", "steps", "embed_s",
            "chunks/s")  # fmt: skip
    print(f"  {measure} of the held-out questions (doc_hit@5, mrr@10: hybrid)")
    print("  " + "  ".join(c.ljust(9) for c in cols).rstrip())
    for name, r in runs.items():
        m = r.hybrid.measures()
        train = r.train
        speed = f"{r.chunks / r.embed_s:.1f}" if r.embed_s else "-"
        cells = [name, _f(m.get(measure)), _f(r.dense.measures().get(measure)),
                 _f(m.get("doc_hit@5")), _f(m.get("mrr@10")),
                 f"{train.seconds:.1f}" if train else "-", str(train.steps) if train else "-",
                 f"{r.embed_s:.1f}", speed]  # fmt: skip
        print("  " + "  ".join(c.ljust(9) for c in cells).rstrip())
        for w, rw in r.reweighted.items():
            print(f"    {name} fused at dense weight {w}: {_f(rw.measures().get(measure))}")
    print("  targets:")
    for t in targets:
        verdict = "met" if t["met"] else "MISSED"
        print(f"    {t['model']:6} {t['search']:6} {t['measure']:22} gain {t['gain']:+.4f} "
              f"(at least {t['least_gain']:+.2f}): {verdict}")  # fmt: skip


def _weights(value: str) -> tuple[float, ...]:
    try:
        weights = tuple(float(w) for w in value.split(",") if w.strip())
    except ValueError:
        weights = ()
    if not weights or not all(0.0 <= w <= 1.0 for w in weights):
        raise argparse.ArgumentTypeError(f"{value!r}: expected weights from 0 to 1, e.g. 0.5,0.6")
    return weights


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f}"
