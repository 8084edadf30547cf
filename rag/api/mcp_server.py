"""DocChat as tools for AI clients, over the Model Context Protocol (the official `mcp`
SDK's `MCPServer`): `list_collections`, `search`, `ask`, `get_page` and `add_url`.

Two transports share the tools. `python -m rag mcp` serves them on stdio for a desktop
client and acts as the command line's user (`rag/cli/mcp.py`). `mount` puts the
streamable-HTTP transport on the API app at `/mcp`: each request is authenticated as
`/v1` authenticates it (`api_user`: an API key in `Authorization: Bearer`, none needed
in single-user mode on a loopback address), refused with 401 in OpenAI's error shape
otherwise, and every tool call acts as that key's user. The engine applies its access
rules as everywhere: a collection the user may not read is a tool error that says so
(`is_error`, the `RagError`'s message), never its content.

HTTP is stateless (each POST is served on its own, answered as JSON): no session to
keep between requests, so a key revoked or a user disabled stops working at the next
request, as on `/v1`.

Left out: uploads (files go through the app, the command line or `/v1`), streaming an
answer's text as it is written (`ask` returns the finished answer), resources and
prompts.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal

from fastapi import FastAPI
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, ImageContent, TextContent, ToolAnnotations
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from rag.api import shapes
from rag.api.limits import bearer
from rag.core import errors
from rag.core.models import Answer, Chunk, Source, claims_line
from rag.engine import DocChat
from rag.team.access import User, loopback
from rag.team.keys import ApiKeys
from rag.team.signin import api_user

log = logging.getLogger(__name__)

PATH = "/mcp"
_USER = "docchat.user"  # the ASGI scope key the HTTP endpoint leaves the caller under

INSTRUCTIONS = (
    "DocChat answers from the user's own document collections (PDFs, Word, HTML, text, "
    "code) and shows where each answer comes from. Call list_collections first to learn "
    "the collection names; search to read the passages about a topic; ask for an answer "
    "written from them with numbered sources and each sentence checked against them; "
    "get_page to see a passage marked on its page; add_url to add a web page to a "
    "collection."
)

UrlKind = Literal["page", "sitemap", "feed"]  # what add_url's URL is

# The acting user of a tool call: the stdio server's one user, or the HTTP caller's.
Acting = Callable[[Context], User]


def build_server(engine: DocChat, acting: Acting) -> MCPServer:
    """The MCP server over `engine`; each tool call acts as `acting(ctx)`."""
    # The SDK's constructor calls logging.basicConfig, which would give the process's
    # root logger a handler of its own (rich's, at its level): a handler already there
    # makes that a no-op, so the app's logging stays as the app set it.
    root, placeholder = logging.getLogger(), logging.NullHandler()
    root.addHandler(placeholder)
    try:
        server: MCPServer = MCPServer("docchat", title="DocChat", instructions=INSTRUCTIONS)
    finally:
        root.removeHandler(placeholder)
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    def app(ctx: Context) -> DocChat:
        return engine.as_user(acting(ctx))

    @server.tool(annotations=read_only)
    def list_collections(ctx: Context) -> CallToolResult:
        """List the document collections you may read: each one's name (the `collection`
        argument of the other tools), its documents and chunks. Use it first, to learn
        which collections exist and what they hold."""

        def run() -> dict[str, Any]:
            rows = app(ctx).collections()
            return {"collections": [_collection(c.to_dict()) for c in rows]}

        return _result(run)

    @server.tool(annotations=read_only)
    def search(ctx: Context, query: str, collection: str = "", top_k: int = 5) -> CallToolResult:
        """Search a collection for the passages most relevant to `query` (hybrid: meaning
        and keywords). Returns the hits best first, each with its file, page, section,
        score, text and `id`. Use it to read what the documents say yourself, or to find
        a passage to show with get_page. `collection`: a name from list_collections
        (empty: the default collection); `top_k`: 1 to 50 hits."""

        def run() -> dict[str, Any]:
            if not 1 <= top_k <= 50:
                raise errors.RagError("top_k is 1 to 50.")
            cleaned, hits = app(ctx).search(query, collection=collection or None, top_k=top_k)
            return {"query": cleaned, "hits": [_hit(s) for s in Source.numbered(hits)]}

        return _result(run)

    @server.tool(annotations=read_only)
    def ask(ctx: Context, question: str, collection: str = "") -> CallToolResult:
        """Ask a question of a collection and get DocChat's answer, written from its best
        passages with citations like [1], the sources those numbers name, and the claim
        check: each sentence of the answer checked against the sources it cites. Use it
        for a finished answer with its evidence; a question about one whole document
        ("summarize report.pdf") reads all of that document. `collection`: a name from
        list_collections (empty: the default collection)."""

        def run() -> dict[str, Any]:
            return _answer(_ask(app(ctx), question, collection or None))

        return _result(run)

    @server.tool(annotations=read_only)
    def get_page(ctx: Context, collection: str, chunk_id: str) -> CallToolResult:
        """Show where a passage stands: the page of its PDF or image rendered as a PNG,
        the passage marked on it. `chunk_id` is a hit's `id` from search (or a source's
        from ask). Use it when the layout matters (a table, a figure, a form) or to show
        the user the evidence. A document without pages (Word, HTML, text, code) gives
        the passage in the text around it instead."""
        return _result(lambda: _page(app(ctx), collection or None, chunk_id))

    # It writes (a page already there is replaced, not duplicated) and reaches the web.
    adds = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True,
                           open_world_hint=True)  # fmt: skip

    @server.tool(annotations=adds)
    def add_url(
        ctx: Context, url: str, collection: str = "", kind: UrlKind = "page"
    ) -> CallToolResult:
        """Add a web page to a collection, so that search and ask find it: fetched, its
        main text kept (without the site's menus and footers), split by its headings and
        indexed; a PDF behind the URL is read as a PDF. `kind` "sitemap" adds every page
        a sitemap.xml lists, "feed" every entry of an RSS or Atom feed. A page already in
        the collection is replaced when it changed. Use it when the user asks to keep or
        follow a web page; it needs the right to add documents to the collection (its
        owner or an editor). Returns each page's status: indexed, unchanged, or rejected
        with the reason (robots.txt, a size limit, an address that is not allowed)."""

        def run() -> dict[str, Any]:
            web, name = app(ctx).web, collection or None
            if kind == "sitemap":
                results = web.add(sitemap=url, collection=name)
            elif kind == "feed":
                results = web.add(feed=url, collection=name)
            else:
                results = web.add([url], collection=name)
            keep = ("file", "status", "chunks", "reason", "replaced")
            return {"results": [{k: r.to_dict()[k] for k in keep} for r in results]}

        return _result(run)

    return server


def _result(run: Callable[[], dict[str, Any] | CallToolResult]) -> CallToolResult:
    """`run()` as a tool's result: a dict as JSON text (what a model reads) and as
    structured content; a `RagError` as a tool error with its message (safe to show), any
    other failure as "Internal error." (the traceback goes to the server's log only)."""
    try:
        data = run()
    except errors.RagError as e:
        raise ToolError(str(e)) from None
    except Exception:
        log.exception("An MCP tool failed")
        raise ToolError("Internal error.") from None
    if isinstance(data, CallToolResult):
        return data
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def _collection(d: dict[str, Any]) -> dict[str, Any]:
    keep = ("name", "documents", "chunks", "model", "created")
    return {k: d[k] for k in keep if k in d}


def _hit(s: Source) -> dict[str, Any]:
    """A source as the API shows it, with its chunk's id (what get_page takes)."""
    return {**shapes.source(s), "id": s.chunk.id, "location": s.chunk.location}


def _ask(app: DocChat, question: str, collection: str | None) -> Answer:
    """The Chat page's engine, as `/v1/chat/completions` runs it for one question."""
    doc = app.whole_document(question, collection=collection)
    if doc is not None:
        with app.summarize(doc, collection=collection, question=question) as summary:
            return summary.run()
    with app.stream(app.retrieve(question, collection=collection)) as stream:
        return stream.run()


def _answer(a: Answer) -> dict[str, Any]:
    """The answer, its sources and its claim check (a line for people, then each
    sentence's verdict)."""
    out: dict[str, Any] = {"answer": a.text, "mode": a.mode, "query": a.query,
                           "sources": [_hit(s) for s in a.sources]}  # fmt: skip
    if a.claims:
        out["checked"] = claims_line(a.claims)
        out["claims"] = [shapes.claim(c) for c in a.claims]
    if a.notes:
        out["notes"] = list(a.notes)
    return out


def _page(app: DocChat, collection: str | None, chunk_id: str) -> CallToolResult:
    doc, _, index = chunk_id.rpartition(":")
    if not doc or not index.isdigit():
        raise errors.RagError(f"{chunk_id!r} is not a chunk id: use a hit's `id` from search.")
    chunk = app.chunk(chunk_id, collection=collection)  # the access rules, then the chunk
    where = f"{chunk.file}" + (f", section {chunk.section!r}" if chunk.section else "")
    if chunk.page is not None:
        try:
            view = app.page_view(chunk.doc_id, chunk.page, chunk=chunk.index,
                                 collection=collection)  # fmt: skip
        except errors.DocumentNotFoundError:
            pass  # a paged document that is not rendered (e.g. Word): shown as text below
        else:
            note = f"{where}: page {view.page} of {view.pages}, the passage marked."
            image = ImageContent(type="image", data=base64.b64encode(view.png).decode(),
                                 mime_type="image/png")  # fmt: skip
            return CallToolResult(content=[TextContent(type="text", text=note), image])
    text = _around(app, chunk, where, collection)
    return CallToolResult(content=[TextContent(type="text", text=text)])


def _around(app: DocChat, chunk: Chunk, where: str, collection: str | None) -> str:
    view = app.text_view(chunk, collection=collection)
    return (f"{where} has no pages to show; the passage (between >>> and <<<) in the text "
            f"around it:\n\n{view.before}>>>{view.chunk}<<<{view.after}")  # fmt: skip


def mount(api: FastAPI, engine: DocChat, *, host: str, keys: ApiKeys) -> None:
    """The streamable-HTTP transport on `api` at `/mcp`, authenticated as `/v1` is."""
    on_loopback = loopback(host)

    def acting(ctx: Context) -> User:
        request = ctx.request_context.request
        user = request.scope.get(_USER) if request is not None else None
        if not isinstance(user, User):  # unreachable: only `_Endpoint` lets a request in
            raise errors.SignInError("Not signed in.")
        return user

    server = build_server(engine, acting)
    # Where no key is needed (single-user mode on this machine), a web page must not
    # reach the server through a name that resolves to 127.0.0.1 (DNS rebinding): the
    # SDK's Host and Origin checks, as it sets them for a server on this machine. With
    # keys the page has none to send, and a proxy in front may use any Host.
    security = None
    if on_loopback and not engine.signin.required:
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    server.streamable_http_app(streamable_http_path=PATH, stateless_http=True,
                               json_response=True, transport_security=security)  # fmt: skip
    manager = server.session_manager
    endpoint = _Endpoint(manager.handle_request, engine, keys, on_loopback)
    # An ASGI app as the route's endpoint: every method reaches the SDK (POST, GET, DELETE).
    api.router.routes.append(Route(PATH, endpoint=endpoint, include_in_schema=False))
    outer = api.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        # The SDK serves each request in a task group that lives as long as the app.
        async with manager.run(), outer(app) as state:
            yield state

    api.router.lifespan_context = lifespan


class _Endpoint:
    """`/mcp`: the caller named (as `/v1` names it) before the SDK sees the request;
    refused with 401 in OpenAI's error shape when the key is missing or bad."""

    def __init__(self, handle: Callable[[Scope, Receive, Send], Any], engine: DocChat,
                 keys: ApiKeys, on_loopback: bool) -> None:  # fmt: skip
        self.handle, self.engine, self.keys, self.on_loopback = handle, engine, keys, on_loopback

    def _user(self, scope: Scope) -> User:
        key = bearer(Headers(scope=scope))
        return api_user(self.engine.signin, key, self.keys, loopback=self.on_loopback)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            user = await run_in_threadpool(self._user, scope)  # a record store read
        except errors.SignInError as e:
            body = shapes.error(str(e), "authentication_error")
            response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        except errors.RagError as e:  # the record store cannot be reached
            await JSONResponse(shapes.error(str(e), "api_error"), status_code=503)(
                scope, receive, send
            )
            return
        await self.handle({**scope, _USER: user}, receive, send)
