"""DocChat's MCP server (`rag/api/mcp_server.py`) driven by the official SDK's own client
(`ClientSession`): over streamable HTTP on the API served on 127.0.0.1 (single-user, and
accounts with API keys) and over stdio against `python -m rag mcp` as a subprocess.

Every tool is called, on a data dir that starts empty: the documents arrive through
`add_url` from a local site on 127.0.0.1. A key whose user may not read a collection gets
a tool error for it, never its content; a reader may not add to it; no key (or a bad
one) is refused before the SDK sees the request. The engines embed on the fake OpenAI
server (its hash vectors) and answer with its chat model: no model is loaded.
"""

from __future__ import annotations

import base64
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, ImageContent, TextContent

from rag import DocChat, Settings
from rag.api import create_app
from rag.team.access import Sharing
from rag.team.keys import open_keys
from rag.team.signin import open_accounts
from tests.fixtures.fake_openai import FakeOpenAIServer, Json, _default_reply
from tests.fixtures.local_web import LocalSite, Reply, Route, local_site, only_loopback
from tests.fixtures.paths import ROOT
from tests.fixtures.pdfgen import make_pdf, text_ops
from tests.fixtures.serving import bearer, error_of, serving

CATS = b"# Cats\n\nCats sleep sixteen hours a day. They purr when content.\n"
CATS_PAGE = (
    b"<!doctype html><html><head><title>Cats</title></head><body>"
    b'<div class="menu"><a href="/">Home</a></div><article><h1>Cats</h1>'
    b"<p>Cats sleep sixteen hours a day. They purr when content, and they hunt at dawn "
    b"and at dusk, when their prey is about.</p></article></body></html>"
)
DOGS_PDF = make_pdf([text_ops(["Dogs bark at strangers.", "Dogs love long walks in the park."])])
TOOLS = {"list_collections", "search", "ask", "get_page", "add_url"}
# The LLM's answer: one sentence its source backs, one it does not (the claim check's).
ANSWER = "Cats sleep sixteen hours a day [1]. Cats bark at night [1]."

Session = Callable[[ClientSession], Awaitable[None]]


@pytest.fixture
def llm(openai_server: FakeOpenAIServer) -> FakeOpenAIServer:
    def reply(body: Json) -> str:
        system = str(body["messages"][0].get("content", ""))
        return ANSWER if system.startswith("You are DocChat") else _default_reply(body)

    openai_server.reply = reply
    return openai_server


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSite]:
    """A web page and a PDF on 127.0.0.1 (allowed by `url_allow` in `_settings`); no
    connection leaves 127.0.0.1."""
    only_loopback(monkeypatch)
    routes: dict[str, Route] = {
        "/cats": Reply(200, CATS_PAGE, {"content-type": "text/html"}),
        "/dogs.pdf": Reply(200, DOGS_PDF, {"content-type": "application/pdf"}),
    }
    with local_site(routes) as s:
        yield s


def _settings(data_dir: Path, llm: FakeOpenAIServer, **more: Any) -> Settings:
    # min_score -1: the fake server's hash vectors may point away from any question.
    return Settings(data_dir=data_dir, min_score=-1.0, embedding_base_url=llm.base_url,
                    embedding_api_key="test-key", openai_base_url=llm.base_url,
                    openai_api_key="test-key", llm_max_retries=0, url_allow="127.0.0.1/32",
                    url_delay=0.0, **more)  # fmt: skip


def over_http(url: str, key: str, use: Session) -> None:
    async def run() -> None:
        headers = bearer(key) if key else {}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            await use(session)

    anyio.run(run)


def text_of(r: CallToolResult) -> str:
    return "\n".join(c.text for c in r.content if isinstance(c, TextContent))


