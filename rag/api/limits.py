"""What one API request may cost: the per-key rate limit, the size of a JSON body, and
the length of chat messages and embedding inputs.

The rate limit is the `limits` library's fixed window, in its notation
(`DOCCHAT_RATE_LIMIT`, "120/minute"; several separated by ";"), counted per API key
(the SHA-256 of the key sent) or, when no key is needed (single-user mode on this
machine), per client address. A request over it gets 429 in OpenAI's shape
(type "requests", code "rate_limit_exceeded") with `Retry-After`: the seconds until
the window ends. It is checked before the request's body is read, on every `/v1`
route and `/mcp`.

The counters are shared by every process that serves the API: in Redis through
`limits`' own storage when `DOCCHAT_REDIS_URL` is set, else in the record store's
`rate_counters` table through `RecordCounters`, a `limits` storage whose increment is
one `Database.write` (an upsert that adds to the window or starts a new one, in one
statement), so SQLite and PostgreSQL count alike across processes.

`BodyLimitMiddleware` bounds the body of every request but an upload (which counts
its own, uploads.py) by `json_body_limit`: enough for the longest messages and
embedding inputs the settings allow, written with JSON's longest escapes; at once
when `Content-Length` is over it, else as the body is read. (Not FastAPI's own
`max_body_size`: that answers a Content-Length over the limit in plain text, not in
OpenAI's shape.) `check_messages` and `check_embed_inputs` then bound those by their
characters, before any retrieval or tokenizing.

Left out: limits per route or per user (each of a user's keys counts apart), a cost
per request (a chat counts as much as a listing), and slowing down key guessing (a
key that is not valid counts on its own counter, so each guess starts a new one).
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
from limits import RateLimitItem, parse_many
from limits.errors import StorageError
from limits.storage import Storage, storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import Connection, case, delete, select
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.api import shapes
from rag.core.errors import ConfigError, LimitExceededError, RagError, StoreUnavailableError
from rag.core.settings import ENV_NAMES, Settings
from rag.records import rows
from rag.records.database import Database, ping
from rag.records.schema import rate_counters
from rag.services.answers import check_length

log = logging.getLogger(__name__)

# How often one process deletes the counters of windows that ended (keys seen once
# would otherwise stay in the table for good).
PRUNE_SECONDS = 60.0
# The chat messages of one request together, in questions (`max_question_chars`):
# beyond the prompt's budget old history is dropped anyway (answering/prompts.py).
MESSAGES_QUESTIONS = 8
# A JSON string may spell a character as "\u00e9": six bytes for one.
_JSON_BYTES_PER_CHAR = 6
_JSON_SLACK = 1_000_000  # field names, numbers and the rest of the body


def json_body_limit(settings: Settings) -> int:
    """The largest body, in bytes, of a request other than an upload: the longest chat
    messages or embedding inputs the settings allow, every character escaped."""
    chars = max(MESSAGES_QUESTIONS * settings.max_question_chars, settings.max_embed_chars)
    return chars * _JSON_BYTES_PER_CHAR + _JSON_SLACK


def body_limit_message(limit: int) -> str:
    return (
        f"The request body is over the limit of {limit / 1_000_000:g} MB, set by "
        f"{ENV_NAMES['max_question_chars']} and {ENV_NAMES['max_embed_chars']}."
    )


def check_messages(texts: list[str], limit: int) -> None:
    """Chat messages (the question last): each at most `limit` characters
    (`max_question_chars`), all of them `MESSAGES_QUESTIONS` times that."""
    total = 0
    for i, text in enumerate(texts):
        check_length(text, limit, "question" if i == len(texts) - 1 else "message")
        total += len(text)
    if total > MESSAGES_QUESTIONS * limit:
        raise LimitExceededError(
            f"The messages are {total:,} characters together, over the limit of "
            f"{MESSAGES_QUESTIONS * limit:,} ({MESSAGES_QUESTIONS} times "
            f"{ENV_NAMES['max_question_chars']}): send less history."
        )


def check_embed_inputs(texts: list[str], most: int, chars: int) -> None:
    """1 to `most` texts to embed, of at most `chars` characters together."""
    if not texts:
        raise RagError("Give at least one text to embed.")
    if len(texts) > most:
        raise LimitExceededError(
            f"{len(texts):,} texts to embed, over the limit of {most:,} per request "
            f"({ENV_NAMES['max_embed_inputs']})."
        )
    total = sum(len(t) for t in texts)
    if total > chars:
        raise LimitExceededError(
            f"The texts to embed are {total:,} characters together, over the limit of "
            f"{chars:,} per request ({ENV_NAMES['max_embed_chars']})."
        )


def bearer(headers: Headers) -> str:
    """The key of an `Authorization: Bearer <key>` header ("" without one)."""
    header = headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else ""


class RecordCounters(Storage):
    """`limits`' fixed-window counters in the record store's `rate_counters` table
    (key, window_end, count): one transaction per hit, shared by every process."""

    STORAGE_SCHEME = None  # made by `RateLimit`, never from a URL

    def __init__(self, db: Database) -> None:
        super().__init__(None, wrap_exceptions=False)
        self.db = db
        self._pruned = 0.0
        self._lock = threading.Lock()

    @property
    def base_exceptions(self) -> type[Exception]:
        return RagError  # the record store's failures are RagErrors already

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """The key's count after adding `amount`: to its window, or to a new one of
        `expiry` seconds when the last one ended."""
        now = time.time()
        t = rate_counters.c
        ended = t.window_end <= now
        upsert = rows.statement(
            self.db.dialect,
            rate_counters,
            {"key": key},
            {"window_end": now + expiry, "count": amount},
            {
                # Both read the row as it was: SQL evaluates every SET first.
                "count": case((ended, amount), else_=t.count + amount),
                "window_end": case((ended, now + expiry), else_=t.window_end),
            },
        ).returning(t.count)
        prune = self._due(now)

        def hit(conn: Connection) -> int:
            if prune:
                conn.execute(delete(rate_counters).where(t.window_end < now))
            return int(conn.execute(upsert).scalar_one())

        return self.db.write(hit)

    def _due(self, now: float) -> bool:
        with self._lock:
            if now - self._pruned < PRUNE_SECONDS:
                return False
            self._pruned = now
            return True

    def _row(self, key: str) -> tuple[float, int] | None:
        t = rate_counters.c
        query = select(t.window_end, t.count).where(t.key == key, t.window_end > time.time())
        row = self.db.read(lambda conn: conn.execute(query).first())
        return (float(row[0]), int(row[1])) if row else None

    def get(self, key: str) -> int:
        row = self._row(key)
        return row[1] if row else 0

    def get_expiry(self, key: str) -> float:
        row = self._row(key)
        return row[0] if row else time.time()

    def check(self) -> bool:
        try:
            self.db.read(ping)
        except RagError:
            return False
        return True

    def reset(self) -> int | None:
        return self.db.write(lambda conn: conn.execute(delete(rate_counters)).rowcount)

    def clear(self, key: str) -> None:
        self.db.write(lambda conn: conn.execute(delete(rate_counters).where(
            rate_counters.c.key == key)))  # fmt: skip


class RateLimit:
    """The settings' rate limit over the shared counters; `wait(who)` counts a request."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.items: list[RateLimitItem] = []
        # "off" (an empty variable counts as unset, so it cannot say "none").
        if settings.rate_limit.strip().lower() not in ("", "off"):
            try:
                self.items = parse_many(settings.rate_limit)
            except ValueError:
                raise ConfigError(
                    f"{ENV_NAMES['rate_limit']}={settings.rate_limit!r} is not a rate limit: "
                    "write it as e.g. 120/minute, or off."
                ) from None
        self.storage: Storage = (
            storage_from_string(settings.redis_url, wrap_exceptions=True)  # type: ignore[assignment]
            if settings.redis_url
            else RecordCounters(db)
        )
        self.limiter = FixedWindowRateLimiter(self.storage)

    @property
    def on(self) -> bool:
        return bool(self.items)

    def wait(self, who: str) -> tuple[RateLimitItem, int] | None:
        """Count a request of `who`: None when allowed, else the limit it passed and the
        seconds until that limit's window ends."""
        try:
            for item in self.items:
                if not self.limiter.hit(item, who):
                    reset = self.limiter.get_window_stats(item, who).reset_time
                    return item, max(1, math.ceil(reset - time.time()))
        except StorageError as e:
            log.warning("rate limit storage: %s", e)  # the details (the URL) stay in the log
            raise StoreUnavailableError(
                f"The rate limit's Redis server cannot be reached ({ENV_NAMES['redis_url']})."
            ) from None
        return None


