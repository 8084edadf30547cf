"""The API key is never shown, logged or written to disk by DocChat.

A whole session with a distinctive key, all loggers at DEBUG: settings and clients are
printed, documents ingested, questions answered, conversations saved, and the server
made to fail in the ways that echo a key back (a 400 quoting the Authorization
header, a 401 quoting a wrong key). Afterwards the key must appear in no message,
no repr, no log line, no output and no byte under the data dir, and the extraction
workers must not even have it in their environment.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag import DocChat, LLMError, Settings
from rag.components.conversations import Conversations, failed_answer
from rag.ingest import extract as extraction
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.pdfgen import make_pdf, text_ops

KEY = "sk-proj-DocChatHygieneTest0123456789abcdefXYZ"
WRONG = "sk-proj-DocChatWrongKey9876543210zyxwvuTSR"


def files_containing(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_key_never_leaks(
    tmp_path: Path,
    openai_server: FakeOpenAIServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpx2", "httpcore", "chromadb", "rag"):
        caplog.set_level(logging.DEBUG, logger=name)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    openai_server.api_key = KEY
    data = tmp_path / "data"
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": KEY,
            "OPENAI_BASE_URL": openai_server.base_url,
            "DOCCHAT_CHAT_MODEL": "fake-model",
            "DOCCHAT_DATA_DIR": str(data),
            "DOCCHAT_LLM_MAX_RETRIES": "0",
            "DOCCHAT_MIN_SCORE": "0",
        },
        secrets_path=None,
    )
    assert settings.openai_api_key == KEY
    app = DocChat.open(settings, embedder=HashEmbedder())
    assert app.llm is not None
    shown = [repr(settings), str(settings), repr(app.llm), app.llm.describe(), repr(app)]

    convs = Conversations(app.services.records)
    chat = convs.create("default").id
    app.ingest("notes.md", b"# Notes\n\nThe otters hold hands while they sleep.\n")
    pdf = make_pdf([text_ops(["Walruses sunbathe on the rocks."])])
    assert app.ingest("walrus.pdf", pdf).status == "indexed"  # through a worker process
    workers = extraction.worker_pids()
    answer = app.ask("What do otters do?")
    convs.append(chat, "What do otters do?", answer)

    errors: list[str] = []
    openai_server.fail_next("bad_request")  # the server quotes "Authorization: Bearer <key>"
    stream = app.stream(app.retrieve("What do otters do?"))
    with pytest.raises(LLMError) as info:
        stream.run()
    errors.append(str(info.value))
    assert stream.answer is not None
    convs.append(chat, "What do otters do?", stream.answer)
    assert "***" in errors[-1]  # the echoed key was there, and was scrubbed

    wrong = DocChat.open(
        settings.with_(openai_api_key=WRONG), embedder=HashEmbedder(), store=app.services.store
    )
    try:
        wrong.ask("What do otters do?")
    except LLMError as e:  # the server answers "Incorrect API key provided: <key>"
        errors.append(str(e))
        convs.append(chat, "What do otters do?", failed_answer("What do otters do?", str(e)))
    assert len(errors) == 2
    shown += [*errors, convs.get(chat).to_markdown()]

    out = capsys.readouterr()
    for secret in (KEY, WRONG):
        leaks = [s for s in shown if secret in s]
        assert not leaks, leaks
        assert secret not in caplog.text
        assert secret not in out.out + out.err
        assert files_containing(data, secret) == []
    assert caplog.records  # the loggers did run at DEBUG
    for pid in workers:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert KEY.encode() not in environ and b"OPENAI_API_KEY" not in environ
    print(f"\nkey hygiene: {len(caplog.records)} log records, {len(shown)} messages checked")
