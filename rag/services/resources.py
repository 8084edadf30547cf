"""Shared resources every service of one engine uses: the embedder, loaded on first
use, and a lock per collection that serializes writes to it.

Left out: locks across processes (the store's own records make a second writer's
work safe: see `components/store.py`), and unloading the model once loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from rag.components.embeddings import Embedder


class LazyEmbedder:
    """The embedder, built by `factory` on first use (a page can render before the
    model is in memory), or the one given."""

    def __init__(self, factory: Callable[[], Embedder], embedder: Embedder | None = None) -> None:
        self._factory = factory
        self._embedder = embedder
        self._lock = threading.Lock()

    def get(self) -> Embedder:
        with self._lock:
            if self._embedder is None:
                self._embedder = self._factory()
            return self._embedder

    @property
    def loaded(self) -> bool:
        return self._embedder is not None


class WriteLocks:
    """One lock per collection name: writes to a collection are one at a time."""

    def __init__(self) -> None:
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def __call__(self, collection: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(collection, threading.Lock())
