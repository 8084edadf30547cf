"""Whether a collection's stored vectors and the current embedder belong together.

Indexing and search both need it: vectors of two models in one collection would be
compared as if they were alike, and silently rank nonsense.

Left out: converting a collection to another model (that is a re-index).
"""

from __future__ import annotations

from rag.components.embeddings import Embedder
from rag.core.errors import ReindexNeededError
from rag.core.models import CollectionInfo


def check_model(info: CollectionInfo, embedder: Embedder) -> None:
    """Refuse to mix vectors of two models in one collection."""
    if info.model != embedder.name or info.dimension != embedder.dimension:
        raise ReindexNeededError(
            f"Collection {info.name!r} was indexed with {info.model} ({info.dimension} dims) "
            f"but the current embedding model is {embedder.name} ({embedder.dimension} dims). "
            "Re-index needed: re-index its documents or switch back to that model."
        )
