"""Shared resources every service of one engine uses: the embedder, loaded on first
use (and a collection's tuned model, when it has one), and a lock per collection that
serializes writes to it.

Left out: locks across processes (the store's own records make a second writer's
work safe: see `components/store.py`), and unloading the model once loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from rag.components.embeddings import Embedder
from rag.components.tuned_models import TunedModels, is_tuned
from rag.core.models import CollectionInfo
from rag.core.settings import Settings


class LazyEmbedder:
    """The embedder, built by `factory` on first use (a page can render before the
    model is in memory), or the one given; and the tuned models (`tuned`) a
    collection may be indexed with instead (`for_collection`)."""

    def __init__(
        self,
        factory: Callable[[], Embedder],
        embedder: Embedder | None = None,
        *,
        settings: Settings | None = None,
    ) -> None:
        self._factory = factory
        self._embedder = embedder
        self._lock = threading.Lock()
        self.settings = settings or Settings()
        self.tuned = TunedModels(Path(self.settings.data_dir) / "tuned")

    def for_collection(self, info: CollectionInfo) -> Embedder:
        """What a collection's vectors are searched and extended with: its tuned model
        when it was indexed with one, else the engine's embedder."""
        return self.for_model(info.model)

    def for_model(self, name: str) -> Embedder:
        """A tuned model by name; any other name (or "") is the engine's embedder
        (`check_model` then says whether it is the one a collection needs)."""
        if is_tuned(name):
            return self.tuned.embedder(name, self.settings)
        return self.get()

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
