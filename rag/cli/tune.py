"""`python -m rag tune`: tune a collection's embedding model on its own questions, or
switch the model it uses, without the browser.

    python -m rag tune --collection NAME [--pairs FILE | --from-studio SET | --pseudo]
                       [--json OUT] [--max-steps N]
    python -m rag tune --collection NAME --use MODEL    (MODEL "base": the base model)
    python -m rag tune --collection NAME --models

The job runs in this process (as with `workers` 0), its stages printed as it goes;
then the held-out figures, base against tuned, and the gate's decision. `--pairs`: a
question file (the Evaluate page's CSV or JSONL); `--from-studio`: the pairs the
Fine-tuning page exports (JSONL), or, when SET is a collection's name, the pairs its
`finetune-data` run made; neither: pseudo-queries from the chunks. `--json OUT` writes
the job and the model's stamp to OUT. Ctrl-C cancels: the collection keeps its model.

Left out: queueing the job for the app's workers (the Library page does that).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rag.cli.prog import PROG
from rag.core.errors import TuningError
from rag.core.files import write_atomic
from rag.core.settings import Settings
from rag.engine import DocChat
from rag.finetune.dataset import QAPair
from rag.finetune.pairs import journal_path, load_journal
from rag.finetune.qa_file import import_pairs
from rag.jobs.tune_records import DONE, REFUSED

_POLL_S = 0.5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{PROG} tune",
        description="Tune a collection's embedding model on its questions (kept only when "
        "it finds held-out questions better), or switch the model it uses.",
    )
    p.add_argument("--collection", required=True, help="the collection")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--pairs", type=Path, help="a question file (CSV or JSONL)")
    source.add_argument("--from-studio", metavar="SET",
                        help="the studio's exported pairs (JSONL), or a collection's "
                        "finetune-data pairs (its name)")  # fmt: skip
    source.add_argument("--pseudo", action="store_true",
                        help="pseudo-queries from the chunks (the default)")  # fmt: skip
    source.add_argument("--use", metavar="MODEL",
                        help='switch to one of its tuned models, or "base"')  # fmt: skip
    source.add_argument("--models", action="store_true", help="list its tuned models")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the result as JSON to OUT")
    p.add_argument("--max-steps", type=int, default=0,
                   help="stop training after N steps (0: the epochs decide)")  # fmt: skip
    return p


def _studio(app: DocChat, name: str) -> list[QAPair]:
    path = Path(name)
    if path.is_file():
        return import_pairs(path.name, path.read_bytes())
    journal = journal_path(Path(app.settings.data_dir), name)
    if not journal.is_file():
        raise TuningError(f"{name!r} is neither a pairs file nor a collection with "
                          f"finetune-data pairs.")  # fmt: skip
    return load_journal(journal)


class _Follow:
    """Prints the newest job's stage as it changes (the job runs in the main thread)."""

    def __init__(self, app: DocChat, collection: str, after: float) -> None:
        self.app, self.collection, self.after = app, collection, after
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="docchat-tune-cli")

    def _run(self) -> None:
        shown = ""
        while not self.stop.wait(_POLL_S):
            jobs = [j for j in self.app.tuning.jobs(self.collection) if j.created >= self.after]
            if not jobs:
                continue
            stage, message = jobs[0].stage, jobs[0].message
            line = message if message.startswith(stage) else f"{stage}: {message}"
            if line and line != shown:
                print(line, file=sys.stderr, flush=True)
                shown = line

    def __enter__(self) -> _Follow:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def _figures(figures: dict[str, Any]) -> list[str]:
    lines = [f"held out: {figures.get('test_questions', 0)} question(s) of "
             f"{figures.get('test_docs', 0)} document(s); trained on "
             f"{figures.get('train_questions', 0)} of {figures.get('train_docs', 0)}"]  # fmt: skip
    # A pseudo-query job's gate reads the dense side too (rag/finetune/tune_gate.py).
    for side in ("base", "tuned", "base_dense", "tuned_dense"):
        scores = figures.get(side)
        if isinstance(scores, dict):
            label = side.replace("_dense", " (dense)")
            lines.append(f"{label:5}  " + "  ".join(f"{k} {v}" for k, v in scores.items()))
    return lines


def _tune(app: DocChat, args: argparse.Namespace, name: str) -> int:
    source, data, qa = "pseudo", b"", []
    if args.pairs is not None:
        source, data = "pairs", args.pairs.read_bytes()
    elif args.from_studio:
        source, qa = "studio", _studio(app, args.from_studio)
    with _Follow(app, name, time.time() - 1.0):
        try:
            job = app.tuning.start(name, source=source, pairs=data,
                                   pairs_name=args.pairs.name if args.pairs else "",
                                   qa_pairs=qa, max_steps=args.max_steps)  # fmt: skip
        except KeyboardInterrupt:
            print("interrupted: the collection keeps its model", file=sys.stderr)
            return 130
    stamp = next((m for m in app.tuning.models(name) if m.name == job.model), None)
    if args.json is not None:
        out = {"job": job.to_dict(), "model": asdict(stamp) if stamp is not None else None}
        write_atomic(args.json, json.dumps(out, indent=2, default=dict).encode("utf-8"))
    if job.status not in (DONE, REFUSED):
        raise TuningError(job.error or f"The tuning job ended {job.status}.")
    for line in _figures(dict(stamp.figures)) if stamp is not None else []:
        print(line)
    print(f"{job.status}: {job.message}")
    return 0


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(list(argv))
    if args.max_steps < 0:
        raise TuningError("--max-steps must be 0 or more.")
    # workers 0: the job runs here, before `start` returns, whatever the app's setting.
    app = DocChat.open(Settings.from_env().with_(workers=0))
    name = app.collection(args.collection).name
    if args.models:
        current = app.tuning.current(name)
        for m in app.tuning.models(name):
            mark = "*" if m.name == current else " "
            print(f"{mark} {m.name}  {m.source}  {m.pairs} pairs  {m.decision or '-'}")
        print(f"in use: {current}")
        return 0
    if args.use is not None:
        model = "" if args.use == "base" else args.use
        print(f"{name} uses {app.tuning.use(model, name).model}")
        return 0
    return _tune(app, args, name)
