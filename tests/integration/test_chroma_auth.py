"""DocChat against a Chroma server that demands a token (DOCCHAT_CHROMA_TOKEN).

With the right token DocChat ingests and searches as usual; without one, or with a
wrong one, it says the server refused it and which setting to set
(`StoreUnavailableError`), and the index is untouched; a client without the token is
refused by the server itself. The token never appears in `repr(Settings)`, in an
error message or traceback, or in anything logged while DocChat works.

The server is chromadb's Python server (`chromadb.app` under uvicorn) with Chroma's
token authentication: `chroma run` (Rust, chromadb 1.5.9) accepts the auth settings
and ignores them, so it cannot show a refusal (requirements-dev.txt).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag import DocChat, Settings, StoreUnavailableError
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import free_port, missing

CATS = b"# Cats\n\nCats sleep sixteen hours a day.\n\n## Food\n\nCats eat fish and mice.\n"
OWLS = b"Owls hunt at night and turn their heads almost all the way around.\n"
COLLECTIONS = "/api/v2/tenants/default_tenant/databases/default_database/collections"


class AuthChromaServer:
    """chromadb's Python server on 127.0.0.1 with token authentication, as a subprocess."""

    def __init__(self, path: Path, log: Path) -> None:
        self.port = free_port()
        self.path = path
        self.log = log
        self.token = secrets.token_urlsafe(24)
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        command = [sys.executable, "-m", "uvicorn", "chromadb.app:app"]
        command += ["--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        env = {
            **os.environ,
            "IS_PERSISTENT": "TRUE",
            "PERSIST_DIRECTORY": str(self.path),
            "ANONYMIZED_TELEMETRY": "False",
            "CHROMA_SERVER_AUTHN_PROVIDER": (
                "chromadb.auth.token_authn.TokenAuthenticationServerProvider"
            ),
            "CHROMA_SERVER_AUTHN_CREDENTIALS": self.token,
            "CHROMA_AUTH_TOKEN_TRANSPORT_HEADER": "Authorization",
        }
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            try:
                # The heartbeat answers without a token: it only says the server is up.
                with urllib.request.urlopen(self.url("/api/v2/heartbeat"), timeout=1):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"chromadb's server did not start:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[AuthChromaServer]:
    for module in ("uvicorn", "fastapi", "opentelemetry.instrumentation.fastapi"):
        if importlib.util.find_spec(module) is None:
            missing(f"{module} is not installed (requirements-dev.txt): no Chroma auth server")
    srv = AuthChromaServer(tmp_path / "chroma-server", tmp_path / "chroma.log")
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def status(url: str, token: str = "") -> int:
    """The HTTP status of GET `url`, with `Authorization: Bearer <token>` if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return e.code


def refusal(server: AuthChromaServer, settings: Settings) -> str:
    """The message of the StoreUnavailableError a DocChat on `settings` meets, checked.

    Connecting may succeed (the heartbeat needs no token): then the first real call
    is refused. Each call is checked, so none slips through with no error.
    """
    calls: list[Callable[[], object]] = []
    with pytest.raises(StoreUnavailableError) as info:
        app = DocChat.open(settings, embedder=HashEmbedder())
        calls = [app.documents, lambda: app.search("cats"), lambda: app.ingest("owls.txt", OWLS)]
        calls.pop(0)()
    errors = [info.value]
    for call in calls:
        with pytest.raises(StoreUnavailableError) as more:
            call()
        errors.append(more.value)
    for error in errors:
        message = str(error)
        assert f"Chroma server at 127.0.0.1:{server.port} refused DocChat" in message, message
        assert "DOCCHAT_CHROMA_TOKEN" in message, message
        shown = "".join(traceback.format_exception(error)) + repr(error)
        assert server.token not in shown
        assert not settings.chroma_token or settings.chroma_token not in shown
    return str(info.value)


@pytest.mark.slow
def test_chroma_token_auth(
    tmp_path: Path, server: AuthChromaServer, caplog: pytest.LogCaptureFixture
) -> None:
    token = server.token
    caplog.set_level(logging.DEBUG)  # every logger (rag's, chromadb's, httpx's), to DEBUG
    settings = Settings(
        data_dir=tmp_path / "data",
        chroma_host="127.0.0.1",
        chroma_port=server.port,
        chroma_token=token,
        min_score=0,
    )
    assert token not in repr(settings) and token not in str(settings)

    # The server enforces the token: a client without it is refused, one with it is not.
    assert status(server.url("/api/v2/heartbeat")) == 200
    assert status(server.url(COLLECTIONS)) == 403
    assert status(server.url(COLLECTIONS), token="not-" + token) == 403
    assert status(server.url(COLLECTIONS), token=token) == 200
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from chromadb.errors import ChromaAuthError

    with pytest.raises(ChromaAuthError):  # (chromadb 1.5 asks who it is when it connects)
        raw = chromadb.HttpClient(
            host="127.0.0.1", port=server.port, settings=ChromaSettings(anonymized_telemetry=False)
        )
        raw.list_collections()

    # With the token: ingest and search as with the embedded store.
    app = DocChat.open(settings, embedder=HashEmbedder())
    assert app.ingest("cats.md", CATS).status == "indexed"
    assert app.search("what do cats eat")[1][0].chunk.file == "cats.md"
    chunks = app.services.store.count_chunks("default")

    # Without a token, or with a wrong one: refused, said clearly, the token not shown.
    no_token = refusal(server, settings.with_(chroma_token="", data_dir=tmp_path / "none"))
    assert "it sent no token" in no_token
    wrong_token = secrets.token_urlsafe(24)
    wrong = refusal(server, settings.with_(chroma_token=wrong_token, data_dir=tmp_path / "w"))
    assert "a token it does not accept" in wrong
    assert wrong_token not in wrong  # not even the wrong token is echoed

    # Nothing was lost or added by the refused clients.
    assert [d.name for d in app.documents()] == ["cats.md"]
    assert app.services.store.count_chunks("default") == chunks
    assert app.search("what do cats eat")[1][0].chunk.file == "cats.md"

    assert caplog.records, "nothing was logged: the log check would prove nothing"
    logged = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert token not in logged and token not in caplog.text
    assert wrong_token not in logged and wrong_token not in caplog.text
    print(f"\nchroma auth: no token -> {no_token!r}; wrong token -> {wrong!r}")
