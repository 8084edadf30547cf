"""Chat completions against OpenAI or any OpenAI-compatible server.

`LLM` is what the rest of DocChat needs from a chat model (a `Protocol`, so tests
can pass their own). `OpenAILLM` is the one implementation, and the only class that
talks to the `openai` client: it sends a list of chat messages and either streams
the answer back as text deltas (`stream`) or returns it in one piece with token
usage (`complete`). It works with api.openai.com and with local servers that speak
the same REST API (Ollama, vLLM, llama.cpp, LM Studio): those need only a base URL,
no key.

Every failure comes out as an `LLMError` whose message a user can act on (the
mapping is llm_errors.py). The API key never appears in a message, a repr or
`describe()`.

Left out on purpose: tools / function calling, images and other non-text content,
the Responses API, async clients, and per-call retry policies (the client's own
retries are kept low so the UI never hangs for long).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx2
import openai
from openai import OpenAI

from rag.components.llm_errors import CUT_OFF, client_errors, display_url, map_error
from rag.core.errors import ConfigError, LLMError
from rag.core.settings import Settings
from rag.core.text import Message

DEFAULT_BASE_URL = "https://api.openai.com/v1"

# Servers without authentication (Ollama, vLLM, llama.cpp, LM Studio) still get a
# bearer token: the client refuses to start without one and some proxies want it.
NO_KEY_PLACEHOLDER = "not-needed"

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


class LLM(Protocol):
    """What the rest of DocChat needs from a chat model."""

    model: str  # the default model of `stream` and `complete`

    @property
    def server(self) -> str:
        """The server as shown to users (never a key)."""
        ...

    def describe(self) -> str:
        """The model and server as shown to users, e.g. "gpt-4o-mini via api.openai.com"."""
        ...

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
    ) -> ChatStream:
        """The answer as text deltas; nothing is sent before the first `next()`."""
        ...

    def complete(
        self,
        messages: Sequence[Message],
        *,
        model: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """The whole answer at once, with token usage."""
        ...

    def call_api(self, fn: Callable[[OpenAI], T]) -> T:
        """Run `fn` on the server's OpenAI client (files, fine-tuning jobs)."""
        ...


class OpenAILLM:
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
            shown = display_url(base_url)
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

    def __repr__(self) -> str:
        return f"OpenAILLM(model={self.model!r}, base_url={display_url(self.base_url)!r})"

    @property
    def _is_openai(self) -> bool:
        return self.base_url == DEFAULT_BASE_URL

    @property
    def server(self) -> str:
        """The server as shown to users: a host for OpenAI, the whole URL otherwise
        (never a key: `display_url` drops credentials)."""
        return "api.openai.com" if self._is_openai else display_url(self.base_url)

    def describe(self) -> str:
        """E.g. "gpt-4o-mini via api.openai.com" or "llama3 via http://127.0.0.1:11434/v1"."""
        return f"{self.model} via {self.server}"

    def close(self) -> None:
        """Release pooled connections (optional; the client is also closed on exit)."""
        self._client.close()

    # ---- calls -------------------------------------------------------------

    def stream(
        self,
        messages: Sequence[Message],
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
        self, out: ChatStream, messages: list[Message], model: str, temperature: float
    ) -> Iterator[str]:
        started = time.monotonic()
        try:
            response = self._open_stream(messages, model, temperature)
        except client_errors() as e:
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
        except client_errors() as e:
            raise self._error(e, model, streaming=True) from None
        if finish_reason is None:
            # The body ended cleanly but the answer did not: a proxy or server gave
            # up without an error. Every OpenAI-compatible server we know sends a
            # finish_reason on the last choice, so its absence means truncation.
            raise LLMError(CUT_OFF)
        out.completion = Completion(
            text="".join(parts),
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            model=served_model,
            seconds=time.monotonic() - started,
        )

    def _open_stream(
        self, messages: list[Message], model: str, temperature: float
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
        messages: Sequence[Message],
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
        except client_errors() as e:
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

    def call_api(self, fn: Callable[[OpenAI], T]) -> T:
        """Run `fn` on the underlying client, any failure mapped to `LLMError`.

        For the other endpoints of the same server (files, fine-tuning jobs, see
        finetune/jobs.py): the caller converts what `fn` returns into its own frozen
        types at once, so no client object travels further.
        """
        try:
            return fn(self._client)
        except client_errors() as e:
            raise self._error(e, self.model) from None

    def _error(self, exc: BaseException, model: str, *, streaming: bool = False) -> LLMError:
        return map_error(
            exc,
            model=model,
            server=self.server,
            timeout=self.timeout,
            api_key=self._api_key,
            streaming=streaming,
        )


def open_llm(settings: Settings) -> OpenAILLM | None:
    """The configured LLM, or None when neither a key nor a base URL is set."""
    if not settings.llm_configured:
        return None
    return OpenAILLM(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        model=settings.chat_model,
        temperature=settings.temperature,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
    )
