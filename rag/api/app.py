"""The HTTP API: OpenAI-compatible endpoints over the collections, and native ones for
collections, documents, jobs and search. `create_app(engine, host=...)` builds it;
`python -m rag serve` runs it under uvicorn.

Every request acts as one user: the owner of the API key in `Authorization: Bearer`
(`rag.team.keys`), or single-user mode's user when sign-in is off and the API listens on
a loopback address. The engine applies the same access rules as the app. Every
failure is OpenAI's error shape with its status (`_STATUS`), never a traceback.

What one request may cost is bounded before the work starts: the rate limit and the
size of a JSON body (`limits.py`), an upload read as it streams in (`uploads.py`),
questions and messages (`max_question_chars`) and embedding inputs by their length. A
streamed answer stops when its client goes away.

Left out: the Assistants, Files and Responses APIs; `n` > 1; token-level usage.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from rag.answering.stream import TextStream
from rag.api import shapes
from rag.api.limits import (
    BodyLimitMiddleware,
    RateLimit,
    RateLimitMiddleware,
    check_embed_inputs,
    check_messages,
    counter_of,
    json_body_limit,
)
from rag.api.uploads import OPENAPI_BODY, UploadLimits, receive_files
from rag.core import errors
from rag.core.models import Source, Upload
from rag.engine import DocChat
from rag.team.access import loopback
from rag.team.keys import ApiKeys
from rag.team.signin import api_user

# Status and OpenAI error type of each error (the first match in order counts).
_STATUS: list[tuple[type[Exception], int, str]] = [
    (errors.SignInError, 401, "authentication_error"),
    (errors.ModelNotFoundError, 404, "invalid_request_error"),
    (errors.AccessDeniedError, 403, "permission_error"),
    (errors.CollectionNotFoundError, 404, "not_found_error"),
    (errors.DocumentNotFoundError, 404, "not_found_error"),
    (errors.JobNotFoundError, 404, "not_found_error"),
    (errors.LimitExceededError, 413, "invalid_request_error"),
    (errors.LLMError, 502, "api_error"),
    (errors.EmbeddingServerError, 502, "api_error"),
    (errors.StoreUnavailableError, 503, "api_error"),
    (errors.RagError, 400, "invalid_request_error"),
]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The text of the message (the text parts of a multi-part content)."""
        if isinstance(self.content, list):
            parts = [p for p in self.content if p.get("type") == "text"]
            return "\n".join(str(p.get("text", "")) for p in parts)
        return self.content or ""


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # OpenAI's other fields are accepted, unused
    model: str
    messages: list[ChatMessage]
    stream: bool = False
    temperature: float | None = None


class EmbeddingsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str
    input: str | list[str]
    encoding_format: str = "float"


class NewCollection(BaseModel):
    name: str
    chunk_tokens: int | None = None
    chunk_overlap: int | None = None


class SummaryRequest(BaseModel):
    stream: bool = False
    question: str = ""  # e.g. "List every risk it names"; empty: a summary
    temperature: float | None = None


class SearchRequest(BaseModel):
    query: str
    top_k: int | None = None


class UrlsRequest(BaseModel):
    urls: list[str] = []  # pages
    sitemap: str = ""  # a sitemap.xml or sitemap index: its pages
    feed: str = ""  # an RSS or Atom feed: its entries' pages