async def every_tool(session: ClientSession, site: str) -> None:
    """Each tool called on an empty data dir, checked: a page of the local `site` and a
    PDF from it added (`add_url`), then read back through the other tools."""
    tools = (await session.list_tools()).tools
    assert {t.name for t in tools} == TOOLS
    assert all(t.description and len(t.description) > 100 for t in tools)  # when to use it

    for path, collection in (("/cats", "default"), ("/dogs.pdf", "pdfs")):
        added = await session.call_tool("add_url", {"url": site + path, "collection": collection})
        [result] = (added.structured_content or {})["results"]
        assert result["file"] == site + path and result["status"] == "indexed", result

    listed = await session.call_tool("list_collections", {})
    assert not listed.is_error
    names = [c["name"] for c in (listed.structured_content or {})["collections"]]
    assert names == ["default", "pdfs"]

    found = await session.call_tool("search", {"query": "How long do cats sleep?"})
    assert not found.is_error and "sixteen hours" in text_of(found)
    hit = (found.structured_content or {})["hits"][0]
    assert hit["file"] == f"{site}/cats" and hit["section"] == "Cats"
    assert {"page", "score", "text", "id"} <= set(hit)

    asked = await session.call_tool("ask", {"question": "How long do cats sleep?"})
    answer = asked.structured_content or {}
    assert not asked.is_error and answer["mode"] == "llm"
    assert answer["answer"] == ANSWER and answer["sources"][0]["file"] == f"{site}/cats"
    assert answer["checked"] == "1 of 2 sentences backed by their sources"
    assert [c["verdict"] for c in answer["claims"]] == ["supported", "not_found"]

    pdf_hits = await session.call_tool("search", {"query": "dogs bark", "collection": "pdfs"})
    chunk_id = (pdf_hits.structured_content or {})["hits"][0]["id"]
    page = await session.call_tool("get_page", {"collection": "pdfs", "chunk_id": chunk_id})
    assert not page.is_error and "dogs.pdf: page 1 of 1" in text_of(page)
    image = next(c for c in page.content if isinstance(c, ImageContent))
    assert image.mime_type == "image/png"
    assert base64.b64decode(image.data).startswith(b"\x89PNG")
    # A document without pages: the passage in its text, marked.
    shown = await session.call_tool("get_page", {"collection": "default", "chunk_id": hit["id"]})
    assert not shown.is_error and "no pages to show" in text_of(shown)
    assert ">>>" in text_of(shown) and "sixteen hours" in text_of(shown)

    missing = await session.call_tool("search", {"query": "cats", "collection": "nope"})
    assert missing.is_error and "No collection named 'nope'" in text_of(missing)
    bad = await session.call_tool("get_page", {"collection": "pdfs", "chunk_id": "x"})
    assert bad.is_error and "not a chunk id" in text_of(bad)


def test_every_tool_over_http_in_single_user_mode(
    tmp_path: Path, llm: FakeOpenAIServer, site: LocalSite
) -> None:
    engine = DocChat.open(_settings(tmp_path, llm))
    try:
        with serving(create_app(engine)) as url:
            # Single-user mode on 127.0.0.1: no key needed.
            over_http(url, "", lambda session: every_tool(session, site.url))
            # No key needed here, so a name other than this machine's is refused (a web
            # page reaching 127.0.0.1 through DNS rebinding).
            hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            rebound = httpx.post(f"{url}/mcp", json=hello, headers={"Host": "evil.test"})
            assert rebound.status_code == 421 and "tools" not in rebound.text, rebound.text
    finally:
        engine.close()


