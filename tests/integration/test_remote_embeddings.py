"""Remote embeddings (`rag/remote_embeddings.py`) over real HTTP.

A second DocChat's own API (`rag.api.serve_in_thread`, the local MiniLM behind it) is
the remote server: a DocChat pointed at its `/v1/embeddings` ingests and searches
end to end, and its vectors equal the local model's. The fake OpenAI server
(`tests/fixtures/fake_openai.py`) plays the failures: down, slow, bad JSON, wrong count,
errors echoing the key; and counts the requests of a batched call.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from rag import ConfigError, DocChat, EmbeddingServerError, ReindexNeededError, Settings
from rag.api import serve_in_thread
from rag.components.remote_embeddings import RemoteEmbedder, open_embedder, server_label
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.paths import free_port

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"
DOGS = b"# Dogs\n\nDogs bark at strangers and love long walks in the park.\n"
LONG = " ".join(f"word{i} and more text about retrieval" for i in range(200))  # > 254 tokens


@dataclass(frozen=True)
class Remote:
    base_url: str  # the serving DocChat's /v1
    label: str  # host:port, as recorded in a collection's model name
    local: Any  # the embedder behind it (the session's real MiniLM)


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> Iterator[Remote]:
    """Another DocChat's API, on 127.0.0.1, embedding with the local MiniLM."""
    data = tmp_path_factory.mktemp("server")
    server = DocChat.open(Settings(data_dir=data), embedder=real_embedder)
    port = free_port()
    stop = serve_in_thread(server, "127.0.0.1", port)
    try:
        yield Remote(f"http://127.0.0.1:{port}/v1", f"127.0.0.1:{port}", real_embedder)
    finally:
        stop()


def remote_settings(data_dir: Path, base_url: str, **more: Any) -> Settings:
    return Settings(data_dir=data_dir, min_score=0.0, embedding_base_url=base_url, **more)


def test_ingest_and_search_through_another_docchat_s_api(tmp_path: Path, remote: Remote) -> None:
    app = DocChat.open(remote_settings(tmp_path, remote.base_url))
    assert isinstance(app.embedder, RemoteEmbedder)  # picked by the settings
    assert app.ingest("cats.md", CATS).status == "indexed"
    assert app.ingest("dogs.md", DOGS).status == "indexed"
    info = app.collection()
    assert info.model == f"all-MiniLM-L6-v2@{remote.label}" and info.dimension == 384
    _, hits = app.search("How long do cats sleep?", hybrid=False)
    assert hits[0].chunk.file == "cats.md"

    texts = ["Cats sleep sixteen hours a day.", "Dogs bark at strangers.", "trace trees", LONG]
    got = app.embedder.embed(texts)
    want = remote.local.embed(texts)  # the long text: cut by the model itself
    diff = float(np.abs(got - want).max())
    print(f"max abs difference, remote vs local vectors: {diff:.2e}")
    assert got.dtype == np.float32 and got.shape == want.shape == (4, 384)
    assert diff < 1e-6


def test_switching_between_local_and_remote_needs_a_reindex(tmp_path: Path, remote: Remote) -> None:
    local = DocChat.open(Settings(data_dir=tmp_path, min_score=0.0), embedder=remote.local)
    local.ingest("cats.md", CATS, collection="made-locally")
    far = DocChat.open(remote_settings(tmp_path, remote.base_url), store=local.services.store)
    far.ingest("dogs.md", DOGS, collection="made-remotely")
    with pytest.raises(ReindexNeededError, match=re.escape(f"all-MiniLM-L6-v2@{remote.label}")):
        far.search("cats", collection="made-locally")
    refused = far.ingest("dogs.md", DOGS, collection="made-locally")
    assert refused.status == "rejected" and "Re-index needed" in refused.reason
    with pytest.raises(ReindexNeededError, match="Re-index needed"):
        local.search("dogs", collection="made-remotely")
    # Another server with the same model is another embedder too.
    elsewhere = RemoteEmbedder(remote_settings(tmp_path, "http://10.0.0.7:11434/v1"))
    assert elsewhere.name == "all-MiniLM-L6-v2@10.0.0.7:11434"
    assert far.embedder.name != elsewhere.name


