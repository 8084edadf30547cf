"""The HTTP API (`rag/api`) with the real `openai` client over real HTTP: models, chat
(streaming and not, extractive and with the fake OpenAI-compatible LLM behind),
embeddings, the native endpoints, and every error case in OpenAI's error shape.

Most tests serve `create_app` with uvicorn in a thread over a DocChat on the fast
fake embedder; `test_rag_serve_command` starts `python -m rag serve` itself.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from rag import DocChat, Settings
from rag.api import create_app
from rag.team.access import READER, Sharing
from rag.team.keys import open_keys
from rag.team.signin import open_accounts
from tests.fixtures.api import finished
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import ROOT, free_port
from tests.fixtures.serving import serving, wait_serving

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"
DOGS = b"# Dogs\n\nDogs bark at strangers and love long walks in the park.\n"


@dataclass
class Served:
    url: str
    engine: DocChat

    def client(self, key: str = "none") -> openai.OpenAI:
        return openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0)


def serve(engine: DocChat, host: str = "127.0.0.1") -> Iterator[Served]:
    with serving(create_app(engine, host=host)) as url:  # uvicorn in a thread, a free port
        yield Served(url, engine)


@pytest.fixture
def single(tmp_path: Path) -> Iterator[Served]:
    """Single-user mode on loopback: no key needed; extractive mode (no LLM)."""
    engine = DocChat.open(Settings(data_dir=tmp_path, min_score=0.0), embedder=HashEmbedder())
    engine.ingest("cats.md", CATS)
    yield from serve(engine)


@pytest.fixture
def with_llm(tmp_path: Path) -> Iterator[tuple[Served, FakeOpenAIServer]]:
    with FakeOpenAIServer() as llm:
        settings = Settings(data_dir=tmp_path, min_score=0.0, openai_base_url=llm.base_url,
                            openai_api_key="test-key", llm_max_retries=0)  # fmt: skip
        engine = DocChat.open(settings, embedder=HashEmbedder())
        engine.ingest("cats.md", CATS)
        for served in serve(engine):
            yield served, llm


@pytest.fixture
def team(tmp_path: Path) -> Iterator[tuple[Served, str, str]]:
    """Accounts on: Ann owns 'ann-notes'; (served, Ann's key, Bob's key)."""
    settings = Settings(data_dir=tmp_path, min_score=0.0, auth="accounts")
    accounts = open_accounts(settings)
    ann = accounts.add("ann", "ann-password").user
    bob = accounts.add("bob", "bob-password").user
    engine = DocChat.open(settings, embedder=HashEmbedder())
    engine.as_user(ann).ingest("cats.md", CATS, collection="ann-notes")
    keys = open_keys(settings)
    ann_key, bob_key = keys.create(ann.id)[1], keys.create(bob.id)[1]
    for served in serve(engine):
        yield served, ann_key, bob_key


def test_models_and_a_chat_completion_in_extractive_mode(single: Served) -> None:
    client = single.client()
    assert [m.id for m in client.models.list()] == ["docchat/default"]
    r = client.chat.completions.create(
        model="docchat/default", messages=[{"role": "user", "content": "How long do cats sleep?"}]
    )
    assert "sixteen hours" in (r.choices[0].message.content or "")
    sources = r.model_extra["sources"]  # type: ignore[index]
    assert sources[0]["file"] == "cats.md" and sources[0]["n"] == 1
    assert {"page", "section", "start", "end", "score", "text"} <= set(sources[0])
    assert r.model_extra["docchat"]["mode"] == "extractive"  # type: ignore[index]


def test_streaming_with_the_llm_behind_and_follow_ups(
    with_llm: tuple[Served, FakeOpenAIServer],
) -> None:
    served, llm = with_llm
    client = served.client()
    stream = client.chat.completions.create(
        model="docchat/default",
        messages=[{"role": "user", "content": "How long do cats sleep?"}],
        stream=True,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("According to the documents [1]")
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.model_extra["sources"][0]["file"] == "cats.md"  # type: ignore[index]
    # A follow-up: the history reaches the engine (it asks the LLM for a standalone
    # question first, as the Chat page does).
    r = client.chat.completions.create(
        model="docchat/default",
        messages=[
            {"role": "user", "content": "How long do cats sleep?"},
            {"role": "assistant", "content": text},
            {"role": "user", "content": "And do they purr?"},
        ],
    )
    assert r.choices[0].message.content
    sent = json.dumps(llm.requests[-1])
    assert "How long do cats sleep?" in json.dumps(llm.requests) and "purr" in sent


def test_embeddings_match_the_engine_s_model(single: Served) -> None:
    client = single.client()
    texts = ["Cats sleep.", "Dogs bark at strangers."]
    local = single.engine.embedder.embed(texts)
    r = client.embeddings.create(model="docchat/default", input=texts)  # base64 by default
    got = np.array([d.embedding for d in r.data], dtype=np.float32)
    assert got.shape == local.shape and np.allclose(got, local, atol=1e-6)
    floats = client.embeddings.create(
        model=single.engine.embedder.name, input="Cats sleep.", encoding_format="float"
    )
    assert np.allclose(floats.data[0].embedding, local[0], atol=1e-6)
    assert r.usage.prompt_tokens > 0


def error_of(r: httpx.Response) -> dict[str, Any]:
    body = r.json()
    assert set(body) == {"error"} and {"message", "type", "code"} <= set(body["error"])
    assert "Traceback" not in r.text
    return body["error"]  # type: ignore[no-any-return]


def test_errors_in_openai_s_shape(single: Served) -> None:
    client = single.client()
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    assert e.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="docchat/nope", messages=[{"role": "user", "content": "hi"}]
        )
    h = httpx.Client(base_url=single.url, timeout=30)
    bad_json = h.post("/v1/chat/completions", content=b"{not json",
                      headers={"content-type": "application/json"})  # fmt: skip
    assert bad_json.status_code == 422 and error_of(bad_json)["type"] == "invalid_request_error"
    missing = h.post("/v1/chat/completions", json={"model": "docchat/default"})
    assert missing.status_code == 422 and "messages" in error_of(missing)["message"]
    assert h.get("/v1/nowhere").status_code == 404
    limit = single.engine.settings.max_file_mb
    big = b"x" * (int(limit * 1_000_000) + 1)
    too_big = h.post("/v1/collections/default/documents", files=[("files", ("big.txt", big))])
    assert too_big.status_code == 413 and "DOCCHAT_MAX_FILE_MB" in error_of(too_big)["message"]
    unknown = h.get("/v1/jobs/unknown")
    assert unknown.status_code == 404 and error_of(unknown)["type"] == "not_found_error"


def test_native_collections_documents_search_delete(tmp_path: Path) -> None:
    """Upload through the API as a background job, run by real consumer threads."""
    settings = Settings(data_dir=tmp_path, min_score=0.0, workers=1)
    engine = DocChat.open(settings, embedder=HashEmbedder())
    workers = engine.start_workers()
    assert workers is not None
    try:
        for served in serve(engine):
            h = httpx.Client(base_url=served.url, timeout=30)
            made = h.post("/v1/collections", json={"name": "pets", "chunk_tokens": 64,
                                                   "chunk_overlap": 8})  # fmt: skip
            assert made.status_code == 201 and made.json()["chunk_tokens"] == 64
            files = [("files", ("cats.md", CATS)), ("files", ("dogs.md", DOGS))]
            r = h.post("/v1/collections/pets/documents", files=files)
            assert r.status_code == 202, r.text
            assert [f["name"] for f in r.json()["files"]] == ["cats.md", "dogs.md"]
            job = finished(h, r.json())
            assert [f["status"] for f in job["files"]] == ["indexed", "indexed"]
            assert [j["id"] for j in h.get("/v1/jobs").json()["data"]] == [job["id"]]
            assert h.post(f"/v1/jobs/{job['id']}/cancel").json()["status"] == "done"  # ended
            docs = h.get("/v1/collections/pets/documents").json()["data"]
            assert sorted(d["name"] for d in docs) == ["cats.md", "dogs.md"]
            hits = h.post("/v1/collections/pets/search", json={"query": "barking", "top_k": 1})
            assert [s["file"] for s in hits.json()["data"]] == ["dogs.md"]
            dogs = next(d for d in docs if d["name"] == "dogs.md")
            gone = h.delete(f"/v1/collections/pets/documents/{dogs['doc_id']}")
            assert gone.status_code == 200 and gone.json()["name"] == "dogs.md"
            left = h.get("/v1/collections/pets/documents").json()["data"]
            assert [d["name"] for d in left] == ["cats.md"]
            # Into a collection that does not exist yet: it is made, as on the Upload page.
            r = h.post("/v1/collections/fresh/documents", files=files[:1])
            assert r.status_code == 202, r.text
            finished(h, r.json())
            assert "fresh" in [c["name"] for c in h.get("/v1/collections").json()["data"]]
    finally:
        workers.stop()


def test_keys_and_access_rules(team: tuple[Served, str, str]) -> None:
    served, ann_key, bob_key = team
    with pytest.raises(openai.AuthenticationError):
        served.client("dck_not-a-key").models.list()
    r = httpx.get(f"{served.url}/v1/models")
    assert r.status_code == 401 and "Bearer" in error_of(r)["message"]
    assert [m.id for m in served.client(ann_key).models.list()] == ["docchat/ann-notes"]
    bob = served.client(bob_key)
    assert [m.id for m in bob.models.list()] == []
    question = [{"role": "user", "content": "How long do cats sleep?"}]
    with pytest.raises(openai.PermissionDeniedError):
        bob.chat.completions.create(model="docchat/ann-notes", messages=question)
    h = httpx.Client(base_url=served.url, headers={"authorization": f"Bearer {bob_key}"})
    assert h.post("/v1/collections/ann-notes/search", json={"query": "cats"}).status_code == 403
    assert h.get("/v1/collections/ann-notes/documents").status_code == 403
    # Shared with Bob as reader: he may chat, not delete.
    accounts = served.engine.signin.accounts
    ann_id, bob_id = (accounts.get(n).id for n in ("ann", "bob"))  # type: ignore[union-attr]
    served.engine.share("ann-notes", Sharing(ann_id, readers=frozenset({bob_id})))
    r2 = bob.chat.completions.create(model="docchat/ann-notes", messages=question)
    assert "sixteen hours" in (r2.choices[0].message.content or "")
    doc = h.get("/v1/collections/ann-notes/documents").json()["data"][0]
    gone = h.delete(f"/v1/collections/ann-notes/documents/{doc['doc_id']}")
    assert gone.status_code == 403 and error_of(gone)["type"] == "permission_error"
    assert (
        served.engine.as_user(served.engine.signin.accounts.get("bob").user).role(  # type: ignore[union-attr]
            "ann-notes"
        )
        == READER
    )
    # A removed user's key stops working at once.
    served.engine.signin.accounts.remove("bob")
    with pytest.raises(openai.AuthenticationError):
        bob.models.list()


def test_docs_page_needs_no_network(single: Served) -> None:
    html = httpx.get(f"{single.url}/docs").text
    assert "swagger" in html.lower()
    links = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", html)
    assert links and all(link.startswith("/") for link in links), links  # this server only
    for path in ("/static-offline-docs/swagger-ui-bundle.js", "/openapi.json"):
        assert httpx.get(f"{single.url}{path}").status_code == 200


def test_rag_serve_command(tmp_path: Path) -> None:
    """`python -m rag serve` as a user starts it: the real model, models and embeddings,
    and an upload that its own workers index (the suite's DOCCHAT_WORKERS=0 undone)."""
    port = free_port()
    env = {**os.environ, "DOCCHAT_DATA_DIR": str(tmp_path), "OPENAI_API_KEY": "",
           "OPENAI_BASE_URL": "", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "DOCCHAT_WORKERS": "1"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "rag", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)  # fmt: skip
    try:
        wait_serving(proc, f"http://127.0.0.1:{port}")
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x")
        assert client.models.list().data == []
        r = client.embeddings.create(model="all-MiniLM-L6-v2", input="Cats sleep.")
        vector = np.frombuffer(base64.b64decode(base64.b64encode(
            np.asarray(r.data[0].embedding, dtype="<f4").tobytes())), dtype="<f4")  # fmt: skip
        assert vector.shape == (384,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-3
        url = f"http://127.0.0.1:{port}/v1"
        job = httpx.post(f"{url}/collections/default/documents",
                         files=[("files", ("cats.md", CATS))], timeout=30).json()  # fmt: skip
        deadline = time.monotonic() + 120
        while job["status"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.3)
            job = httpx.get(f"{url}/jobs/{job['id']}", timeout=30).json()
        assert job["status"] == "done" and job["files"][0]["status"] == "indexed", job
        public = subprocess.run([sys.executable, "-m", "rag", "serve", "--host", "0.0.0.0"],
                                cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=60)  # fmt: skip
        assert public.returncode == 1 and "DOCCHAT_AUTH" in public.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=15)


@pytest.mark.browser
def test_docs_page_works_offline_in_chromium(single: Served) -> None:
    """Swagger UI renders every endpoint from this server alone (no CDN)."""
    from tests.fixtures.browser import CHROMIUM, LAUNCH_ARGS, need_browser

    need_browser()
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            page = browser.new_page()
            remote: list[str] = []
            page.on(
                "request", lambda r: None if r.url.startswith(single.url) else remote.append(r.url)
            )
            page.goto(f"{single.url}/docs")
            expect(page.get_by_text("/v1/chat/completions").first).to_be_visible(timeout=30_000)
            expect(page.get_by_text("/v1/embeddings").first).to_be_visible()
            # Interactive: open an operation and try it against the server.
            page.get_by_text("/v1/models", exact=True).first.click()
            page.get_by_role("button", name="Try it out").click()
            page.get_by_role("button", name="Execute").click()
            expect(page.get_by_text("docchat/default").first).to_be_visible()
            assert not remote, remote
        finally:
            browser.close()
