"""The ground floor of `Store`: the Chroma client, each library's two Chroma
collections found by its name, and the libraries' document records, read or kept.

A library ("collection" to the user) is two Chroma collections: the chunks one
(`ROLE_CHUNKS`), whose metadata names the library and its records collection, and
the records one (`ROLE_DOCS`), one record per document. `_pair` finds both by the
library's name; `_records` gives its document records, kept between writes in
embedded mode (`_records_changed` drops or updates them). Every Chroma call goes
through `_call` (`chroma.call`: failures become `RagError`s). `versions` holds each
library's version in the record store (`versions.py`): the floors above bump it after
each write that changes what a library shows.

Left out: creating, renaming and deleting libraries (`store_collections.py`),
documents' chunks and searches (`store.py`).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from rag.components.chroma import call, connect
from rag.components.originals import Originals
from rag.components.store_meta import from_meta, to_meta
from rag.components.versions import CollectionVersions
from rag.core.errors import CollectionNotFoundError
from rag.core.models import DocumentInfo
from rag.core.settings import Settings
from rag.records import open_database

ROLE_CHUNKS = "chunks"
ROLE_DOCS = "docs"


class StoreBase:
    """Chroma reached: the client, the libraries' collection pairs, document records."""

    def __init__(self, settings: Settings, versions: CollectionVersions | None = None) -> None:
        self.settings = settings
        # Each library's version: bumped after every write that changes what it shows,
        # so other processes' caches of it know to read it again.
        if versions is None:
            versions = CollectionVersions(open_database(settings))
        self.versions = versions
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

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a Chroma call, its failures turned into a clear RagError (`chroma.call`)."""
        try:
            return call(self.settings, fn, *args, **kwargs)
        except CollectionNotFoundError:
            self._forget_pairs()  # renamed or deleted behind our back
            raise

    # -- a library's two Chroma collections ---------------------------------------

    def _all_raw(self) -> list[Any]:
        cols = self._call(self._client.list_collections)
        return [c for c in cols if (c.metadata or {}).get("docchat_role") in (ROLE_CHUNKS,)]

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

    # -- document records -----------------------------------------------------------

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
            i: from_meta(DocumentInfo, m, doc_id=i)
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

    def _write_record(self, docs: Any, info: DocumentInfo) -> None:
        meta = to_meta(info, outside="doc_id")
        # The records collection needs a vector per record; a constant one is enough.
        try:
            self._call(docs.upsert, ids=[info.doc_id], embeddings=[[1.0]], metadatas=[meta])
        except BaseException:
            self._records_changed(docs)
            raise
        # Written: the kept records take it as a read would give it, instead of all of
        # them being read again. An upload writes each file's record twice and reads
        # the records three times per file: 1,000 records cost about 50 ms a read.
        self._records_changed(docs, from_meta(DocumentInfo, meta, doc_id=info.doc_id))
