"""Libraries ("collections" to the user) created, listed, renamed and deleted.

Each library is two Chroma collections with a random id in their names, so a rename
only changes metadata: `dc-<id>-c`, the chunks with their embeddings (always passed
explicitly: Chroma's default embedding function would download a model), cosine
space; `dc-<id>-d`, one record per document. In server mode, one process at a time
creates a library of a name (`_creating`: a Chroma collection used as a mutex).
Deleting a library drops the original files no other library holds. Each of these
bumps the versions of the names it changes (`versions.py`) once the change is made.

Left out: the documents and chunks inside a library (`store.py`), finding a library's
collections and records (`store_base.py`).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

from rag.components.chroma import translate
from rag.components.store_base import ROLE_CHUNKS, ROLE_DOCS, StoreBase
from rag.components.store_meta import from_meta
from rag.core.errors import CollectionExistsError, RagError
from rag.core.models import CollectionInfo

_CREATE_LOCK_S = 30.0  # server mode: a create of a collection takes well under this


def _valid_name(name: str) -> str:
    if not 1 <= len(name.strip()) <= 100:
        raise RagError("A collection name must have 1 to 100 characters.")
    return name.strip()


class Collections(StoreBase):
    """The libraries of one Chroma database: create, list, describe, rename, delete."""

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
                "docchat_role": ROLE_CHUNKS,
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
                metadata={"docchat_role": ROLE_DOCS, "created": now},
                embedding_function=None,
            )
            self._call(
                self._client.create_collection,
                f"dc-{key}-c",
                metadata=meta,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
            # A cache may hold an earlier collection of this name under its version.
            self.versions.bump(name)
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
        return from_meta(
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
            try:
                self._call(chunks.modify, metadata=meta)
            finally:  # (a failed call may still have renamed it on a server)
                # The new name's version differs from any a cache holds for that name
                # (an earlier collection of it, or this one before an earlier rename).
                self.versions.bump(new)
                self.versions.bump(old)

    def delete_collection(self, name: str) -> None:
        with self._lock:
            chunks, docs = self._pair(name)
            doc_ids = list(self._records(docs))
            self._forget_pairs()
            try:
                self._call(self._client.delete_collection, chunks.name)
                self._call(self._client.delete_collection, docs.name)
            finally:
                self._records_changed(docs)
                self.versions.bump(name)
            for doc_id in doc_ids:
                self._drop_original_if_unused(doc_id)

    def _drop_original_if_unused(self, doc_id: str) -> None:
        """Delete a document's original file unless a library still holds the document
        (the files are `originals.py`'s; when one is unused is decided here)."""
        for col in self._all_raw():
            if self._call(self._open(col.metadata["docchat_docs"]).get, ids=[doc_id])["ids"]:
                return
        self.originals.drop(doc_id)