def test_keys_and_access_rules_over_http(
    tmp_path: Path, llm: FakeOpenAIServer, site: LocalSite
) -> None:
    settings = _settings(tmp_path, llm, auth="accounts")
    accounts = open_accounts(settings)
    ann, bob = accounts.add("ann", "ann-password").user, accounts.add("bob", "bob-password").user
    keys = open_keys(settings)
    ann_key, bob_key = keys.create(ann.id)[1], keys.create(bob.id)[1]
    engine = DocChat.open(settings)
    try:
        engine.as_user(ann).ingest("cats.md", CATS, collection="ann-notes")
        with serving(create_app(engine)) as url:
            # No key, or a bad one: refused before the MCP server sees the request.
            hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            for headers in ({}, bearer("dck_not-a-key")):
                r = httpx.post(f"{url}/mcp", json=hello, headers=headers)
                assert r.status_code == 401 and "sixteen" not in r.text
                assert error_of(r)["type"] == "authentication_error"
            chunk_ids: list[str] = []

            async def as_ann(session: ClientSession) -> None:
                listed = await session.call_tool("list_collections", {})
                assert [c["name"] for c in (listed.structured_content or {})["collections"]] == [
                    "ann-notes"
                ]
                found = await session.call_tool(
                    "search", {"query": "cats", "collection": "ann-notes"}
                )
                assert "sixteen hours" in text_of(found)
                chunk_ids.append((found.structured_content or {})["hits"][0]["id"])

            async def as_bob(session: ClientSession) -> None:
                listed = await session.call_tool("list_collections", {})
                assert (listed.structured_content or {})["collections"] == []
                calls = [
                    ("search", {"query": "cats", "collection": "ann-notes"}),
                    ("ask", {"question": "How long do cats sleep?", "collection": "ann-notes"}),
                    ("get_page", {"collection": "ann-notes", "chunk_id": chunk_ids[0]}),
                    ("add_url", {"url": f"{site.url}/cats", "collection": "ann-notes"}),
                ]
                for name, arguments in calls:
                    r = await session.call_tool(name, arguments)
                    assert r.is_error, name
                    said = text_of(r)
                    assert "do not have access to the collection 'ann-notes'" in said, said
                    assert "sixteen" not in said and r.structured_content is None

            async def as_reader(session: ClientSession) -> None:
                found = await session.call_tool(
                    "search", {"query": "cats", "collection": "ann-notes"}
                )
                assert "sixteen hours" in text_of(found)  # he may read now, not write
                add = {"url": f"{site.url}/cats", "collection": "ann-notes"}
                r = await session.call_tool("add_url", add)
                assert r.is_error and "needs the editor role" in text_of(r), text_of(r)

            over_http(url, ann_key, as_ann)
            over_http(url, bob_key, as_bob)
            engine.share("ann-notes", Sharing(ann.id, readers=frozenset({bob.id})))
            over_http(url, bob_key, as_reader)
            assert site.paths() == []  # refused before anything was fetched
            # A removed user's key stops working at the next request, as on /v1.
            engine.signin.accounts.remove("bob")
            r = httpx.post(f"{url}/mcp", json=hello, headers=bearer(bob_key))
            assert r.status_code == 401
    finally:
        engine.close()


@pytest.mark.slow
def test_every_tool_over_stdio(tmp_path: Path, llm: FakeOpenAIServer, site: LocalSite) -> None:
    """`python -m rag mcp` as a desktop client starts it, on an empty data dir."""
    env = {"DOCCHAT_DATA_DIR": str(tmp_path / "data"), "DOCCHAT_MIN_SCORE": "-1",
           "DOCCHAT_EMBEDDING_BASE_URL": llm.base_url, "DOCCHAT_EMBEDDING_API_KEY": "test-key",
           "OPENAI_BASE_URL": llm.base_url, "OPENAI_API_KEY": "test-key",
           "DOCCHAT_LLM_MAX_RETRIES": "0", "DOCCHAT_API": "false", "DOCCHAT_WORKERS": "0",
           "DOCCHAT_URL_ALLOW": "127.0.0.1/32", "DOCCHAT_URL_DELAY": "0",
           "ANONYMIZED_TELEMETRY": "False", "PYTHONPATH": str(ROOT)}  # fmt: skip
    params = StdioServerParameters(command=sys.executable, args=["-m", "rag", "mcp"], env=env,
                                   cwd=str(ROOT))  # fmt: skip

    async def run() -> None:
        with open(os.devnull, "w") as quiet:
            async with (
                stdio_client(params, errlog=quiet) as (read, write),
                ClientSession(read, write) as session,
            ):
                await session.initialize()
                await every_tool(session, site.url)

    anyio.run(run)


def test_the_rate_limit_counts_mcp_requests(tmp_path: Path, llm: FakeOpenAIServer) -> None:
    engine = DocChat.open(_settings(tmp_path, llm, rate_limit="2/minute"))
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    try:
        with serving(create_app(engine)) as url:
            codes = [httpx.post(f"{url}/mcp", json=hello).status_code for _ in range(3)]
    finally:
        engine.close()
    assert 429 not in codes[:2] and codes[2] == 429, codes
