"""Chroma's client: connected, with timeouts, and its errors translated once.

`connect` opens the embedded store (`PersistentClient`, one process per data dir:
`datalock.py`) or a Chroma server (`HttpClient`, many processes). `call` runs one
Chroma call and turns its failures into `RagError`s with messages safe to show:
chromadb's exception classes move between versions, so they are read here, by class
name and message text, and nowhere else. Only the store imports this module
(`store_base.py`, `store_collections.py`).

Left out: retries (a failed call is reported; the user tries again), auth tokens.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rag.core.datalock import lock_data_dir
from rag.core.errors import CollectionNotFoundError, RagError, StoreUnavailableError
from rag.core.settings import ENV_NAMES, Settings

_SERVER_TIMEOUT_S = 30.0  # server mode: a request unanswered this long means an outage
_R = TypeVar("_R")

log = logging.getLogger(__name__)


def connect(settings: Settings) -> Any:
    """A Chroma client for these settings (raises `StoreUnavailableError`)."""
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    if settings.server_mode and settings.chroma_token:
        # Chroma's own token authentication (docs/teams.md): sent as
        # "Authorization: Bearer <token>" on every request; the token is never logged.
        chroma_settings = ChromaSettings(
            anonymized_telemetry=False,
            allow_reset=False,
            chroma_client_auth_provider="chromadb.auth.token_authn.TokenAuthClientProvider",
            chroma_client_auth_credentials=settings.chroma_token,
        )
    try:
        if settings.server_mode:
            client = chromadb.HttpClient(
                host=settings.chroma_host,
                port=settings.chroma_port,
                ssl=settings.chroma_ssl,
                settings=chroma_settings,
            )
            _limit_waits(client)
            client.heartbeat()
            return client
        data_dir = Path(settings.data_dir)  # (a str when Settings is built by hand)
        lock_data_dir(data_dir)
        return chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=chroma_settings)
    except Exception as e:  # chromadb raises assorted transport/storage errors
        raise translate(e, settings, connecting=True) from None


def call(settings: Settings, fn: Callable[..., _R], *args: Any, **kwargs: Any) -> _R:
    """`fn(*args, **kwargs)`, its failures translated (argument errors are re-raised)."""
    try:
        return fn(*args, **kwargs)
    except Exception as e:
        error = translate(e, settings)
        if error is e:
            raise
        raise error from None


def translate(e: Exception, settings: Settings, *, connecting: bool = False) -> Exception:
    """The `RagError` a Chroma failure means (any failure to connect: unavailable)."""
    if isinstance(e, RagError):
        return e
    if not connecting:
        # A deleted collection: chromadb's NotFoundError, or a ValueError-like
        # "does not exist" from older paths.
        message = str(e).lower()
        argument_error = isinstance(e, (ValueError, KeyError, TypeError))
        if type(e).__name__ == "NotFoundError" or (
            argument_error and ("does not exist" in message or "not found" in message)
        ):
            return CollectionNotFoundError("That collection no longer exists.")
        if argument_error:
            return e  # Chroma's argument errors, or a bug here: surface them in tests
    if not settings.server_mode:
        # The path and Chroma's own words go to the log, not to a user or API client.
        log.warning("cannot open the index under %s: %r", settings.data_dir, e)
        return StoreUnavailableError(
            f"Cannot open the index in the data directory ({type(e).__name__}); the "
            "server's log has the details."
        )
    server = f"Chroma server at {settings.chroma_host}:{settings.chroma_port}"
    if type(e).__name__ == "ChromaAuthError":
        given = "a token it does not accept" if settings.chroma_token else "no token"
        return StoreUnavailableError(
            f"The {server} refused DocChat: it sent {given}. Set {ENV_NAMES['chroma_token']} "
            "to the server's token."
        )
    if "timeout" in type(e).__name__.lower():
        return StoreUnavailableError(
            f"The {server} did not answer within "
            f"{_SERVER_TIMEOUT_S:.0f} s. It may be overloaded or stuck; try again."
        )
    return StoreUnavailableError(f"Cannot reach the {server} ({type(e).__name__}). Is it running?")


def _limit_waits(client: Any) -> None:
    """Give Chroma's HTTP client timeouts: it has none, so a hung server would hang the app.

    (Its session is private; tests/integration/test_chroma_server.py checks a stopped server is
    reported within the timeout, so a Chroma upgrade that moves it is noticed.)
    """
    import httpx

    session = getattr(getattr(client, "_server", None), "_session", None)
    if isinstance(session, httpx.Client):
        session.timeout = httpx.Timeout(_SERVER_TIMEOUT_S, connect=5.0)
