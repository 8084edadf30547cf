"""Embedding on an OpenAI-compatible `/v1/embeddings` server: `RemoteEmbedder`.

Any server that speaks OpenAI's embeddings API works: Ollama, vLLM, Text Embeddings
Inference, Infinity, OpenAI itself, or another DocChat's API. It is the same
`Embedder` as the local model (`embeddings.py`), picked by the settings
(`DOCCHAT_EMBEDDING_BASE_URL`) in `open_embedder`:

- `name` is `<model>@<host:port>`: a collection records which model on which server
  made its vectors, so the re-index guard (`ReindexNeededError`) also stops a
  collection built locally, or on another server, from being mixed with these.
- Texts are measured and cut with the packaged MiniLM tokenizer to
  `embedding_max_tokens` before they are sent, as the local model cuts them (another
  model's tokenizer differs a little; 254 tokens fits every common model's window).
- `dimension` is learned from the first response (a one-word request when asked
  before anything was embedded).
- Requests carry up to `_REQUEST_TEXTS` texts, are retried (`embedding_max_retries`)
  on network failures, 429 and 5xx, and wait `embedding_timeout` seconds; every
  failure is an `EmbeddingServerError` naming the server, its key scrubbed.

The response's shape is read here once, and nowhere else. Left out: token-count
batching, servers that are not OpenAI-compatible (Cohere, Vertex AI).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx2
import numpy as np

from rag.components.embeddings import Embedder, load_embedder
from rag.components.llm_errors import display_url, scrub
from rag.components.local_model import Progress, Tokenized, packaged_tokenizer
from rag.core.errors import ConfigError, EmbeddingServerError
from rag.core.settings import ENV_NAMES, Settings

# Texts per request: Text Embeddings Inference refuses more than 32 by default
# (--max-client-batch-size), and OpenAI, vLLM, Ollama and Infinity take 32 too.
_REQUEST_TEXTS = 32
_BACKOFF_S = 0.25  # the first retry's wait; each later one waits twice as long
_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_PROBE = "dimension"  # embedded once when the dimension is asked before any vector


def open_embedder(settings: Settings) -> Embedder:
    """The embedder the settings name: a remote server's model, or the local one."""
    if settings.remote_embedding:
        return RemoteEmbedder(settings)
    return load_embedder(
        settings.embedding_model,
        batch_size=settings.embedding_batch_size,
        backend=settings.embedding_backend,
        threads=settings.embedding_threads,
    )


def server_label(base_url: str) -> str:
    """`host:port` of a server URL (the port its scheme implies when none is given)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{ENV_NAMES['embedding_base_url']}={display_url(base_url)!r} is not an http(s) URL."
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ConfigError(
            f"{ENV_NAMES['embedding_base_url']} has an invalid port: {display_url(base_url)!r}."
        ) from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}"


class RemoteEmbedder(Tokenized):
    """A model on an OpenAI-compatible embeddings server (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.model = settings.embedding_model
        self.name = f"{self.model}@{server_label(settings.embedding_base_url)}"
        self.max_tokens = settings.embedding_max_tokens
        self.server = display_url(settings.embedding_base_url).rstrip("/")
        self._url = settings.embedding_base_url.rstrip("/") + "/embeddings"
        self._key = settings.embedding_api_key
        self._timeout = settings.embedding_timeout
        self._retries = max(0, settings.embedding_max_retries)
        self._tokenizer = packaged_tokenizer()
        self._dimension: int | None = None
        self._lock = threading.Lock()  # the dimension is learned once
        headers = {"authorization": f"Bearer {self._key}"} if self._key else {}
        self._http = httpx2.Client(timeout=self._timeout, headers=headers)

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            self.embed([_PROBE])
        assert self._dimension is not None  # set by the first response
        return self._dimension

    def embed(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        cut = [self.truncate(t, self.max_tokens) for t in texts]
        rows: list[np.ndarray] = []
        for i in range(0, len(cut), _REQUEST_TEXTS):
            rows.append(self._request(cut[i : i + _REQUEST_TEXTS]))
            if progress is not None:
                progress(min(i + _REQUEST_TEXTS, len(cut)), len(cut))
        if not rows:
            return np.zeros((0, self._dimension or 0), dtype=np.float32)
        vectors = np.concatenate(rows)
        # Unit length, as the protocol promises (TEI and Ollama may send raw vectors).
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)

    def _request(self, batch: list[str]) -> np.ndarray:
        """One request's vectors (retried), in the order of `batch`."""
        body = {"model": self.model, "input": batch, "encoding_format": "float"}
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                response = self._http.post(self._url, json=body)
            except httpx2.TimeoutException:
                if last:
                    raise self._error(f"did not answer within {self._timeout:g} s") from None
            except httpx2.HTTPError as e:
                if last:
                    why = "connection refused" if isinstance(e, httpx2.ConnectError) else "network"
                    raise self._error(f"cannot be reached ({why}; is it running?)") from None
            else:
                if response.status_code < 400:
                    return self._vectors(response, len(batch))
                if last or response.status_code not in _RETRY_STATUS:
                    raise self._refused(response)
            time.sleep(_BACKOFF_S * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _vectors(self, response: httpx2.Response, count: int) -> np.ndarray:
        """OpenAI's `{"data": [{"index", "embedding"}, ...]}` as rows in input order."""
        try:
            data = response.json()["data"]
            pairs = sorted((int(d["index"]), d["embedding"]) for d in data)
            vectors = np.asarray([v for _, v in pairs], dtype=np.float32)
        except (ValueError, KeyError, TypeError, IndexError):
            raise self._error("sent a reply that is not an embeddings list") from None
        if vectors.ndim != 2 or [i for i, _ in pairs] != list(range(count)):
            raise self._error(f"sent {len(pairs)} vectors for {count} texts")
        with self._lock:
            if self._dimension is None:
                self._dimension = int(vectors.shape[1])
        if vectors.shape[1] != self._dimension:
            raise self._error(
                f"sent vectors of {vectors.shape[1]} dimensions, earlier ones had {self._dimension}"
            )
        return vectors

    def _refused(self, response: httpx2.Response) -> EmbeddingServerError:
        status = response.status_code
        if status in (401, 403):
            return self._error(
                f"rejected the API key (HTTP {status}; check {ENV_NAMES['embedding_api_key']})"
            )
        if status == 404:
            return self._error(
                f"has no model {self.model!r} or no /embeddings endpoint (HTTP 404; check "
                f"{ENV_NAMES['embedding_model']} and {ENV_NAMES['embedding_base_url']})"
            )
        return self._error(f"failed (HTTP {status}): {scrub(_message(response), self._key)}")

    def _error(self, what: str) -> EmbeddingServerError:
        return EmbeddingServerError(f"The embedding server at {self.server} {what.rstrip('.')}.")


def _message(response: httpx2.Response) -> str:
    """The server's own error text (OpenAI's `{"error": {"message"}}` or the body)."""
    try:
        body: Any = response.json()
    except ValueError:
        return response.text.strip() or "no details"
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):  # TEI and Ollama: {"error": "..."}
        return error
    return response.text.strip() or "no details"
