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

The embedded store (`PersistentClient`) may be opened by one process at a time: a
lock file under the data dir makes a second process fail at once with a clear
message. A Chroma server (`HttpClient`) serves many processes.

Originals are kept content-addressed under `<data_dir>/files/`, never under the
name a user gave them.

Left out: multi-tenant databases, Chroma's own full-text index (see lexical.py).
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    DocumentNotFoundError,
    RagError,
    StoreUnavailableError,
)
from .files import write_atomic
from .models import Chunk, CollectionInfo, DocumentInfo, Hit
from .settings import Settings

_ROLE_CHUNKS = "chunks"
_ROLE_DOCS = "docs"
_ADD_BATCH = 1000  # Chroma caps a single add; stay well below it
_PENDING_GRACE_S = 600.0  # server mode: another process may still be writing
_SERVER_TIMEOUT_S = 30.0  # server mode: a request unanswered this long means an outage

_locks: dict[Path, Any] = {}  # data dir -> open lock file, one per process
_locks_guard = threading.Lock()


def _lock_data_dir(data_dir: Path) -> None:
    """Take the data dir for this process, or fail at once if another holds it."""
    key = data_dir.resolve()
    with _locks_guard:
        if key in _locks:
            return
        data_dir.mkdir(parents=True, exist_ok=True)
        f = open(key / ".docchat.lock", "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "unknown"
            f.close()
            raise StoreUnavailableError(
                f"The data directory {data_dir} is in use by another DocChat process "
                f"(pid {holder}). Stop it, use another DOCCHAT_DATA_DIR, or run a Chroma "
                "server (DOCCHAT_CHROMA_HOST) to share one index between processes."
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        _locks[key] = f


def _limit_waits(client: Any) -> None:
    """Give Chroma's HTTP client timeouts: it has none, so a hung server would hang the app.

    (Its session is private; tests/test_chroma_server.py checks a stopped server is
    reported within the timeout, so a Chroma upgrade that moves it is noticed.)
    """
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(_SERVER_TIMEOUT_S, connect=5.0)


def _chunk_metadata(c: Chunk) -> dict[str, str | int]:
    meta: dict[str, str | int] = {
        "doc_id": c.doc_id,
        "file": c.file,
        "index": c.index,
        "section": c.section,
        "start": c.start,
        "end": c.end,
        "tokens": c.tokens,
    }
    # Chroma metadata cannot hold None: absent keys mean "not applicable".
    if c.page is not None:
        meta["page"] = c.page
    if c.line_start is not None and c.line_end is not None:
        meta["line_start"] = c.line_start
        meta["line_end"] = c.line_end
    return meta


def _chunk_from(text: str, meta: dict[str, Any]) -> Chunk:
    return Chunk(
        doc_id=str(meta["doc_id"]),
        file=str(meta["file"]),
        index=int(meta["index"]),
        text=text,
        start=int(meta["start"]),
        end=int(meta["end"]),
        page=int(meta["page"]) if "page" in meta else None,
        section=str(meta.get("section", "")),
        line_start=int(meta["line_start"]) if "line_start" in meta else None,
        line_end=int(meta["line_end"]) if "line_end" in meta else None,
        tokens=int(meta.get("tokens", 0)),
    )


def _doc_from(doc_id: str, meta: dict[str, Any]) -> DocumentInfo:
    warnings = str(meta.get("warnings", ""))
    return DocumentInfo(
        doc_id=doc_id,
        name=str(meta["name"]),
        kind=str(meta.get("kind", "")),
        pages=int(meta.get("pages", 0)),
        chunks=int(meta.get("chunks", 0)),
        size=int(meta.get("size", 0)),
        added=float(meta.get("added", 0.0)),
        status=str(meta.get("status", "ready")),
        warnings=tuple(w for w in warnings.split("\n") if w),
    )


class Store:
    """Collections, documents and chunks in Chroma; originals on disk."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.data_dir = Path(settings.data_dir)
        self.files_dir = self.data_dir / "files"
        self._client = self._connect(settings)
        self._lock = threading.RLock()
        # Collection handles by name, kept only in embedded mode: this process holds the
        # data dir's lock, so no one else renames or deletes behind it. (Looking a pair up
        # lists every collection: a few ms, several times per ingested file.)
        self._pairs: dict[str, tuple[Any, Any]] = {}
        self.recover()

    # -- connection ---------------------------------------------------------------

    def _connect(self, settings: Settings) -> Any:
        os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        try:
            if settings.server_mode:
                client = chromadb.HttpClient(
                    host=settings.chroma_host,
                    port=settings.chroma_port,
                    ssl=settings.chroma_ssl,
                    settings=chroma_settings,
                )
                _limit_waits(client)
                client.heartbeat()
                return client
            _lock_data_dir(self.data_dir)
            return chromadb.PersistentClient(
                path=str(self.data_dir / "chroma"), settings=chroma_settings
            )
        except RagError:
            raise
        except Exception as e:  # chromadb raises assorted transport/storage errors
            raise self._unavailable(e) from None

    def _unavailable(self, e: Exception) -> StoreUnavailableError:
        if self.settings.server_mode:
            server = f"Chroma server at {self.settings.chroma_host}:{self.settings.chroma_port}"
            if "timeout" in type(e).__name__.lower():
                return StoreUnavailableError(
                    f"The {server} did not answer within "
                    f"{_SERVER_TIMEOUT_S:.0f} s. It may be overloaded or stuck; try again."
                )
            return StoreUnavailableError(
                f"Cannot reach the {server} ({type(e).__name__}). Is it running?"
            )
        return StoreUnavailableError(
            f"Cannot open the index under {self.data_dir} ({type(e).__name__}: {e})."
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a Chroma call, turning transport failures into a clear RagError."""
        try:
            return fn(*args, **kwargs)
        except RagError:
            raise
        except Exception as e:
            # A deleted collection: chromadb's NotFoundError, or a ValueError-like
            # "does not exist" from older paths.
            message = str(e).lower()
            if type(e).__name__ == "NotFoundError" or (
                isinstance(e, (ValueError, KeyError, TypeError))
                and ("does not exist" in message or "not found" in message)
            ):
                self._forget_pairs()
                raise CollectionNotFoundError("That collection no longer exists.") from None
            if isinstance(e, (ValueError, KeyError, TypeError)):
                raise  # Chroma's argument errors, or a bug here: surface them in tests
            raise self._unavailable(e) from None

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
                docs = self._call(
                    self._client.get_collection,
                    col.metadata["docchat_docs"],
                    embedding_function=None,
                )
                chunks = self._call(self._client.get_collection, col.name, embedding_function=None)
                return chunks, docs
        raise CollectionNotFoundError(f"No collection named {name!r}.")

    def collection_key(self, name: str) -> str:
        """A stable id of a collection that survives renames (for indexes kept beside it)."""
        chunks, _ = self._pair(name)
        return str(chunks.name)

    def has_collection(self, name: str) -> bool:
        return any(c.metadata.get("docchat_name") == name for c in self._all_raw())

    def create_collection(
        self,
        name: str,
        *,
        model: str,
        dimension: int,
        chunk_tokens: int,
        chunk_overlap: int,
    ) -> CollectionInfo:
        name = name.strip()
        if not name or len(name) > 100:
            raise RagError("A collection name must have 1 to 100 characters.")
        with self._lock:
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

    def collection_info(self, name: str) -> CollectionInfo:
        chunks, docs = self._pair(name)
        m = chunks.metadata
        ready = self._ready_records(docs)
        return CollectionInfo(
            name=name,
            model=str(m["model"]),
            dimension=int(m["dimension"]),
            chunk_tokens=int(m["chunk_tokens"]),
            chunk_overlap=int(m["chunk_overlap"]),
            documents=len(ready),
            chunks=sum(d.chunks for d in ready.values()),
            created=float(m.get("created", 0.0)),
            size=sum(d.size for d in ready.values()),
        )

    def collection_names(self) -> list[str]:
        """The collections' names, sorted: one listing, no per-collection reads."""
        return sorted(str(c.metadata["docchat_name"]) for c in self._all_raw())

    def list_collections(self) -> list[CollectionInfo]:
        return [self.collection_info(n) for n in self.collection_names()]

    def rename_collection(self, old: str, new: str) -> None:
        new = new.strip()
        if not new or len(new) > 100:
            raise RagError("A collection name must have 1 to 100 characters.")
        with self._lock:
            if old != new and self.has_collection(new):
                raise CollectionExistsError(f"A collection named {new!r} already exists.")
            chunks, _ = self._pair(old)
            meta = dict(chunks.metadata)
            meta["docchat_name"] = new
            self._forget_pairs()
            self._call(chunks.modify, metadata=meta)

    def update_collection_settings(
        self, name: str, *, model: str, dimension: int, chunk_tokens: int, chunk_overlap: int
    ) -> None:
        """Record new index settings (after every document was re-indexed with them)."""
        with self._lock:
            chunks, _ = self._pair(name)
            meta = dict(chunks.metadata)
            meta.update(
                model=model,
                dimension=dimension,
                chunk_tokens=chunk_tokens,
                chunk_overlap=chunk_overlap,
            )
            self._forget_pairs()
            self._call(chunks.modify, metadata=meta)

    def delete_collection(self, name: str) -> None:
        with self._lock:
            chunks, docs = self._pair(name)
            doc_ids = list(self._records(docs))
            self._forget_pairs()
            self._call(self._client.delete_collection, chunks.name)
            self._call(self._client.delete_collection, docs.name)
            for doc_id in doc_ids:
                self._drop_original_if_unused(doc_id)

    # -- documents --------------------------------------------------------------------

    def _records(self, docs: Any) -> dict[str, DocumentInfo]:
        got = self._call(docs.get, include=["metadatas"])
        return {i: _doc_from(i, m) for i, m in zip(got["ids"], got["metadatas"], strict=True)}

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
        meta = {
            "name": info.name,
            "kind": info.kind,
            "pages": info.pages,
            "chunks": info.chunks,
            "size": info.size,
            "added": info.added,
            "status": info.status,
            "warnings": "\n".join(info.warnings),
        }
        # The records collection needs a vector per record; a constant one is enough.
        self._call(docs.upsert, ids=[info.doc_id], embeddings=[[1.0]], metadatas=[meta])

    def begin_document(self, collection: str, info: DocumentInfo) -> None:
        """Register a document as pending and clear any chunks a crash left behind."""
        chunks, docs = self._pair(collection)
        self._write_record(docs, DocumentInfo(**{**info.__dict__, "status": "pending"}))
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
                metadatas=[_chunk_metadata(c) for c in part],
            )

    def finish_document(self, collection: str, info: DocumentInfo) -> None:
        """Mark a document ready: from now on it is listed and searched."""
        _, docs = self._pair(collection)
        self._write_record(docs, DocumentInfo(**{**info.__dict__, "status": "ready"}))

    def delete_pending(self, collection: str, doc_id: str) -> None:
        """Undo a `begin_document` whose chunks were not all written."""
        chunks, docs = self._pair(collection)
        self._call(chunks.delete, where={"doc_id": doc_id})
        self._call(docs.delete, ids=[doc_id])

    def delete_document(self, collection: str, doc_id: str) -> DocumentInfo:
        with self._lock:
            info = self.document(collection, doc_id)
            chunks, docs = self._pair(collection)
            # Hide it first, then remove chunks, then the record: a crash in between
            # leaves a pending record that recover() finishes removing.
            self._write_record(docs, DocumentInfo(**{**info.__dict__, "status": "pending"}))
            self._call(chunks.delete, where={"doc_id": info.doc_id})
            self._call(docs.delete, ids=[info.doc_id])
            self._drop_original_if_unused(info.doc_id)
            return info

    def chunks_of(self, collection: str, doc_id: str) -> list[Chunk]:
        col, _ = self._pair(collection)
        got = self._call(col.get, where={"doc_id": doc_id}, include=["documents", "metadatas"])
        chunks = [
            _chunk_from(t, m) for t, m in zip(got["documents"], got["metadatas"], strict=True)
        ]
        return sorted(chunks, key=lambda c: c.index)

    def all_chunks(self, collection: str) -> Iterable[Chunk]:
        """Every chunk of every ready document, in pages of 5,000 (for lexical indexes)."""
        col, docs = self._pair(collection)
        ready = set(self._ready_records(docs))
        offset = 0
        while True:
            got = self._call(col.get, include=["documents", "metadatas"], limit=5000, offset=offset)
            if not got["ids"]:
                return
            for t, m in zip(got["documents"], got["metadatas"], strict=True):
                if m["doc_id"] in ready:
                    yield _chunk_from(t, m)
            offset += len(got["ids"])

    def chunks_by_id(self, collection: str, ids: Sequence[str]) -> tuple[list[Chunk], np.ndarray]:
        """The chunks with these ids that exist, and their vectors (one row each)."""
        col, _ = self._pair(collection)
        if not ids:
            return [], np.zeros((0, 0), dtype=np.float32)
        got = self._call(col.get, ids=list(ids), include=["documents", "metadatas", "embeddings"])
        rows = zip(got["documents"], got["metadatas"], strict=True)
        return [_chunk_from(t, m) for t, m in rows], np.asarray(got["embeddings"], dtype=np.float32)

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
        for t, m, d in zip(
            got["documents"][0], got["metadatas"][0], got["distances"][0], strict=True
        ):
            if m["doc_id"] in ready:
                score = 1.0 - float(d)  # cosine distance -> similarity
                hits.append(Hit(chunk=_chunk_from(t, m), score=score, dense_score=score))
        return hits

    # -- originals ----------------------------------------------------------------------

    def _original_path(self, doc_id: str) -> Path:
        if not doc_id or not all(ch in "0123456789abcdef" for ch in doc_id):
            raise DocumentNotFoundError("Invalid document id.")
        return self.files_dir / doc_id[:2] / doc_id

    def save_original(self, doc_id: str, data: bytes) -> None:
        path = self._original_path(doc_id)
        if path.exists():
            return
        write_atomic(path, data)

    def original(self, doc_id: str) -> bytes:
        try:
            return self._original_path(doc_id).read_bytes()
        except FileNotFoundError:
            raise DocumentNotFoundError("The original file is no longer stored.") from None

    def _drop_original_if_unused(self, doc_id: str) -> None:
        for col in self._all_raw():
            docs = self._call(
                self._client.get_collection, col.metadata["docchat_docs"], embedding_function=None
            )
            if self._call(docs.get, ids=[doc_id])["ids"]:
                return
        self._original_path(doc_id).unlink(missing_ok=True)

    # -- crash recovery ---------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Remove documents a crash left pending, and older twins a crash left behind.

        Returns the names of the documents removed.
        """
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
                        self._call(chunks.delete, where={"doc_id": info.doc_id})
                        self._call(docs.delete, ids=[info.doc_id])
                        removed.append(info.name)
                # A crash between "new version ready" and "old version deleted".
                newest: dict[str, DocumentInfo] = {}
                for info in sorted(records.values(), key=lambda d: d.added):
                    if info.status != "ready":
                        continue
                    old = newest.get(info.name)
                    if old is not None:
                        self._call(chunks.delete, where={"doc_id": old.doc_id})
                        self._call(docs.delete, ids=[old.doc_id])
                        removed.append(old.name)
                    newest[info.name] = info
            self._remove_stray_tmp_files()
        return removed

    def _remove_stray_tmp_files(self) -> None:
        if self.files_dir.is_dir():
            for tmp in self.files_dir.glob("*/*.tmp*"):
                tmp.unlink(missing_ok=True)

    def disk_bytes(self) -> int:
        """Size of the local index and originals (0 in server mode for the index)."""
        total = 0
        for p in self.data_dir.rglob("*"):
            if p.is_file():
                total += p.stat().st_size
        return total