class RateLimitMiddleware:
    """Counts every `/v1` and `/mcp` request before it is read (`who(scope)` names its counter);
    one over the limit gets 429 with `Retry-After`, and never reaches the route."""

    def __init__(self, app: ASGIApp, limit: RateLimit, who: Callable[[Scope], str]) -> None:
        self.app = app
        self.limit = limit
        self.who = who

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path in ("/v1", "/mcp") or path.startswith("/v1/")):
            await self.app(scope, receive, send)
            return
        who = self.who(scope)
        try:
            # A database or Redis round trip: off the event loop.
            passed = await anyio.to_thread.run_sync(self.limit.wait, who)
        except RagError as e:
            body = shapes.error(str(e), "api_error")
            await JSONResponse(body, status_code=503)(scope, receive, send)
            return
        if passed is None:
            await self.app(scope, receive, send)
            return
        item, seconds = passed
        per = "API key" if who.startswith("key:") else "client address"
        message = (
            f"Rate limit reached: {item.amount} requests per {_window(item)} for this {per} "
            f"({ENV_NAMES['rate_limit']}). Try again in {seconds} s."
        )
        response = JSONResponse(
            shapes.error(message, "requests", "rate_limit_exceeded"),
            status_code=429,
            headers={"Retry-After": str(seconds)},
        )
        await response(scope, receive, send)


_UPLOAD_PATH = re.compile(r"^/v1/collections/[^/]+/documents/?$")


class BodyLimitMiddleware:
    """Bodies over `limit` bytes get 413 in OpenAI's shape: at once when Content-Length
    says so, else when the count passes it (the route reading the body gets an
    `HTTPException`, which the API's handler shapes). An upload counts its own."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        upload = scope.get("method") == "POST" and _UPLOAD_PATH.match(scope.get("path", ""))
        if scope["type"] != "http" or upload:
            await self.app(scope, receive, send)
            return
        message = body_limit_message(self.limit)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            body = shapes.error(message, "invalid_request_error")
            await JSONResponse(body, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            got = await receive()
            if got["type"] == "http.request":
                seen += len(got.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, message)
            return got

        await self.app(scope, counted, send)


def _window(item: RateLimitItem) -> str:
    name = item.GRANULARITY.name
    return name if item.multiples == 1 else f"{item.multiples} {name}s"


def counter_of(scope: Scope, *, key_needed: bool) -> str:
    """Whose counter a request counts on: its API key's digest when a key is needed
    (and sent), else its client address."""
    key = bearer(Headers(scope=scope))
    if key and key_needed:
        return "key:" + hashlib.sha256(key.encode()).hexdigest()
    client: Any = scope.get("client")
    return "address:" + (str(client[0]) if client else "unknown")