def create_app(engine: DocChat, *, host: str = "127.0.0.1", keys: ApiKeys | None = None) -> FastAPI:
    """The API over `engine` (its settings decide sign-in), listening on `host`."""
    from fastapi_offline import FastAPIOffline

    keys = keys or engine.services.team.keys
    on_loopback = loopback(host)
    settings = engine.settings
    # The docs pages' scripts are served from the package (fastapi-offline), not a CDN.
    api = FastAPIOffline(title="DocChat API", version="1", description=__doc__)
    api.add_middleware(BodyLimitMiddleware, limit=json_body_limit(settings))
    rate = RateLimit(settings, engine.services.records)
    if rate.on:  # added last, so it runs first: before the body is read
        key_needed = engine.signin.required or not on_loopback
        api.add_middleware(RateLimitMiddleware, limit=rate,
                           who=lambda scope: counter_of(scope, key_needed=key_needed))  # fmt: skip
    from rag.api.mcp_server import mount  # the MCP SDK: only where an API is made

    mount(api, engine, host=host, keys=keys)  # /mcp: the same keys and access rules

    def caller(request: Request) -> DocChat:
        header = request.headers.get("authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else ""
        return engine.as_user(api_user(engine.signin, key, keys, loopback=on_loopback))

    @api.exception_handler(errors.RagError)
    async def refused(request: Request, e: errors.RagError) -> JSONResponse:
        for kind, status, name in _STATUS:
            if isinstance(e, kind):
                code = "model_not_found" if isinstance(e, errors.ModelNotFoundError) else None
                return JSONResponse(shapes.error(str(e), name, code), status_code=status)
        raise AssertionError("unreachable: RagError is the last entry")

    @api.exception_handler(Exception)
    async def failed(request: Request, e: Exception) -> JSONResponse:
        # A bug: the client gets a plain 500 in the error shape; the server's log has
        # the traceback (Starlette logs what reaches this handler).
        return JSONResponse(shapes.error("Internal error.", "api_error"), status_code=500)

    @api.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = f"Invalid request: {first.get('msg', 'bad input')}" + (
            f" ({where})" if where else ""
        )
        return JSONResponse(shapes.error(message, "invalid_request_error"), status_code=422)

    @api.exception_handler(HTTPException)
    async def http_error(request: Request, e: HTTPException) -> JSONResponse:
        kind = "not_found_error" if e.status_code == 404 else "invalid_request_error"
        return JSONResponse(shapes.error(str(e.detail), kind), status_code=e.status_code)

    # -- OpenAI-compatible ---------------------------------------------------------------

    @api.get("/v1/models")
    def list_models(request: Request) -> dict[str, Any]:
        return shapes.models(caller(request).collections())

    @api.get("/v1/models/{model:path}")
    def get_model(model: str, request: Request) -> dict[str, Any]:
        app = caller(request)
        info = app.collection(_collection_of(model))
        return shapes.models([info])["data"][0]

    @api.post("/v1/chat/completions", response_model=None)
    def chat(body: ChatRequest, request: Request) -> dict[str, Any] | StreamingResponse:
        app = caller(request)
        name = _collection_of(body.model)
        app.collection(name)  # 404 / 403 before anything else
        check_messages([m.text() for m in body.messages], settings.max_question_chars)
        turns = [m for m in body.messages if m.role in ("user", "assistant")]
        if not turns or turns[-1].role != "user" or not turns[-1].text().strip():
            raise errors.RagError("The last message must be the user's question.")
        history = [{"role": m.role, "content": m.text()} for m in turns[:-1]]
        question = turns[-1].text()
        doc = app.whole_document(question, collection=name)  # "summarize it": every chunk
        stream: TextStream
        if doc is not None:
            stream = app.summarize(doc, collection=name, question=question,
                                   temperature=body.temperature)  # fmt: skip
        else:
            retrieval = app.retrieve(question, collection=name, history=history)
            stream = app.stream(retrieval, temperature=body.temperature)
        cid = shapes.completion_id()
        if not body.stream:
            with stream:
                return shapes.completion(stream.run(), body.model, cid)
        events = _sse(stream, body.model, cid)
        return _Events(events, close=events.close)

    @api.post("/v1/embeddings")
    def embed(body: EmbeddingsRequest, request: Request) -> dict[str, Any]:
        app = caller(request)
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        check_embed_inputs(texts, settings.max_embed_inputs, settings.max_embed_chars)
        embedder = app.embedder
        if body.model.startswith(shapes.MODEL_PREFIX):
            info = app.collection(_collection_of(body.model))
            if info.model != embedder.name:
                raise errors.RagError(
                    f"{body.model} was embedded with {info.model}; this server embeds with "
                    f"{embedder.name}."
                )
        elif body.model != embedder.name:
            raise errors.ModelNotFoundError(
                f"The model {body.model!r} does not exist: use {embedder.name!r} or "
                "docchat/<collection>."
            )
        if body.encoding_format not in ("float", "base64"):
            raise errors.RagError("encoding_format is float or base64.")
        tokens = sum(len(embedder.token_spans(t)) for t in texts)
        vectors = embedder.embed(texts)
        return shapes.embeddings(vectors, body.model, tokens, body.encoding_format)

    # -- native ----------------------------------------------------------------------------

    @api.get("/v1/collections")
    def collections(request: Request) -> dict[str, Any]:
        return {"data": [c.to_dict() for c in caller(request).collections()]}

    @api.post("/v1/collections", status_code=201)
    def create_collection(body: NewCollection, request: Request) -> dict[str, Any]:
        info = caller(request).create_collection(
            body.name, chunk_tokens=body.chunk_tokens, chunk_overlap=body.chunk_overlap
        )
        return info.to_dict()

    upload_limits = UploadLimits.of(settings)

    @api.post("/v1/collections/{name}/documents", status_code=202, openapi_extra=OPENAPI_BODY,
              response_model=None)  # fmt: skip
    async def upload_documents(name: str, request: Request) -> dict[str, Any] | JSONResponse:
        """Add files (multipart, field `files`, many): a background job; follow it with
        GET /v1/jobs/{id}. A collection that does not exist yet is made by the job
        (with the default chunk settings), as the Upload page makes it. The body is
        read as it arrives and refused (413) at the first limit it passes."""
        app = await run_in_threadpool(caller, request)  # 401 before any of the body
        folder = Path(settings.data_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".upload-", dir=folder) as tmp:
            try:
                files = await receive_files(request, upload_limits, Path(tmp))
            except errors.LimitExceededError as e:
                # The rest of the body is never read: the connection ends with the answer
                # (else the server would read it to the end, to keep the connection).
                body = shapes.error(str(e), "invalid_request_error")
                return JSONResponse(body, status_code=413, headers={"Connection": "close"})

            def submit() -> dict[str, Any]:
                uploads = [Upload(f.name, f.path.read_bytes()) for f in files]
                return app.submit_upload(uploads, collection=name).to_dict()

            return await run_in_threadpool(submit)

    @api.get("/v1/jobs")
    def jobs(request: Request) -> dict[str, Any]:
        return {"data": [j.to_dict() for j in caller(request).jobs()]}

    @api.get("/v1/jobs/{job_id}")
    def job(job_id: str, request: Request) -> dict[str, Any]:
        return caller(request).job(job_id).to_dict()

    @api.post("/v1/jobs/{job_id}/cancel")
    def cancel_job(job_id: str, request: Request) -> dict[str, Any]:
        return caller(request).cancel_job(job_id).to_dict()

    @api.get("/v1/collections/{name}/documents")
    def documents(name: str, request: Request) -> dict[str, Any]:
        return {"data": [d.to_dict() for d in caller(request).documents(name)]}

    @api.post("/v1/collections/{name}/urls")
    def add_urls(name: str, body: UrlsRequest, request: Request) -> dict[str, Any]:
        """Web pages, a sitemap's or a feed's, fetched and added now (docs/web.md): one
        result per page, the ones refused or over a limit with their reason."""
        if not (body.urls or body.sitemap or body.feed):
            raise errors.RagError("Give urls, a sitemap or a feed.")
        web = caller(request).web
        results = web.add(body.urls, sitemap=body.sitemap, feed=body.feed, collection=name)
        return {"data": [r.to_dict() for r in results]}

    @api.post("/v1/collections/{name}/refresh")
    def refresh(name: str, request: Request) -> dict[str, Any]:
        """The collection's web pages fetched again; the changed ones replaced."""
        return {"data": [r.to_dict() for r in caller(request).web.refresh(name)]}

    @api.delete("/v1/collections/{name}/documents/{doc}")
    def delete_document(name: str, doc: str, request: Request) -> dict[str, Any]:
        return caller(request).delete_document(doc, collection=name).to_dict()

    @api.post("/v1/collections/{name}/documents/{doc}/summary", response_model=None)
    def summarize(
        name: str, doc: str, body: SummaryRequest, request: Request
    ) -> dict[str, Any] | StreamingResponse:
        """The whole document summarized (or the list `question` asks for): map-reduce
        over every chunk with the LLM, the most central sentences without one
        (docs/summaries.md). Streamed as chat.completion.chunk events, or one object."""
        app = caller(request)
        stream = app.summarize(doc, collection=name, question=body.question,
                               temperature=body.temperature)  # fmt: skip
        if not body.stream:
            with stream:
                return shapes.summary(stream.run())
        events = _sse(stream, shapes.model_name(name), shapes.completion_id())
        return _Events(events, close=events.close)

    @api.post("/v1/collections/{name}/search")
    def search(name: str, body: SearchRequest, request: Request) -> dict[str, Any]:
        app = caller(request)
        top_k = body.top_k if body.top_k is not None else app.settings.top_k
        if not 1 <= top_k <= 100:
            raise errors.RagError("top_k is 1 to 100.")
        query, hits = app.search(body.query, collection=name, top_k=top_k)
        results = [shapes.source(s) for s in Source.numbered(hits)]
        return {"query": query, "data": results}

    return api


def _collection_of(model: str) -> str:
    if not model.startswith(shapes.MODEL_PREFIX) or not model[len(shapes.MODEL_PREFIX):]:
        raise errors.ModelNotFoundError(
            f"The model {model!r} does not exist: the models are docchat/<collection> "
            "(GET /v1/models)."
        )
    return model[len(shapes.MODEL_PREFIX):]


class _Events(StreamingResponse):
    """Server-sent events that are closed however the response ends: complete, or cut
    short because the client went away (Starlette then stops asking for events, and
    `close` ends the answer's stream, which closes the LLM's)."""

    def __init__(self, events: Iterator[str], *, close: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream")
        self._close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            # No event is being made here: Starlette waits for the one under way
            # before it gives up on the stream. Shielded: a server that shuts down
            # still closes the LLM's stream.
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self._close)


def _sse(stream: Any, model: str, cid: str) -> Generator[str, None, None]:
    """The answer as server-sent events in OpenAI's chunk shape; the last chunk carries
    the sources. A failure after the first byte is an error event (the status is sent)."""

    def event(data: dict[str, Any]) -> str:
        return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

    with stream:
        yield event(shapes.chunk(model, cid, {"role": "assistant", "content": ""}))
        try:
            for delta in stream:
                yield event(shapes.chunk(model, cid, {"content": delta}))
        except errors.RagError as e:
            yield event(shapes.error(str(e), "api_error"))
            yield "data: [DONE]\n\n"
            return
        answer = stream.result()
    yield event(shapes.chunk(model, cid, {}, "stop", answer))
    yield "data: [DONE]\n\n"

