"""BM25 keyword search next to the dense search, one index per collection.

Chroma stays the source of truth. The lexical index (bm25.py) is derived from it and
kept in step by `Lexical.sync`, which compares the collection's ready documents with
the documents the index holds, each by its mark (its id, when its record was written,
its chunk count and name): new or changed ones are read back from the store and
tokenized, removed ones are dropped. That covers adds, replacements (even by a
document of the same id or chunk count), deletes and crash recovery alike.

Whether to sync at all is decided by the collection's version in the record store
(`versions.py`), which every write to the collection bumps once it is visible, in
whichever process made it. A sync reads the version before the documents and stamps
the index with it (and the collection's name); a search reads the version (one small
query) and syncs when the index's stamp differs. A write landing during a sync thus
leaves an older stamp, and the next search syncs again. The engine also syncs after
each of its own ingests and deletes.

Each index lives under `<data_dir>/lexical/<collection key>/` (the key survives a
rename) as one `.npz`, the marks in the same file, written atomically after a change.
A missing, unreadable or outdated file is rebuilt from the store. The stamp is not
saved: after a load the first search syncs, reading back only the documents whose
marks differ (a saved version could be trusted wrongly: the data dir may since have
been pointed at another record store, whose versions count from 0 again).

Left out: sharing the index in memory between processes (each keeps its own, and
several processes on one data dir write the same file, each a whole index).
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Sequence
from pathlib import Path

from rag.components.bm25 import LexicalIndex, LexicalResult
from rag.components.store import Store
from rag.core.models import CollectionInfo, DocumentInfo

_FILE = "lexical.npz"


def _mark(doc: DocumentInfo) -> str:
    """What the store says of a document that a new version of it changes: its record
    is rewritten with a new `added` time whenever it is stored again (the same bytes,
    and so the same id, may come back under another name or be split anew)."""
    return f"{doc.added:.6f} {doc.chunks} {doc.name}"


def _stamp(collection: str, version: int) -> str:
    # The name too: a rename keeps the collection key, and versions are by name.
    return f"{version} {collection}"


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
        """The collection's index, updated to the store's ready documents and stamped
        with the collection's version as read before them."""
        key = self.store.collection_key(collection)
        version = self.store.versions.of(collection)
        ready = {d.doc_id: _mark(d) for d in self.store.documents(collection)}
        with self._lock(key):
            index = self._index(key)
            for doc_id in set(index.docs) | set(index.marks):
                if index.marks.get(doc_id) != ready.get(doc_id):
                    index.remove(doc_id)
            for doc_id in sorted(set(ready) - set(index.docs)):
                index.add(doc_id, self.store.chunks_of(collection, doc_id), ready[doc_id])
            index.stamp = _stamp(collection, version)
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

        A sync runs only when the collection's version differs from the one the index
        was stamped with: one record-store query per search, no Chroma round trip,
        and any write by any process since the last sync is caught.
        """
        key = self._key(collection)
        stamp = _stamp(collection.name, self.store.versions.of(collection.name))
        with self._lock(key):
            index = self._index(key)
            in_step = index.stamp == stamp
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
