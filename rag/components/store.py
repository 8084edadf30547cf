"""Chroma, wrapped: named libraries of documents, their chunks, and the original files.

Each user-visible collection ("library") is two Chroma collections with a random
id in their names, so a rename only changes metadata:
- `dc-<id>-c`: the chunks, with their embeddings (always passed explicitly: Chroma's
  default embedding function would download a model), cosine space;
- `dc-<id>-d`: one record per document (name, kind, pages, chunks, status).

Writes are ordered so a crash leaves nothing half-visible: a document's record is
written as `pending` before any chunk, chunks next, then the record becomes `ready`.
Deleting goes the other way. `recover()` (run on open) removes what a crash left
pending. Searches only return chunks of ready documents. Each write that changes what
a library shows (a document made ready, deleted, or undone) then bumps the library's
version in the record store (`versions.py`), which other processes' caches compare.

`Store` is built in three floors, each a module: `store_base.py` (the client, a
library's two Chroma collections, its document records), `store_collections.py`
(creating, renaming, deleting libraries) and this one (documents, their chunks,
searches, crash recovery). Chroma is known there and in `chroma.py` (the client, and
its errors as `RagError`s); models become Chroma metadata and back in `store_meta.py`
only. Original files live in `originals.py`.

Left out: multi-tenant databases, Chroma's own full-text index (see lexical.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from rag.components.store_collections import Collections
from rag.components.store_meta import chunks_in, to_meta
from rag.components.versions import CollectionVersions
from rag.core.errors import DocumentNotFoundError
from rag.core.models import Chunk, DocumentInfo, Hit
from rag.core.settings import Settings

_ADD_BATCH = 1000  # Chroma caps a single add; stay well below it
_PENDING_GRACE_S = 600.0  # server mode: another process may still be writing


class Store(Collections):
    """Collections, documents and chunks in Chroma; the original files beside them.

    The one class the rest of DocChat uses (the floors below it are its parts).
    """

    def __init__(self, settings: Settings, versions: CollectionVersions | None = None) -> None:
        """`versions`: the collections' versions (default: in the settings' record store)."""
        super().__init__(settings, versions)
        self.recover()

    # -- documents --------------------------------------------------------------------

    def documents(self, collection: str, *, include_pending: bool = False) -> list[DocumentInfo]:
        _, docs = self._pair(collection)
        records = self._records(docs) if include_pending else self._ready_records(docs)
        return sorted(records.values(), key=lambda d: (d.name.lower(), d.added))

    def document(self, collection: str, doc_id: str) -> DocumentInfo:
        """A ready document by id, id prefix (at least 6 characters) or exact name."""
        docs = self.documents(collection)
        exact = [d for d in docs if d.doc_id == doc_id or d.name == doc_id]
        if not exact and len(doc_id) >= 6:
            exact = [d for d in docs if d.doc_id.startswith(doc_id)]
        if len(exact) == 1:
            return exact[0]
        if not exact:
            raise DocumentNotFoundError(f"No document {doc_id!r} in collection {collection!r}.")
        raise DocumentNotFoundError(f"{doc_id!r} matches several documents; use its id.")

    def begin_document(self, collection: str, info: DocumentInfo) -> None:
        """Register a document as pending and clear any chunks a crash left behind."""
        chunks, docs = self._pair(collection)
        self._write_record(docs, replace(info, status="pending"))
        self._call(chunks.delete, where={"doc_id": info.doc_id})

    def add_chunks(self, collection: str, chunks: Sequence[Chunk], vectors: np.ndarray) -> None:
        col, _ = self._pair(collection)
        for i in range(0, len(chunks), _ADD_BATCH):
            part = chunks[i : i + _ADD_BATCH]
            self._call(
                col.add,
                ids=[c.id for c in part],
                embeddings=vectors[i : i + _ADD_BATCH],
                documents=[c.text for c in part],
                metadatas=[to_meta(c, outside="text") for c in part],
            )

    def finish_document(self, collection: str, info: DocumentInfo) -> None:
        """Mark a document ready: from now on it is listed and searched."""
        _, docs = self._pair(collection)
        try:
            self._write_record(docs, replace(info, status="ready"))
        finally:  # (a failed call may still have written it on a server)
            self.versions.bump(collection)

    def delete_pending(self, collection: str, doc_id: str) -> None:
        """Undo a `begin_document` whose chunks were not all written."""
        try:
            self._remove(*self._pair(collection), doc_id)
        finally:  # the document may have been ready already (`finish_document` failed late)
            self.versions.bump(collection)

    def _remove(self, chunks: Any, docs: Any, doc_id: str) -> None:
        self._call(chunks.delete, where={"doc_id": doc_id})
        try:
            self._call(docs.delete, ids=[doc_id])
        finally:
            self._records_changed(docs)

    def delete_document(self, collection: str, doc_id: str) -> DocumentInfo:
        with self._lock:
            info = self.document(collection, doc_id)
            chunks, docs = self._pair(collection)
            # Hide it first, then remove chunks, then the record: a crash in between
            # leaves a pending record that recover() finishes removing.
            try:
                self._write_record(docs, replace(info, status="pending"))
                self._remove(chunks, docs, info.doc_id)
            finally:
                self.versions.bump(collection)
            self._drop_original_if_unused(info.doc_id)
            return info

    def chunks_of(self, collection: str, doc_id: str) -> list[Chunk]:
        col, _ = self._pair(collection)
        got = self._call(col.get, where={"doc_id": doc_id}, include=["documents", "metadatas"])
        return sorted(chunks_in(got), key=lambda c: c.index)

    def all_chunks(self, collection: str) -> Iterable[Chunk]:
        """Every chunk of every ready document, in pages of 5,000 (for lexical indexes)."""
        col, docs = self._pair(collection)
        ready = set(self._ready_records(docs))
        offset = 0
        while True:
            got = self._call(col.get, include=["documents", "metadatas"], limit=5000, offset=offset)
            if not got["ids"]:
                return
            yield from (c for c in chunks_in(got) if c.doc_id in ready)
            offset += len(got["ids"])

    def chunks_by_id(self, collection: str, ids: Sequence[str]) -> tuple[list[Chunk], np.ndarray]:
        """The chunks with these ids that exist, and their vectors (one row each)."""
        col, _ = self._pair(collection)
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        got = self._call(col.get, ids=list(ids), include=["documents", "metadatas", "embeddings"])
        return chunks_in(got), np.asarray(got["embeddings"], dtype=np.float32)

    def count_chunks(self, collection: str) -> int:
        col, _ = self._pair(collection)
        return int(self._call(col.count))

    def query(
        self,
        collection: str,
        vector: np.ndarray,
        top_k: int,
        *,
        doc_ids: Sequence[str] | None = None,
    ) -> list[Hit]:
        """The `top_k` nearest chunks of ready documents, best first."""
        col, docs = self._pair(collection)
        records = self._ready_records(docs)
        ready = set(records)
        if doc_ids:
            ready &= set(doc_ids)
        if not ready:
            return []
        where = {"doc_id": {"$in": sorted(ready)}} if doc_ids else None
        # The documents' own chunk counts, not col.count(): that scans (9 ms at 100k).
        total = sum(records[d].chunks for d in ready)
        if total == 0:
            return []
        got = self._call(
            col.query,
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=min(top_k, total),
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        hits = []
        chunks = chunks_in(got, 0)
        for c, distance in zip(chunks, got["distances"][0], strict=True):
            if c.doc_id in ready:
                score = 1.0 - float(distance)  # cosine distance -> similarity
                hits.append(Hit(chunk=c, score=score, dense_score=score))
        return hits

    # -- originals ----------------------------------------------------------------------

    def save_original(self, doc_id: str, data: bytes) -> None:
        self.originals.save(doc_id, data)

    def original(self, doc_id: str) -> bytes:
        return self.originals.read(doc_id)

    # -- crash recovery ---------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Remove what a crash left: pending documents, older twins; returns their names."""
        removed: list[str] = []
        now = time.time()
        with self._lock:
            for col in self._all_raw():
                name = str(col.metadata["docchat_name"])
                chunks, docs = self._pair(name)
                records = self._records(docs)
                before = len(removed)
                for info in records.values():
                    stale = now - info.added > _PENDING_GRACE_S or not self.settings.server_mode
                    if info.status == "pending" and stale:
                        self._remove(chunks, docs, info.doc_id)
                        removed.append(info.name)
                # A crash between "new version ready" and "old version deleted".
                newest: dict[str, DocumentInfo] = {}
                for info in sorted(records.values(), key=lambda d: d.added):
                    if info.status != "ready":
                        continue
                    old = newest.get(info.name)
                    if old is not None:
                        self._remove(chunks, docs, old.doc_id)
                        removed.append(old.name)
                    newest[info.name] = info
                if len(removed) > before:
                    self.versions.bump(name)
            self.originals.remove_stray_tmp_files()
        return removed
