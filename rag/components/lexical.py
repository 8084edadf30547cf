"""BM25 keyword search next to the dense search, one index per collection.

Chroma stays the source of truth. The lexical index (bm25.py) is derived from it and
kept in step by `Lexical.sync`, which compares the collection's ready documents with
the documents the index holds: new ones are read back from the store and tokenized,
removed ones are dropped. That covers adds, replacements, deletes, crash recovery
and writes by another process (server mode) alike. The engine syncs after each
ingest and delete; every search syncs too (cheap when nothing changed).

Each index lives under `<data_dir>/lexical/<collection key>/` (the key survives a
rename) as one `.npz` written atomically after a change. A missing, unreadable or
outdated file is rebuilt from the store.

Left out: sharing one index file between processes (each keeps its own copy next to
its data dir).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from rag.components.bm25 import LexicalIndex, LexicalResult
from rag.components.store import Store
from rag.core.models import CollectionInfo

_FILE = "lexical.npz"


class Lexical:
    """The lexical indexes of all collections of one store, kept in step with it."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        self._indexes: dict[str, LexicalIndex] = {}
        self._keys: dict[tuple[str, float], str] = {}  # (name, created) -> key
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _path(self, key: str) -> Path:
        return self.root / key / _FILE

    def _key(self, info: CollectionInfo) -> str:
        # A rename keeps `created`; a new collection under an old name has another.
        named = (info.name, info.created)
        key = self._keys.get(named)
        if key is None:
            key = self._keys[named] = self.store.collection_key(info.name)
        return key

    def _index(self, key: str) -> LexicalIndex:
        index = self._indexes.get(key)
        if index is None:
            index = self._indexes[key] = LexicalIndex.load(self._path(key)) or LexicalIndex()
        return index

    def sync(self, collection: str) -> LexicalIndex:
        """The collection's index, updated to the store's ready documents."""
        key = self.store.collection_key(collection)
        ready = {d.doc_id for d in self.store.documents(collection)}
        with self._lock(key):
            index = self._index(key)
            for doc_id in set(index.docs) - ready:
                index.remove(doc_id)
            for doc_id in sorted(ready - set(index.docs)):
                index.add(doc_id, self.store.chunks_of(collection, doc_id))
            return index

    def search(
        self,
        collection: CollectionInfo,
        query: str,
        k: int,
        *,
        doc_ids: Sequence[str] | None = None,
        also: Sequence[str] = (),
        question: str | None = None,
    ) -> LexicalResult:
        """`LexicalIndex.search` on the collection's index, brought up to date first
        (`question`: the text as asked, for its naming words).

        The engine syncs after its own writes; here a full sync runs only when the
        document or chunk count differs from the store's (`collection`, read just
        before), which catches writes by other processes without a store round trip
        per search.
        """
        key = self._key(collection)
        with self._lock(key):
            index = self._index(key)
            in_step = (len(index.docs), index.chunk_count) == (
                collection.documents,
                collection.chunks,
            )
        if not in_step:
            index = self.sync(collection.name)
        with self._lock(key):
            result = index.search(query, k, doc_ids=doc_ids, also=also, question=question)
            if index.unsaved:
                index.save(self._path(key))
            return result

    def drop(self, key: str) -> None:
        """Forget a deleted collection's index (by the key it had)."""
        with self._lock(key):
            self._indexes.pop(key, None)
            self._keys = {k: v for k, v in self._keys.items() if v != key}
            shutil.rmtree(self.root / key, ignore_errors=True)
