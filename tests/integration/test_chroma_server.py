"""DocChat against a real Chroma server (`chroma run` on 127.0.0.1), through an outage.

Ingest, search, delete and re-index work as with the embedded store; a second process
(the CLI) shares the index; when the server stops, is paused (hung), or comes back,
DocChat says so clearly (`StoreUnavailableError`, within the store's timeout instead
of hanging) and the same DocChat object works again once the server is back:
Chroma's HTTP client reconnects by itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import rag.components.chroma
from rag import DocChat, Settings, StoreUnavailableError
from tests.fixtures.chroma_server import ChromaServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import ROOT, free_port

CATS = b"# Cats\n\nCats sleep sixteen hours a day.\n\n## Food\n\nCats eat fish and mice.\n"
DOGS = b"Dogs bark at strangers and love long walks in the park every morning.\n"
OWLS = b"Owls hunt at night and turn their heads almost all the way around.\n"


def outage(call: Callable[[], object], port: int, within: float) -> str:
    """The message of the StoreUnavailableError `call` raises, checked to be prompt and clear."""
    t0 = time.monotonic()
    with pytest.raises(StoreUnavailableError) as info:
        call()
    assert time.monotonic() - t0 < within
    message = str(info.value)
    assert f"Chroma server at 127.0.0.1:{port}" in message
    # Refused connections ask whether it runs; a server that hangs mid-restart times out.
    assert "Is it running?" in message or "did not answer within" in message
    return message


@pytest.mark.slow
def test_chroma_server_mode_survives_an_outage(
    tmp_path: Path, server: ChromaServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A hung server, reported fast.
    monkeypatch.setattr(rag.components.chroma, "_SERVER_TIMEOUT_S", 2.0)
    settings = Settings(
        data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=server.port, min_score=0
    )
    app = DocChat.open(settings, embedder=HashEmbedder())

    # Ingest, search, delete, re-index: as with the embedded store.
    assert app.ingest("cats.md", CATS).status == "indexed"
    dogs = app.ingest("dogs.txt", DOGS)
    assert dogs.status == "indexed"
    assert app.search("what do cats eat")[1][0].chunk.file == "cats.md"
    app.delete_document("dogs.txt")
    assert [d.name for d in app.documents()] == ["cats.md"]
    assert all(h.chunk.file != "dogs.txt" for h in app.search("dogs bark strangers")[1])
    results = app.reindex(chunk_tokens=32, chunk_overlap=4)
    assert [r.status for r in results] == ["indexed"]
    assert app.collection().chunk_tokens == 32 and [c.name for c in app.collections()] == [
        "default"
    ]

    # Another process (the CLI) shares the server's index: no data-dir lock in server mode.
    env = {
        **os.environ,
        "DOCCHAT_DATA_DIR": str(settings.data_dir),
        "DOCCHAT_CHROMA_HOST": "127.0.0.1",
        "DOCCHAT_CHROMA_PORT": str(server.port),
    }
    command = [sys.executable, "-m", "rag", "docs", "--json"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    assert [d["name"] for d in json.loads(proc.stdout)] == ["cats.md"]

    # The server stops: every call says so at once, nothing hangs, nothing else escapes.
    server.stop()
    message = outage(lambda: app.search("cats"), server.port, within=5)
    outage(lambda: app.documents(), server.port, within=5)
    outage(lambda: app.ingest("owls.txt", OWLS), server.port, within=5)
    outage(lambda: app.ask("what do cats eat"), server.port, within=5)

    # It comes back: the same DocChat works again, and nothing was lost.
    server.start()
    assert app.search("what do cats eat")[1][0].chunk.file == "cats.md"
    assert app.ingest("owls.txt", OWLS).status == "indexed"
    assert sorted(d.name for d in app.documents()) == ["cats.md", "owls.txt"]
    assert app.services.store.count_chunks("default") == sum(d.chunks for d in app.documents())

    # A hung server (paused, port open): reported after the timeout, not waited on forever.
    server.pause()
    hung = outage(lambda: app.search("owls"), server.port, within=10)
    server.resume()
    assert app.search("owls hunt at night")[1][0].chunk.file == "owls.txt"
    print(f"\nchroma server: outage -> {message!r}; hung -> {hung!r}; recovered both times")


def test_unreachable_server_at_start_is_clear(tmp_path: Path) -> None:
    port = free_port()
    settings = Settings(data_dir=tmp_path / "data", chroma_host="127.0.0.1", chroma_port=port)
    outage(lambda: DocChat.open(settings, embedder=HashEmbedder()), port, within=10)
