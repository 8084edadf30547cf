"""A user's web sources (`DocChat.web`): pages, sitemaps and feeds added to a collection,
and a collection's web pages refreshed.

Adding needs the editor's right on the collection ("upload"), checked before anything
is fetched; the pages then go through the documents service's upload pipeline, named
by their URLs (`ingest/web.py`), so a page already there with other bytes is replaced
as a changed file is. Refreshing fetches each web document again with its stored
ETag / Last-Modified: a 304 leaves it as it is ("unchanged"), new bytes replace it
under the same name, and a page that cannot be fetched now is reported with the
reason and kept. Each call is one crawl: one `Fetcher` (its per-host delay and
robots.txt cache) and at most `url_max_pages` pages.

A collection's refresh schedule (every N hours, 0: never) is set by its editors and
kept in the record store (`team/schedules.py`); the job queue's watcher queues the due
refreshes and a worker runs them through `refresh` (`jobs/web_refresh.py`).

Left out: the fetching rules themselves (`components/web_fetch.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from rag.components.web_fetch import Fetcher
from rag.core.errors import CollectionNotFoundError, WebFetchError
from rag.core.models import IngestResult, Upload
from rag.ingest.web import WebSource, as_upload, fetch_pages, page_urls
from rag.ingest.web_page import is_url
from rag.services.documents import DocumentService
from rag.team.access import User
from rag.team.schedules import Schedules

OnResult = Callable[[IngestResult], None]


class Web:
    """`user`'s web sources (see the module docstring)."""

    def __init__(self, documents: DocumentService, user: User) -> None:
        self._d = documents
        self.user = user

    def _fetcher(self) -> Fetcher:
        return Fetcher(self._d.settings)

    def add(
        self,
        urls: Sequence[str] = (),
        *,
        sitemap: str = "",
        feed: str = "",
        collection: str | None = None,
        on_result: OnResult | None = None,
    ) -> list[IngestResult]:
        """Pages (`urls`), a sitemap's pages or a feed's entries added to the collection,
        one result per page: indexed, unchanged, or rejected with the reason (refused,
        robots.txt, over a limit). A sitemap or feed that cannot be read is one rejected
        result under its own URL."""
        info = self._d.collections.ensure(self.user, collection)  # the right to upload first
        sources = [WebSource(u) for u in urls]
        sources += [WebSource(sitemap, "sitemap")] if sitemap else []
        sources += [WebSource(feed, "feed")] if feed else []
        limit = max(0, self._d.settings.url_max_pages)
        with self._fetcher() as fetcher:
            pages: list[str] = []
            failed: list[IngestResult] = []
            for source in sources:
                try:  # one more than the limit: to tell the user some were left out
                    pages += page_urls(fetcher, source, limit + 1)
                except WebFetchError as e:
                    failed.append(IngestResult(file=source.url, status="rejected", reason=str(e)))
            pages = list(dict.fromkeys(pages))
            if len(pages) > limit:
                why = (f"more than {limit} pages: the first {limit} are fetched, the rest left "
                       "out (DOCCHAT_URL_MAX_PAGES)")  # fmt: skip
                failed.append(IngestResult(file=sources[-1].url, status="rejected", reason=why))
                pages = pages[:limit]
            for r in failed:
                if on_result is not None:
                    on_result(r)
            report = (lambda _, r: on_result(r)) if on_result is not None else None
            results = self._d.ingest_many(
                self.user, fetch_pages(fetcher, pages), info.name, None, report
            )
        return failed + results

    def refresh(
        self, collection: str | None = None, *, on_result: OnResult | None = None
    ) -> list[IngestResult]:
        """The collection's web pages fetched again, conditionally: one result each
        ("unchanged" for a 304 or the same bytes, "indexed" with `replaced` for a changed
        page, "rejected" with the reason when it cannot be fetched now; it stays)."""
        name = self._d.gate.open(self.user, collection, "upload")  # a missing one stays so
        docs = [d for d in self._d.store.documents(name) if is_url(d.name)]
        docs = docs[: max(0, self._d.settings.url_max_pages)]
        unchanged: dict[int, IngestResult] = {}

        def uploads(fetcher: Fetcher) -> Iterator[Upload]:
            for i, d in enumerate(docs):
                try:
                    page = fetcher.fetch(d.name, etag=d.etag, last_modified=d.last_modified)
                except WebFetchError as e:
                    yield Upload(d.name, b"", error=str(e))
                    continue
                if page.not_modified:
                    unchanged[i] = IngestResult(file=d.name, status="unchanged", doc_id=d.doc_id,
                                                pages=d.pages, chunks=d.chunks)  # fmt: skip
                    continue
                yield as_upload(page, d.name)  # the same name, so it replaces the document

        with self._fetcher() as fetcher:
            changed = self._d.ingest_many(self.user, uploads(fetcher), name, None, None)
        results: list[IngestResult] = []
        rest = iter(changed)
        for i in range(len(docs)):
            r = unchanged.get(i) or next(rest)
            results.append(r)
            if on_result is not None:
                on_result(r)
        return results

    def schedule(self, hours: float, collection: str | None = None) -> None:
        """Refresh the collection's web pages every `hours` (0: never), the first time
        `hours` from now; its editors may set it."""
        name = self._d.gate.open(self.user, collection, "upload")
        if not self._d.store.has_collection(name):
            raise CollectionNotFoundError(f"No collection named {name!r}.")
        self._schedules().set(name, hours)

    def schedule_of(self, collection: str | None = None) -> float:
        """Every how many hours the collection's web pages are refreshed (0: never)."""
        return self._schedules().of(self._d.gate.open(self.user, collection, "read")).hours

    def _schedules(self) -> Schedules:
        return Schedules(self._d.gate.sharing.db)
