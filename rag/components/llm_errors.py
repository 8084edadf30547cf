"""What the openai client and its transport raise, as messages a person can act on.

`map_error` turns a failure of a call (bad key, rate limit, timeout, server down,
unknown model, server error, an answer cut off half-way) into an `LLMError`; the
API key, and anything shaped like one, is scrubbed from any server text passed on.
`client_errors()` is what a call may raise that is the server's or the network's
fault (everything else is a bug and propagates).

Left out: retrying (the client's own retries do that), localized messages.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai

from rag.core.errors import LLMError

_MAX_SERVER_MESSAGE = 300  # characters of a server's own error text we pass on
_KEY_PATTERN = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")  # OpenAI-style secret keys

CUT_OFF = "The answer was cut off: the connection to the LLM closed early."


def map_error(
    exc: BaseException,
    *,
    model: str,
    server: str,
    timeout: float,
    api_key: str,
    streaming: bool = False,
) -> LLMError:
    """Turn any client or transport failure into a message for a person.

    `server` is the server as shown to users (no credentials), `api_key` is only
    used to scrub the key out of the server's own text.
    """
    # HTTP status errors first: their context chain holds an httpx2 status
    # error, which must not be mistaken for a network failure below.
    if not isinstance(exc, openai.APIStatusError):
        if isinstance(exc, openai.APITimeoutError) or _caused_by(exc, _timeout_errors()):
            return LLMError(f"The LLM did not answer within {timeout:g} s.")
        if isinstance(exc, openai.APIConnectionError) or _caused_by(exc, _transport_errors()):
            # Once the answer is flowing, or when the body broke off after the
            # headers, the server was reachable: the connection closed early.
            if streaming or _caused_by(exc, (httpx2.ProtocolError, httpx2.ReadError)):
                return LLMError(CUT_OFF)
            return LLMError(f"Cannot reach the LLM server at {server} (is it running?).")
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return LLMError("The LLM rejected the API key (check OPENAI_API_KEY).")
    if isinstance(exc, openai.RateLimitError):
        if exc.code == "insufficient_quota":
            # Retrying never helps here: the account is out of credit.
            return LLMError("The LLM account has no quota left (check its plan and billing).")
        wait = _retry_after(exc.response)
        when = f"in {wait} s" if wait is not None else "in a moment"
        return LLMError(f"The LLM is rate-limiting requests; try again {when}.")
    if isinstance(exc, openai.NotFoundError):
        # A wrong base URL also gives 404 (e.g. Ollama without /v1): only blame
        # the model when the server says so.
        if exc.code == "model_not_found" or "model" in exc.message.lower():
            return LLMError(f"The model '{model}' does not exist on {server}.")
        return LLMError(
            f"The LLM server at {server} has no such endpoint (HTTP 404); check OPENAI_BASE_URL."
        )
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code >= 500:
            return LLMError(f"The LLM server failed (HTTP {exc.status_code}); try again.")
        return LLMError(
            f"The LLM refused the request (HTTP {exc.status_code}): "
            f"{scrub(_server_message(exc), api_key)}"
        )
    if isinstance(exc, openai.APIError):
        # E.g. an error event in the middle of a stream (vLLM, llama.cpp do that).
        return LLMError(f"The LLM reported an error: {scrub(exc.message, api_key)}")
    if isinstance(exc, json.JSONDecodeError):
        return LLMError(f"The LLM server at {server} sent a reply DocChat cannot read.")
    return LLMError(f"The LLM call failed: {scrub(str(exc) or type(exc).__name__, api_key)}")


def scrub(text: str, api_key: str) -> str:
    """Remove the API key (and anything shaped like one) from server text."""
    if api_key:
        text = text.replace(api_key, "***")
    text = _KEY_PATTERN.sub("sk-***", text)
    if len(text) > _MAX_SERVER_MESSAGE:
        text = text[: _MAX_SERVER_MESSAGE - 1] + "…"
    return text


def client_errors() -> tuple[type[BaseException], ...]:
    """Everything a call may raise that is the server's or the network's fault."""
    # openai wraps transport errors it sees, but a streamed body is read while the
    # caller iterates, and a few transport errors slip through unwrapped there.
    return (openai.OpenAIError, json.JSONDecodeError, *_transport_errors())


def _transport_errors() -> tuple[type[BaseException], ...]:
    # openai 3.x runs on httpx2. It still accepts a legacy `httpx` client, so its
    # errors count too when that module is loaded (as openai itself does).
    errors: tuple[type[BaseException], ...] = (httpx2.HTTPError, httpx2.StreamError)
    legacy = sys.modules.get("httpx")
    if legacy is not None:
        errors = (*errors, legacy.HTTPError, legacy.StreamError)
    return errors


def _timeout_errors() -> tuple[type[BaseException], ...]:
    legacy = sys.modules.get("httpx")
    if legacy is not None:
        return (httpx2.TimeoutException, legacy.TimeoutException, TimeoutError)
    return (httpx2.TimeoutException, TimeoutError)


def _caused_by(exc: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether `exc` or anything in its cause/context chain is one of `kinds`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return True
        seen.add(id(current))
        # Follow what Python would print: the explicit cause, else the implicit
        # context unless `raise ... from None` hid it.
        if current.__cause__ is not None:
            current = current.__cause__
        elif not current.__suppress_context__:
            current = current.__context__
        else:
            current = None
    return False


def _retry_after(response: Any) -> int | None:
    """Seconds the server asks us to wait, rounded up; None when it does not say."""
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: rare enough to fall back to "in a moment"
        if 0 <= seconds < 24 * 3600:
            return max(1, int(-(-seconds // 1)))
    return None


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    # The client's own text is "Error code: N - message"; drop the prefix.
    return re.sub(r"^Error code: \d+ - ", "", exc.message) or "no details"


def display_url(url: str) -> str:
    """The URL without credentials, query or fragment (they may hold secrets)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
