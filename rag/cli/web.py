"""The web parts of `python -m rag`: `ingest` of URLs, sitemaps and feeds, and `refresh`.

`rag ingest https://... [--sitemap URL] [--feed URL]` adds web pages beside any files
given (`DocChat.web.add`); `rag refresh` fetches a collection's web pages again,
conditionally, and replaces the changed ones (`DocChat.web.refresh`). One result line
per page, as for files. `rag refresh --every N` sets the collection's refresh schedule
instead (every N hours, 0: never; the workers run it).

Left out: background (queued) web ingests: `--background` with a URL is refused.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from rag.core.errors import ConfigError
from rag.core.models import IngestResult
from rag.engine import DocChat
from rag.ingest.web_page import is_url


def split_sources(items: list[str]) -> tuple[list[str], list[str]]:
    """(URLs, file paths) of the `ingest` command's arguments."""
    return [i for i in items if is_url(i)], [i for i in items if not is_url(i)]


def add_web(
    app: DocChat, args: argparse.Namespace, urls: list[str], show: Callable[[IngestResult], None]
) -> list[IngestResult]:
    """The pages of `urls`, `--sitemap` and `--feed`, added to the collection."""
    if not (urls or args.sitemap or args.feed):
        return []
    return app.web.add(urls, sitemap=args.sitemap or "", feed=args.feed or "",
                       collection=args.collection, on_result=show)  # fmt: skip


def no_web_in_background(args: argparse.Namespace) -> None:
    """`ingest --background` queues files' bytes; web pages are fetched in the command."""
    if split_sources(args.paths)[0] or args.sitemap or args.feed:
        raise ConfigError("web pages are fetched now, not in the background: drop --background")


def add_web_options(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--sitemap", default="", help="a sitemap.xml (or index) URL: add its pages")
    sp.add_argument("--feed", default="", help="an RSS or Atom feed URL: add its entries' pages")


def cmd_refresh(app: DocChat, args: argparse.Namespace, line: Callable[[IngestResult], str]) -> int:
    def show(r: IngestResult) -> None:
        if not args.json:
            print(line(r), flush=True)

    if args.every is not None:
        app.web.schedule(args.every, args.collection)
        name = args.collection or app.settings.collection
        every = f"every {args.every:g} hours" if args.every > 0 else "never (no schedule)"
        print(f"{name}: web pages refreshed {every}")
        return 0
    results = app.web.refresh(args.collection, on_result=show)
    if args.json:
        import json

        print(json.dumps([r.to_dict() for r in results], ensure_ascii=False, indent=2))
    elif not results:
        print("no web pages in this collection")
    return 0
