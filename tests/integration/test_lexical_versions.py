"""The BM25 index follows the collection's version, not its counts: a document replaced
by another engine (with the same chunk count, or stored again under the same id) is
seen by the next search of this one, in one process and across two processes on a
Chroma server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rag import DocChat, Settings
from tests.fixtures.chroma_server import ChromaServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import ROOT

OLD = b"Cats sleep sixteen hours a day on the warm windowsill.\n"
NEW = b"Cats chase laser pointers around the kitchen at midnight.\n"


def top_docs(app: DocChat, query: str) -> set[str]:
    """The documents of the chunks a BM25 search of `app`'s own index ranks."""
    result = app.services.lexical.search(app.collection(), query, 5)
    return {chunk_id.rsplit(":", 1)[0] for chunk_id, _ in result.top}


def test_a_replacement_with_equal_chunk_counts_by_another_engine_is_seen(app: DocChat) -> None:
    # Two engines over one store, each with its own BM25 index: as two processes are.
    other = DocChat.open(app.settings, embedder=HashEmbedder(), store=app.services.store)
    try:
        old = app.ingest("cats.txt", OLD)
        assert top_docs(app, "windowsill") == {old.doc_id}

        new = other.ingest("cats.txt", NEW)
        assert new.replaced == old.doc_id and new.chunks == old.chunks  # same counts
        assert top_docs(app, "laser pointers midnight") == {new.doc_id}
        assert top_docs(app, "windowsill") == set()

        # The same bytes stored again under another name keep their id (and counts):
        # the document's mark (its record's time and name) tells them apart.
        other.delete_document("cats.txt")
        again = other.ingest("kittens.txt", NEW)
        assert again.doc_id == new.doc_id
        assert top_docs(app, "kittens") == {new.doc_id}
    finally:
        other.close()


def test_a_write_during_a_sync_is_caught_by_the_next_search(
    app: DocChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = DocChat.open(app.settings, embedder=HashEmbedder(), store=app.services.store)
    app.ingest("cats.txt", OLD)
    store = app.services.store
    documents = store.documents
    landed: list[bool] = []

    def documents_then_a_write(collection: str, **kw: bool) -> object:
        # The other engine's write lands just after this sync has read the documents:
        # the index then holds the old text, and must not be stamped as up to date.
        got = documents(collection, **kw)
        if not landed:
            landed.append(True)
            other.ingest("cats.txt", NEW)
        return got

    monkeypatch.setattr(store, "documents", documents_then_a_write)
    try:
        app.services.lexical.sync("default")
        assert landed
        new_id = store.documents("default")[0].doc_id
        assert top_docs(app, "laser pointers midnight") == {new_id}
        assert top_docs(app, "windowsill") == set()
    finally:
        other.close()


_OTHER_PROCESS = """
import json, sys
from rag import DocChat, Settings
from tests.fixtures.fakes import HashEmbedder
settings = Settings(data_dir=sys.argv[1], chroma_host="127.0.0.1", chroma_port=int(sys.argv[2]))
app = DocChat.open(settings, embedder=HashEmbedder())
result = app.ingest("cats.txt", sys.stdin.buffer.read())
print(json.dumps({"doc_id": result.doc_id, "chunks": result.chunks, "replaced": result.replaced}))
app.close()
"""


@pytest.mark.slow
def test_a_replacement_by_another_process_is_seen(tmp_path: Path, server: ChromaServer) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_host="127.0.0.1",
                        chroma_port=server.port, min_score=0.0)  # fmt: skip
    app = DocChat.open(settings, embedder=HashEmbedder())
    try:
        old = app.ingest("cats.txt", OLD)
        assert top_docs(app, "windowsill") == {old.doc_id}
        proc = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(_OTHER_PROCESS), str(settings.data_dir),
             str(server.port)],
            input=NEW, capture_output=True, timeout=120, cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        new = json.loads(proc.stdout.decode().strip().splitlines()[-1])
        assert new["replaced"] == old.doc_id and new["chunks"] == old.chunks
        assert top_docs(app, "laser pointers midnight") == {new["doc_id"]}
        assert top_docs(app, "windowsill") == set()
    finally:
        app.close()


def test_a_restarted_engine_reads_back_only_the_documents_that_changed(
    app: DocChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.ingest("cats.txt", OLD)
    app.ingest("dogs.txt", b"Dogs bark at strangers in the park.\n")
    assert top_docs(app, "windowsill")  # (the index file is saved at a search)
    store = app.services.store
    read: list[str] = []
    chunks_of = store.chunks_of

    def counted(collection: str, doc_id: str) -> object:
        read.append(doc_id)
        return chunks_of(collection, doc_id)

    monkeypatch.setattr(store, "chunks_of", counted)
    # A new engine loads the saved index and syncs once: the marks match, nothing is read.
    fresh = DocChat.open(app.settings, embedder=HashEmbedder(), store=store)
    try:
        assert top_docs(fresh, "windowsill") and read == []
        new = app.ingest("cats.txt", NEW)
        read.clear()
        assert top_docs(fresh, "laser pointers") == {new.doc_id} and read == [new.doc_id]
    finally:
        fresh.close()