def test_server_down_is_a_clear_error_after_the_retries(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    settings = remote_settings(tmp_path, f"http://127.0.0.1:{port}/v1", embedding_max_retries=2)
    embedder = open_embedder(settings)
    t0 = time.monotonic()
    with pytest.raises(EmbeddingServerError, match=f"127.0.0.1:{port}.*cannot be reached"):
        embedder.embed(["hello"])
    assert time.monotonic() - t0 < 5  # three refused connections and two short waits
    # The engine and its API say the same; the API as a 502 in OpenAI's error shape.
    app = DocChat.open(settings, embedder=embedder)
    with pytest.raises(EmbeddingServerError):
        app.ingest("cats.md", CATS)
    api_port = free_port()
    stop = serve_in_thread(app, "127.0.0.1", api_port)
    try:
        r = httpx.post(f"http://127.0.0.1:{api_port}/v1/embeddings", timeout=30,
                       json={"model": embedder.name, "input": ["hello"]})  # fmt: skip
    finally:
        stop()
    assert r.status_code == 502
    assert "cannot be reached" in r.json()["error"]["message"]


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(api_key="sk-remote-embedding-key-123") as server:
        yield server


def fake_embedder(tmp_path: Path, fake: FakeOpenAIServer, **more: Any) -> RemoteEmbedder:
    settings = remote_settings(tmp_path, fake.base_url, embedding_model="fake-embed",
                               embedding_api_key="sk-remote-embedding-key-123", **more)  # fmt: skip
    return RemoteEmbedder(settings)


def test_batches_of_32_in_order_with_texts_cut_to_the_window(
    tmp_path: Path, fake: FakeOpenAIServer
) -> None:
    embedder = fake_embedder(tmp_path, fake)
    texts = [f"text number {i}" for i in range(69)] + [LONG]
    vectors = embedder.embed(texts)
    assert [len(r["input"]) for r in fake.requests] == [32, 32, 6]
    assert {r["model"] for r in fake.requests} == {"fake-embed"}
    assert fake.headers[0]["authorization"] == "Bearer sk-remote-embedding-key-123"
    assert vectors.shape == (70, 8) and embedder.dimension == 8  # learned from the reply
    # The fake lists vectors last text first: each row is still its own text's.
    for i in (0, 31, 32, 68):
        assert np.allclose(vectors[i], embedder.embed([texts[i]])[0])
    sent = fake.requests[2]["input"][-1]
    assert LONG.startswith(sent) and len(embedder.token_spans(sent)) == 254


def test_bad_replies_and_refusals(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    embedder = fake_embedder(tmp_path, fake, embedding_max_retries=2)
    fake.fail_next("server_error", 2)  # retried: the third attempt answers
    assert embedder.embed(["a", "b"]).shape == (2, 8) and len(fake.requests) == 3
    fake.fail_next("bad_json")
    with pytest.raises(EmbeddingServerError, match="not an embeddings list"):
        embedder.embed(["a"])
    fake.fail_next("wrong_count")
    with pytest.raises(EmbeddingServerError, match="sent 1 vectors for 2 texts"):
        embedder.embed(["a", "b"])
    fake.fail_next("bad_request")  # its message echoes the bearer token
    with pytest.raises(EmbeddingServerError, match="HTTP 400") as e:
        embedder.embed(["a"])
    assert "sk-remote-embedding-key-123" not in str(e.value) and fake.base_url in str(e.value)
    wrong_key = RemoteEmbedder(remote_settings(tmp_path, fake.base_url, embedding_api_key="x"))
    with pytest.raises(EmbeddingServerError, match="rejected the API key"):
        wrong_key.embed(["a"])


def test_a_slow_server_times_out(tmp_path: Path, fake: FakeOpenAIServer) -> None:
    embedder = fake_embedder(tmp_path, fake, embedding_timeout=0.5, embedding_max_retries=0)
    fake.delay = 3.0
    fake.fail_next("slow_first_token")
    with pytest.raises(EmbeddingServerError, match=re.escape("did not answer within 0.5 s")):
        embedder.embed(["a"])


def test_the_server_s_label_and_bad_urls() -> None:
    assert server_label("https://api.openai.com/v1") == "api.openai.com:443"
    assert server_label("http://user:secret@[::1]:8080/v1") == "[::1]:8080"
    for bad in ("localhost:11434", "ftp://host/v1", "http://host:99999/v1"):
        with pytest.raises(ConfigError, match="DOCCHAT_EMBEDDING_BASE_URL"):
            server_label(bad)
