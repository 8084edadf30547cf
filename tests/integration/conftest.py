"""Integration fixtures: a DocChat on a real (embedded) Chroma, the real embedding model.

Only this layer (and the browser's) may build them: tests/unit stays free of Chroma
and the model (tests/unit/conftest.py fails a test that tries).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rag import DocChat, Settings
from tests.fixtures.fakes import HashEmbedder


@pytest.fixture
def app(settings: Settings) -> Iterator[DocChat]:
    app = DocChat.open(settings, embedder=HashEmbedder())
    yield app
    app.close()


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    from rag.components.torch_embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("all-MiniLM-L6-v2")
