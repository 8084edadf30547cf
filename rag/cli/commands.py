"""The engine commands of `python -m rag`, and `main`, which runs any command.

Every user error prints one clear line to stderr and exits 1; no tracebacks. Output
is plain text for people, or JSON with `--json` for other tools.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from rag.cli.eval import main as eval_main
from rag.cli.finetune import main as finetune_main
from rag.cli.jobs import ingest_background, jobs_main, worker_main
from rag.cli.mcp import main as mcp_main
from rag.cli.prog import PROG
from rag.cli.serve import keys_main, serve_main
from rag.cli.tune import main as tune_main
from rag.cli.users import main as users_main
from rag.cli.web import add_web, add_web_options, cmd_refresh, no_web_in_background, split_sources
from rag.core.errors import ConfigError, RagError
from rag.core.models import (
    Answer,
    CollectionInfo,
    DocumentInfo,
    IngestResult,
    Source,
    claims_line,
)
from rag.core.settings import Settings
from rag.engine import DocChat
from rag.team.access import check_bind

Row = TypeVar("Row", DocumentInfo, CollectionInfo)


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _result_line(r: IngestResult) -> str:
    if r.status == "indexed":
        extra = f" (replaced {r.replaced[:12]})" if r.replaced else ""
        warn = f"; {len(r.warnings)} warning(s): {r.warnings[0]}" if r.warnings else ""
        size = f"{r.pages} page(s), {r.chunks} chunk(s), {r.seconds:.1f}s"
        return f"indexed    {r.file}: {size}{extra}{warn}"
    if r.status == "unchanged":
        return f"unchanged  {r.file}: already indexed ({r.chunks} chunks)"
    reason = r.reason.removeprefix(f"{r.file}: ")  # loaders name the file; don't say it twice
    return f"rejected   {r.file}: {reason}"


def cmd_ingest(app: DocChat, args: argparse.Namespace) -> int:
    def show(r: IngestResult) -> None:
        if not args.json:
            print(_result_line(r), flush=True)

    urls, paths = split_sources(args.paths)
    if not (paths or urls or args.sitemap or args.feed):
        raise ConfigError("nothing to add: give files, folders, URLs, --sitemap or --feed")
    results: list[IngestResult] = []
    if paths:
        results = app.ingest_paths(
            [Path(p) for p in paths],
            collection=args.collection,
            password=args.password,
            on_result=show,
        )
    results += add_web(app, args, urls, show)  # pages of the web (rag/cli/web.py)
    if args.json:
        _print_json([r.to_dict() for r in results])
    return 0


def cmd_ask(app: DocChat, args: argparse.Namespace) -> int:
    retrieval = app.retrieve(args.question, collection=args.collection, top_k=args.top_k)
    stream = app.stream(retrieval)
    answer: Answer | None  # `stream.answer` is set once the stream ends, even on failure
    if args.json:
        try:
            answer = stream.run()
        except RagError:
            answer = stream.result()
            _print_json(answer.to_dict())
            raise
        _print_json(answer.to_dict())
        return 0
    for delta in stream:
        print(delta, end="", flush=True)
    print()
    answer = stream.result()
    print(f"\n[mode: {answer.mode}; query: {answer.query!r}]")
    for note in answer.notes:  # e.g. re-ranking skipped
        print(f"[note: {note}]")
    for s in answer.sources:
        c = s.chunk
        where = ", ".join(p for p in (c.location, c.section) if p)
        print(f"[{s.n}] {c.file}" + (f" ({where})" if where else "") + f"  score {s.hit.score:.3f}")
    if answer.claims:
        print(f"[checked: {claims_line(answer.claims)}]")
        for claim in answer.claims:
            if claim.verdict in ("not_found", "uncited"):
                print(f"  not backed: {' '.join(claim.sentence.split())!r} ({claim.reason})")
    return 0


def cmd_search(app: DocChat, args: argparse.Namespace) -> int:
    query, hits = app.search(args.query, collection=args.collection, top_k=args.top_k)
    sources = Source.numbered(hits)
    if args.json:
        _print_json([s.to_dict() for s in sources])
        return 0
    print(f"query: {query!r}")
    for s in sources:
        c = s.chunk
        print(f"[{s.n}] {s.hit.score:.3f} {c.file} {c.location} {c.section}".rstrip())
        print("    " + " ".join(c.text.split())[:200])
    return 0


def _print_rows(
    rows: Sequence[Row], args: argparse.Namespace, *, empty: str, line: Callable[[Row], str]
) -> int:
    """A listing: JSON with `--json`, else one line a row (or `empty`)."""
    if args.json:
        _print_json([r.to_dict() for r in rows])
        return 0
    if not rows:
        print(empty)
    for r in rows:
        print(line(r))
    return 0


def cmd_docs(app: DocChat, args: argparse.Namespace) -> int:
    return _print_rows(
        app.documents(args.collection),
        args,
        empty="(no documents)",
        line=lambda d: (
            f"{d.doc_id[:12]}  {d.name}  {d.kind}  {d.pages} page(s)  {d.chunks} chunk(s)"
        ),
    )


def cmd_delete(app: DocChat, args: argparse.Namespace) -> int:
    info = app.delete_document(args.doc, collection=args.collection)
    print(f"deleted {info.name} ({info.chunks} chunks)")
    return 0


def cmd_show(app: DocChat, args: argparse.Namespace) -> int:
    view = app.page_view(args.doc, args.page, chunk=args.chunk, collection=args.collection)
    Path(args.out).write_bytes(view.png)
    if args.json:
        boxes = [list(b) for b in view.boxes]
        _print_json({"doc_id": view.doc_id, "page": view.page, "pages": view.pages,
                     "chunk": view.chunk, "out": args.out, "boxes": boxes})  # fmt: skip
    else:
        marked = f", chunk {view.chunk} marked" if view.chunk is not None else ""
        print(f"page {view.page} of {view.pages}{marked}: {args.out}")
    return 0


def check_bind_main(argv: Sequence[str]) -> int:
    """`python -m rag check-bind ADDRESS`: exit 1 with the reason if DocChat must not
    serve on ADDRESS with the configured sign-in (`make run` calls it first)."""
    check_bind(argv[0] if argv else "", Settings.from_env().auth)
    return 0


def cmd_collections(app: DocChat, args: argparse.Namespace) -> int:
    return _print_rows(
        app.collections(),
        args,
        empty="(no collections)",
        line=lambda c: f"{c.name}  {c.documents} document(s)  {c.chunks} chunk(s)  model {c.model}",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"{PROG}", description="DocChat engine")
    sub = p.add_subparsers(dest="command", required=True)

    def add(
        name: str, fn: Callable[[DocChat, argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.set_defaults(fn=fn)
        sp.add_argument("--collection", default=None, help="collection name (default: default)")
        sp.add_argument("--json", action="store_true", help="print JSON")
        return sp

    sp = add("ingest", cmd_ingest, "add files, folders or web pages to a collection")
    sp.add_argument("paths", nargs="*", help="files, folders or http(s) URLs")
    add_web_options(sp)
    sp.add_argument("--password", default=None, help="password for encrypted PDFs")
    sp.add_argument("--background", action="store_true",
                    help="as a job for the workers; prints its id (see `jobs`)")  # fmt: skip
    sp = add("refresh", lambda a, o: cmd_refresh(a, o, _result_line),
             "fetch a collection's web pages again; replace the changed ones")  # fmt: skip
    sp.add_argument("--every", type=float, default=None, metavar="HOURS",
                    help="instead: refresh it on a schedule, every HOURS (0: never)")  # fmt: skip
    sp = add("ask", cmd_ask, "answer a question from the documents")
    sp.add_argument("question")
    sp.add_argument("--top-k", type=int, default=None)
    sp = add("search", cmd_search, "show the chunks a query retrieves")
    sp.add_argument("query")
    sp.add_argument("--top-k", type=int, default=None)
    add("docs", cmd_docs, "list the documents of a collection")
    sp = add("delete", cmd_delete, "delete a document (id, id prefix or name)")
    sp.add_argument("doc")
    add("collections", cmd_collections, "list collections")
    sp = add("show", cmd_show, "write a page of a document as PNG, a chunk marked on it")
    sp.add_argument("doc", help="document id, id prefix or name")
    sp.add_argument("--page", type=int, default=1, help="page number (1-based)")
    sp.add_argument(
        "--chunk", type=int, default=None,
        help="chunk index to mark (`chunk` in search --json); its page is shown",
    )  # fmt: skip
    sp.add_argument("--out", required=True, help="where to write the PNG")
    return p


# Commands with parsers of their own (they build their DocChat from their options).
EXTRA_COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "finetune-data": finetune_main,
    "tune": tune_main,
    "eval": eval_main,
    "users": users_main,
    "check-bind": check_bind_main,
    "serve": serve_main,
    "keys": keys_main,
    "jobs": jobs_main,
    "worker": worker_main,
    "mcp": mcp_main,
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Readers of broken PDFs log every repair they make; the result line says what matters.
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    if argv and argv[0] in EXTRA_COMMANDS:
        try:
            return EXTRA_COMMANDS[argv[0]](argv[1:])
        except RagError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if getattr(args, "background", False):  # the queue only: no store opened
            no_web_in_background(args)
            return ingest_background(settings, args)
        app = DocChat.open(settings)
        return int(args.fn(app, args))
    except RagError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
