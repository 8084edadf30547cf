"""Where a source came from, shown: a page of a PDF or image rendered with its chunk
marked, or a chunk of a document without pages in the text around it.

Left out: rendering Word or HTML documents as pages (their sources show as text).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.components.store import Store
from rag.core.errors import DocumentNotFoundError
from rag.core.models import Chunk
from rag.services.gate import Gate
from rag.team.access import User
from rag.views.page_view import PageView, PageViews
from rag.views.text_view import TextView, text_view


@dataclass(frozen=True)
class ViewService:
    store: Store
    gate: Gate
    page_views: PageViews

    def page(
        self,
        user: User,
        doc: str,
        page: int,
        chunk: int | None,
        sentence: tuple[int, int] | None,
        collection: str | None,
    ) -> PageView:
        """Page `page` of a PDF or image document, rendered, with chunk `chunk` (its
        index) marked and `sentence` (a span of the chunk's text) marked stronger; the
        chunk's own page wins over `page`."""
        name = self.gate.open(user, collection, "read")
        info = self.store.document(name, doc)
        if info.kind not in ("pdf", "image"):
            raise DocumentNotFoundError(f"{info.name} has no pages to show.")
        chunks = self.store.chunks_of(name, info.doc_id)
        marked = None
        if chunk is not None:
            marked = next((c for c in chunks if c.index == chunk), None)
            if marked is None:
                raise DocumentNotFoundError(f"{info.name} has no chunk {chunk}.")
            page = marked.page or page
        on_page = [c for c in chunks if c.page == page]
        data = self.store.original(info.doc_id)
        return self.page_views.view(
            info.doc_id, data, info.kind, info.pages, page, on_page, marked, sentence
        )

    def text(
        self, user: User, chunk: Chunk, sentence: tuple[int, int] | None, collection: str | None
    ) -> TextView:
        """A chunk of a document without pages, in the text around it."""
        name = self.gate.open(user, collection, "read")
        return text_view(self.store.chunks_of(name, chunk.doc_id), chunk, sentence)
