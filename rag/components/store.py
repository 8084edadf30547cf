"""Chroma, wrapped: named libraries of documents, their chunks, and the original files.

Each user-visible collection ("library") is two Chroma collections with a random
id in their names, so a rename only changes metadata:
- `dc-<id>-c`: the chunks, with their embeddings (always passed explicitly: Chroma's
  default embedding function would download a model), cosine space;
- `dc-<id>-d`: one record per document (name, kind, pages, chunks, status).

Writes are ordered so a crash leaves nothing half-visible: a document's record is
written as `pending` before any chunk, chunks next, then the record becomes `ready`.
Deleting goes the other way. `recover()` (run on open) removes what a crash left
pending. Searches only return chunks of ready documents.

Chroma is known here and in `chroma.py` (the client, and its errors as `RagError`s),
which only this module imports; models become Chroma metadata and back in `_to_meta`
/ `_from_meta` only. Original files live in `originals.py`.

Left out: multi-tenant databases, Chroma's own full-text index (see lexical.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from rag.components.chroma import call, connect, translate
from rag.components.originals import Originals
from rag.core.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DocumentNotFoundError,
    RagError,
)
from rag.core.models import Chunk, CollectionInfo, DocumentInfo, Hit, from_dict
from rag.core.settings import Settings

_ROLE_CHUNKS = "chunks"
_ROLE_DOCS = "docs"
_ADD_BATCH = 1000  # Chroma caps a single add; stay well below it
_PENDING_GRACE_S = 600.0  # server mode: another process may still be writing
_CREATE_LOCK_S = 30.0  # server mode: a create of a collection takes well under this
_T = TypeVar("_T", Chunk, DocumentInfo, CollectionInfo)
_RECORD_DEFAULTS: dict[str, Any] = {"kind": "", "pages": 0, "chunks": 0, "size": 0, "added": 0.0}
# (older records may lack those; every other field is always written)


def _to_meta(value: Chunk | DocumentInfo, *, outside: str) -> dict[str, Any]:
    """A model as Chroma metadata, which holds flat scalars only: absent keys mean "not
    applicable" (None), lists are joined by newlines. Chroma keeps `outside` elsewhere
    (a chunk's text, a record's id). Floats (a record's `added`) are kept to the
    microsecond: Chroma 1.5.9 gave 218 of 2,000 full-precision times back one bit off,
    and the records kept after a write (`_records_changed`) must equal a read."""
    return {
        k: "\n".join(v) if isinstance(v, list) else round(v, 6) if isinstance(v, float) else v
        for k, v in value.to_dict().items()
        if k != outside and v is not None
    }


def _from_meta(cls: type[_T], meta: dict[str, Any], **known: Any) -> _T:
    """The inverse of `_to_meta` (`known`: what Chroma keeps outside the metadata)."""
    if cls is DocumentInfo:
        warnings = str(meta.get("warnings", ""))
        meta = {**_RECORD_DEFAULTS, **meta, "warnings": [w for w in warnings.split("\n") if w]}
    return from_dict(cls, meta, **known)


def _valid_name(name: str) -> str:
    if not 1 <= len(name.strip()) <= 100:
        raise RagError("A collection name must have 1 to 100 characters.")
    return name.strip()


def _chunks_in(got: dict[str, Any], row: int | None = None) -> list[Chunk]:
    """The chunks of a Chroma `get` result (or of one `row` of a `query` result)."""
    texts, metas = got["documents"], got["metadatas"]
    if row is not None:
        texts, metas = texts[row], metas[row]
    return [_from_meta(Chunk, m, text=t) for t, m in zip(texts, metas, strict=True)]


class Store:
    """Collections, documents and chunks in Chroma; the original files beside them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.originals = Originals(self.data_dir / "files")
        self._client = connect(settings)
        self._lock = threading.RLock()
        # Collection handles by name, kept only in embedded mode: this process holds the
        # data dir's lock, so no one else renames or deletes behind it. (Looking a pair up
        # lists every collection: a few ms, several times per ingested file.)
        self._pairs: dict[str, tuple[Any, Any]] = {}
        # Document records of the embedded store, by records collection (`_records`).
        self._records_lock = threading.Lock()
        self._records_kept: dict[str, dict[str, DocumentInfo]] = {}
        self._records_generation: dict[str, int] = {}
        self.recover()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a Chroma call, its failures turned into a clear RagError (`chroma.call`)."""
        try:
            return call(self.settings, fn, *args, **kwargs)
        except CollectionNotFoundError:
            self._forget_pairs()  # renamed or deleted behind our back
            raise

    # -- collections ----------------------------------------------------------------

    def _all_raw(self) -> list[Any]:
        cols = self._call(self._client.list_collections)
        return [c for c in cols if (c.metadata or {}).get("docchat_role") in (_ROLE_CHUNKS,)]

    def _pair(self, name: str) -> tuple[Any, Any]:
        pair = self._pairs.get(name)
        if pair is None:
            # Under the lock that creates, renames and deletes hold for their whole
            # change: a lookup never caches a handle that is about to go stale.
            with self._lock:
                pair = self._find_pair(name)
                if not self.settings.server_mode:
                    self._pairs[name] = pair
        return pair

    def _forget_pairs(self) -> None:
        self._pairs.clear()

    def _find_pair(self, name: str) -> tuple[Any, Any]:
        for col in self._all_raw():
            if col.metadata.get("docchat_name") == name:
                docs = self._open(col.metadata["docchat_docs"])
                return self._open(col.name), docs
        raise CollectionNotFoundError(f"No collection named {name!r}.")

    def _open(self, chroma_name: str) -> Any:
        return self._call(self._client.get_collection, chroma_name, embedding_function=None)

    def collection_key(self, name: str) -> str:
        """A stable id of a collection that survives renames (for indexes kept beside it)."""
        chunks, _ = self._pair(name)
        return str(chunks.name)

    def has_collection(self, name: str) -> bool:
        return any(c.metadata.get("docchat_name") == name for c in self._all_raw())

    def create_collection(
        self, name: str, *, model: str, dimension: int, chunk_tokens: int, chunk_overlap: int
    ) -> CollectionInfo:
        name = _valid_name(name)
        with self._lock, self._creating(name):
            if self.has_collection(name):
                raise CollectionExistsError(f"A collection named {name!r} already exists.")
            key = uuid.uuid4().hex[:12]
            now = time.time()
            self._forget_pairs()
            meta: dict[str, Any] = {
                "docchat_role": _ROLE_CHUNKS,
                "docchat_name": name,
                "docchat_docs": f"dc-{key}-d",
                "model": model,
                "dimension": dimension,
                "chunk_tokens": chunk_tokens,
                "chunk_overlap": chunk_overlap,
                "created": now,
            }
            self._call(
                self._client.create_collection,
                f"dc-{key}-d",
                metadata={"docchat_role": _ROLE_DOCS, "created": now},
                embedding_function=None,
            )
            self._call(
                self._client.create_collection,
                f"dc-{key}-c",
                metadata=meta,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        return self.collection_info(name)

    @contextlib.contextmanager
    def _creating(self, name: str) -> Iterator[None]:
        """Server mode: one process at a time creates a collection of this name (a
        worker and another may both be first to upload into it).

        The mutex is a Chroma collection named after the name (Chroma refuses a second
        collection of one name, atomically); one a crash left is taken after
        `_CREATE_LOCK_S`. Embedded mode has one process, whose `_lock` is enough.
        """
        if not self.settings.server_mode:
            yield
            return
        lock = "dc-lock-" + hashlib.sha256(name.encode()).hexdigest()[:24]
        deadline = time.monotonic() + _CREATE_LOCK_S
        while True:
            try:
                self._client.create_collection(
                    lock, metadata={"docchat_role": "lock"}, embedding_function=None
                )
                break
            except Exception as e:  # taken: wait for it (or a transport failure: raise)
                if "exists" not in str(e).lower():
                    raise translate(e, self.settings) from None
                if time.monotonic() > deadline:  # its holder died mid-create
                    with contextlib.suppress(Exception):
                        self._client.delete_collection(lock)
                    deadline = time.monotonic() + _CREATE_LOCK_S
                time.sleep(0.05)
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                self._client.delete_collection(lock)

    def collection_info(self, name: str) -> CollectionInfo:
        chunks, docs = self._pair(name)
        ready = self._ready_records(docs).values()
        return _from_meta(
            CollectionInfo,
            {"created": 0.0, **chunks.metadata},
            name=name,
            documents=len(ready),
            chunks=sum(d.chunks for d in ready),
            size=sum(d.size for d in ready),
        )

    def collection_names(self) -> list[str]:
        """The collections' names, sorted: one listing, no per-collection reads."""
        return sorted(str(c.metadata["docchat_name"]) for c in self._all_raw())

    def list_collections(self) -> list[CollectionInfo]:
        return [self.collection_info(n) for n in self.collection_names()]

    def rename_collection(self, old: str, new: str) -> None:
        new = _valid_name(new)
        with self._lock:
            if old != new and self.has_collection(new):
                raise CollectionExistsError(f"A collection named {new!r} already exists.")
            chunks, _ = self._pair(old)
            meta = dict(chunks.metadata)
            meta["docchat_name"] = new
            self._forget_pairs()
            self._call(chunks.modify, metadata=meta)

    def delete_collection(self, name: str) -> None:
        with self._lock:
            chunks, docs = self._pair(name)
            doc_ids = list(self._records(docs))
            self._forget_pairs()
            self._call(self._client.delete_collection, chunks.name)
            self._call(self._client.delete_collection, docs.name)
            self._records_changed(docs)
            for doc_id in doc_ids:
                self._drop_original_if_unused(doc_id)

    # -- documents --------------------------------------------------------------------

    def _records(self, docs: Any) -> dict[str, DocumentInfo]:
        """The collection's document records (a copy: callers may change it).

        Every search reads them (twice: the collection's counts, then which documents
        are ready), and reading 1,000 records costs about 50 ms (Chroma's get and
        their metadata), which made search at 1M chunks (1,000 documents) 8x slower
        than at 100k. The embedded store has one process (the data dir is locked), so
        its records are kept and dropped at each write here (`_records_changed`); a
        Chroma server has other writers, so they are read every time there.
        """
        if self.settings.server_mode:
            return self._read_records(docs)
        key = docs.name
        with self._records_lock:
            kept = self._records_kept.get(key)
            generation = self._records_generation.get(key, 0)
        if kept is not None:
            return dict(kept)
        records = self._read_records(docs)
        with self._records_lock:
            # Not kept if a write came while reading: it may have read the old state.
            if self._records_generation.get(key, 0) == generation:
                self._records_kept[key] = records
        return dict(records)

    def _read_records(self, docs: Any) -> dict[str, DocumentInfo]:
        got = self._call(docs.get, include=["metadatas"])
        return {
            i: _from_meta(DocumentInfo, m, doc_id=i)
            for i, m in zip(got["ids"], got["metadatas"], strict=True)
        }

    def _records_changed(self, docs: Any, written: DocumentInfo | None = None) -> None:
        """After a write: reads in flight keep nothing; the kept records are dropped, or
        given `written` (the one record a successful upsert wrote)."""
        with self._records_lock:
            self._records_generation[docs.name] = self._records_generation.get(docs.name, 0) + 1
            kept = self._records_kept.pop(docs.name, None)
            if kept is not None and written is not None:
                self._records_kept[docs.name] = {**kept, written.doc_id: written}

    def _ready_records(self, docs: Any) -> dict[str, DocumentInfo]:
        return {k: v for k, v in self._records(docs).items() if v.status == "ready"}

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

    def _write_record(self, docs: Any, info: DocumentInfo) -> None:
        meta = _to_meta(info, outside="doc_id")
        # The records collection needs a vector per record; a constant one is enough.
        try:
            self._call(docs.upsert, ids=[info.doc_id], embeddings=[[1.0]], metadatas=[meta])
        except BaseException:
            self._records_changed(docs)
            raise
        # Written: the kept records take it as a read would give it, instead of all of
        # them being read again. An upload writes each file's record twice and reads
        # the records three times per file: 1,000 records cost about 50 ms a read.
        self._records_changed(docs, _from_meta(DocumentInfo, meta, doc_id=info.doc_id))

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
                metadatas=[_to_meta(c, outside="text") for c in part],
            )

    def finish_document(self, collection: str, info: DocumentInfo) -> None:
        """Mark a document ready: from now on it is listed and searched."""
        _, docs = self._pair(collection)
        self._write_record(docs, replace(info, status="ready"))

    def delete_pending(self, collection: str, doc_id: str) -> None:
        """Undo a `begin_document` whose chunks were not all written."""
        self._remove(*self._pair(collection), doc_id)

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
            self._write_record(docs, replace(info, status="pending"))
            self._remove(chunks, docs, info.doc_id)
            self._drop_original_if_unused(info.doc_id)
            return info

    def chunks_of(self, collection: str, doc_id: str) -> list[Chunk]:
        col, _ = self._pair(collection)
        got = self._call(col.get, where={"doc_id": doc_id}, include=["documents", "metadatas"])
        return sorted(_chunks_in(got), key=lambda c: c.index)

    def all_chunks(self, collection: str) -> Iterable[Chunk]:
        """Every chunk of every ready document, in pages of 5,000 (for lexical indexes)."""
        col, docs = self._pair(collection)
        ready = set(self._ready_records(docs))
        offset = 0
        while True:
            got = self._call(col.get, include=["documents", "metadatas"], limit=5000, offset=offset)
            if not got["ids"]:
                return
            yield from (c for c in _chunks_in(got) if c.doc_id in ready)
            offset += len(got["ids"])

    def chunks_by_id(self, collection: str, ids: Sequence[str]) -> tuple[list[Chunk], np.ndarray]:
        """The chunks with these ids that exist, and their vectors (one row each)."""
        col, _ = self._pair(collection)
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        got = self._call(col.get, ids=list(ids), include=["documents", "metadatas", "embeddings"])
        return _chunks_in(got), np.asarray(got["embeddings"], dtype=np.float32)

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
        chunks = _chunks_in(got, 0)
        for c, distance in zip(chunks, got["distances"][0], strict=True):
            if c.doc_id in ready:
                score = 1.0 - float(distance)  # cosine distance -> similarity
                hits.append(Hit(chunk=c, score=score, dense_score=score))
        return hits

    # -- originals (the files are `originals.py`'s; when one is unused is decided here) --

    def save_original(self, doc_id: str, data: bytes) -> None:
        self.originals.save(doc_id, data)

    def original(self, doc_id: str) -> bytes:
        return self.originals.read(doc_id)

    def _drop_original_if_unused(self, doc_id: str) -> None:
        for col in self._all_raw():
            if self._call(self._open(col.metadata["docchat_docs"]).get, ids=[doc_id])["ids"]:
                return
        self.originals.drop(doc_id)

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
            self.originals.remove_stray_tmp_files()
        return removed
