"""Chat completions against OpenAI or any OpenAI-compatible server.

This is the only module that talks to the `openai` client. `LLM` sends a list of
chat messages and either streams the answer back as text deltas (`LLM.stream`) or
returns it in one piece with token usage (`LLM.complete`). It works with
api.openai.com and with local servers that speak the same REST API (Ollama, vLLM,
llama.cpp, LM Studio): those need only a base URL, no key.

Every failure (bad key, rate limit, timeout, server down, unknown model, server
error, an answer cut off half-way) comes out as an `LLMError` whose message a user
can act on. The API key never appears in a message, a repr or `describe()`.

Left out on purpose: tools / function calling, images and other non-text content,
the Responses API, async clients, and per-call retry policies (the client's own
retries are kept low so the UI never hangs for long).
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx2
import openai
from openai import OpenAI

from .errors import ConfigError, LLMError
from .settings import Settings

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# Servers without authentication (Ollama, vLLM, llama.cpp, LM Studio) still get a
# bearer token: the client refuses to start without one and some proxies want it.
NO_KEY_PLACEHOLDER = "not-needed"

_MAX_SERVER_MESSAGE = 300  # characters of a server's own error text we pass on
_KEY_PATTERN = re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}")  # OpenAI-style secret keys

Messages = Sequence[dict[str, str]]
T = TypeVar("T")


@dataclass(frozen=True)
class Completion:
    """One finished answer and what it cost."""

    text: str
    prompt_tokens: int  # 0 when the server does not report usage
    completion_tokens: int
    model: str  # as reported by the server (may be more specific than requested)
    seconds: float


class ChatStream(Iterator[str]):
    """The text deltas of one streamed answer.

    Iterate it like any iterator of strings. Once it is exhausted, `completion`
    holds the whole text with usage and timing (token counts are 0 when the server
    ignores `stream_options`). `close()` (or leaving a `with` block) drops the HTTP
    connection at once, e.g. when the user stops the answer half-way.
    """

    def __init__(self, run: Callable[[ChatStream], Iterator[str]]) -> None:
        self.completion: Completion | None = None
        self._deltas = run(self)  # a generator: nothing happens before the first next()

    def __iter__(self) -> ChatStream:
        return self

    def __next__(self) -> str:
        return next(self._deltas)

    def close(self) -> None:
        close = getattr(self._deltas, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> ChatStream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class LLM:
    """Chat completions against OpenAI or any OpenAI-compatible server."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = "",
        model: str,
        temperature: float = 0.1,
        timeout: float = 60.0,
        max_retries: int = 1,
    ) -> None:
        base_url = base_url.strip().rstrip("/")
        if base_url and urlsplit(base_url).scheme not in ("http", "https"):
            shown = _display_url(base_url)
            raise ConfigError(
                f"OPENAI_BASE_URL must start with http:// or https:// (got {shown!r})."
            )
        if not model:
            raise ConfigError("No chat model is set (DOCCHAT_CHAT_MODEL).")
        if timeout <= 0:
            raise ConfigError(f"DOCCHAT_LLM_TIMEOUT must be positive (got {timeout}).")
        if max_retries < 0:
            raise ConfigError(f"DOCCHAT_LLM_MAX_RETRIES cannot be negative (got {max_retries}).")
        self.model = model
        self.base_url = base_url or DEFAULT_BASE_URL
        self.temperature = temperature
        self.timeout = timeout
        self.max_retries = max_retries
        self._api_key = api_key  # kept only to scrub it from server messages
        # Some servers reject `stream_options`; after the first such refusal we stop
        # sending it and live without usage numbers for streamed answers.
        self._stream_options_ok = True
        self._client = OpenAI(
            api_key=api_key or NO_KEY_PLACEHOLDER,
            # Always explicit: otherwise the client would read OPENAI_BASE_URL from the
            # environment behind the back of `Settings`.
            base_url=self.base_url,
            # One number for connect, write, pool and *each read*: a read is waiting
            # for the first token (or the whole body when not streaming), so a server
            # that stalls longer than this raises a timeout instead of hanging the UI.
            timeout=httpx2.Timeout(timeout),
            max_retries=max_retries,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> LLM | None:
        """The configured LLM, or None when neither a key nor a base URL is set."""
        if not settings.llm_configured:
            return None
        return cls(
            api_key=settings.openai_api_key,
            base_url=settings.openai_base_url,
            model=settings.chat_model,
            temperature=settings.temperature,
            timeout=settings.llm_timeout,
            max_retries=settings.llm_max_retries,
        )

    def __repr__(self) -> str:
        return f"LLM(model={self.model!r}, base_url={_display_url(self.base_url)!r})"

    @property
    def _is_openai(self) -> bool:
        return self.base_url == DEFAULT_BASE_URL

    @property
    def server(self) -> str:
        """The server as shown to users: a host for OpenAI, the whole URL otherwise
        (never a key: `_display_url` drops credentials)."""
        return "api.openai.com" if self._is_openai else _display_url(self.base_url)

    def describe(self) -> str:
        """E.g. "gpt-4o-mini via api.openai.com" or "llama3 via http://127.0.0.1:11434/v1"."""
        return f"{self.model} via {self.server}"

    def close(self) -> None:
        """Release pooled connections (optional; the client is also closed on exit)."""
        self._client.close()

    # ---- calls -------------------------------------------------------------

    def stream(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        temperature: float | None = None,
    ) -> ChatStream:
        """Yield the answer as text deltas; nothing is sent before the first `next()`."""
        sent = list(messages)  # a snapshot: the request goes out later, on first next()
        model = model or self.model
        temperature = self.temperature if temperature is None else temperature
        return ChatStream(lambda out: self._stream(out, sent, model, temperature))

    def _stream(
        self, out: ChatStream, messages: list[dict[str, str]], model: str, temperature: float
    ) -> Iterator[str]:
        started = time.monotonic()
        try:
            response = self._open_stream(messages, model, temperature)
        except _errors() as e:
            raise self._error(e, model) from None
        parts: list[str] = []
        finish_reason: str | None = None
        usage: Any = None
        served_model = model
        try:
            # `with` closes the HTTP response when the consumer stops early.
            with response:
                for chunk in response:
                    served_model = chunk.model or served_model
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        if choice.finish_reason:
                            finish_reason = choice.finish_reason
                        text = choice.delta.content if choice.delta else None
                        if text:
                            parts.append(text)
                            yield text
        except _errors() as e:
            raise self._error(e, model, streaming=True) from None
        if finish_reason is None:
            # The body ended cleanly but the answer did not: a proxy or server gave
            # up without an error. Every OpenAI-compatible server we know sends a
            # finish_reason on the last choice, so its absence means truncation.
            raise LLMError(_CUT_OFF)
        out.completion = Completion(
            text="".join(parts),
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            model=served_model,
            seconds=time.monotonic() - started,
        )

    def _open_stream(
        self, messages: list[dict[str, str]], model: str, temperature: float
    ) -> openai.Stream[Any]:
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": messages,
            "temperature": temperature,
            "stream": True,
        }
        if self._stream_options_ok:
            kwargs["stream_options"] = {"include_usage": True}
        try:
            return self._client.chat.completions.create(**kwargs)
        except openai.BadRequestError as e:
            if "stream_options" not in kwargs or "stream_options" not in str(e.message):
                raise
            self._stream_options_ok = False
            del kwargs["stream_options"]
            return self._client.chat.completions.create(**kwargs)

    def complete(
        self,
        messages: Messages,
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """The whole answer at once, with token usage."""
        model = model or self.model
        kwargs: dict[str, Any] = {
            "model": model,
            "messages": list(messages),
            "temperature": self.temperature if temperature is None else temperature,
        }
        if max_tokens is not None:
            # OpenAI's newer models refuse `max_tokens`; most compatible servers only
            # know `max_tokens`. Each gets the name it understands.
            kwargs["max_completion_tokens" if self._is_openai else "max_tokens"] = max_tokens
        started = time.monotonic()
        try:
            response = self._client.chat.completions.create(**kwargs)
        except _errors() as e:
            raise self._error(e, model) from None
        if not response.choices:
            raise LLMError(f"The LLM returned no answer ({self.describe()}).")
        usage = response.usage
        return Completion(
            text=response.choices[0].message.content or "",
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            model=response.model or model,
            seconds=time.monotonic() - started,
        )

    def list_models(self) -> list[str]:
        """Model ids the server offers, sorted."""
        try:
            return sorted(m.id for m in self._client.models.list())
        except _errors() as e:
            raise self._error(e, self.model, listing=True) from None

    def call_api(self, fn: Callable[[OpenAI], T]) -> T:
        """Run `fn` on the underlying client, any failure mapped to `LLMError`.

        For the other endpoints of the same server (files, fine-tuning jobs, see
        finetune_jobs.py): the caller converts what `fn` returns into its own frozen
        types at once, so no client object travels further.
        """
        try:
            return fn(self._client)
        except _errors() as e:
            raise self._error(e, self.model) from None

    # ---- errors ------------------------------------------------------------

    def _error(
        self, exc: BaseException, model: str, *, streaming: bool = False, listing: bool = False
    ) -> LLMError:
        """Turn any client or transport failure into a message for a person."""
        # HTTP status errors first: their context chain holds an httpx2 status
        # error, which must not be mistaken for a network failure below.
        if not isinstance(exc, openai.APIStatusError):
            if isinstance(exc, openai.APITimeoutError) or _caused_by(exc, _timeout_errors()):
                return LLMError(f"The LLM did not answer within {self.timeout:g} s.")
            if isinstance(exc, openai.APIConnectionError) or _caused_by(exc, _transport_errors()):
                # Once the answer is flowing, or when the body broke off after the
                # headers, the server was reachable: the connection closed early.
                if streaming or _caused_by(exc, (httpx2.ProtocolError, httpx2.ReadError)):
                    return LLMError(_CUT_OFF)
                return LLMError(f"Cannot reach the LLM server at {self.server} (is it running?).")
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
            if not listing and (exc.code == "model_not_found" or "model" in exc.message.lower()):
                return LLMError(f"The model '{model}' does not exist on {self.server}.")
            return LLMError(
                f"The LLM server at {self.server} has no such endpoint (HTTP 404); "
                "check OPENAI_BASE_URL."
            )
        if isinstance(exc, openai.APIStatusError):
            if exc.status_code >= 500:
                return LLMError(f"The LLM server failed (HTTP {exc.status_code}); try again.")
            return LLMError(
                f"The LLM refused the request (HTTP {exc.status_code}): "
                f"{self._scrub(_server_message(exc))}"
            )
        if isinstance(exc, openai.APIError):
            # E.g. an error event in the middle of a stream (vLLM, llama.cpp do that).
            return LLMError(f"The LLM reported an error: {self._scrub(exc.message)}")
        if isinstance(exc, json.JSONDecodeError):
            return LLMError(f"The LLM server at {self.server} sent a reply DocChat cannot read.")
        return LLMError(f"The LLM call failed: {self._scrub(str(exc) or type(exc).__name__)}")

    def _scrub(self, text: str) -> str:
        """Remove the API key (and anything shaped like one) from server text."""
        if self._api_key:
            text = text.replace(self._api_key, "***")
        text = _KEY_PATTERN.sub("sk-***", text)
        if len(text) > _MAX_SERVER_MESSAGE:
            text = text[: _MAX_SERVER_MESSAGE - 1] + "…"
        return text


_CUT_OFF = "The answer was cut off: the connection to the LLM closed early."


def _errors() -> tuple[type[BaseException], ...]:
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


def _display_url(url: str) -> str:
    """The URL without credentials, query or fragment (they may hold secrets)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
