"""A question's length, end to end: the longest allowed question goes through the whole
search and answer path quickly (fake embedder, a store in tmp_path), and a longer one
is refused at once with the same message by the engine, the command line (exit 1, one
line) and the Chat page (shown as an error, nothing saved).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pages import _ui as ui
from rag import DocChat, LimitExceededError
from rag.cli.commands import main
from tests.fixtures.app import CATS, start, upload

MB = 1_000_000

# Names, periods, figures, citations and punctuation: every step has work to do.
_PIECE = (
    "How did Apple's and NVIDIA's Q1 2023 revenue (82,959 vs 25.3) compare [1][2]? "
    'If so, why: MERS-CoV, SARS-CoV-2 and the U.S.A. "latest" 10-Q... '
)


def long_question(chars: int) -> str:
    return (_PIECE * (chars // len(_PIECE) + 1))[:chars]


@pytest.fixture
def library(app: DocChat) -> DocChat:
    """Forty small filings of two companies over five quarters."""
    for year in (2022, 2023):
        for q in (1, 2, 3, 4):
            for company in ("AAPL", "NVDA", "MSFT", "INTC", "AMZN"):
                text = (f"# {company} {year} Q{q}\n\n{company} reported total net sales of "
                        f"{q * 10_000 + year:,} million in the quarter. Revenue grew 25.3%. "
                        "SARS-CoV-2 and MERS-CoV affected the supply chain.\n")  # fmt: skip
                app.ingest(f"{year} Q{q} {company}.md", text.encode())
    return app


def test_the_longest_allowed_question_takes_the_whole_path_quickly(library: DocChat) -> None:
    limit = library.settings.max_question_chars
    question = long_question(limit)
    assert len(question) == limit
    t0 = time.process_time()
    query, hits = library.search(question)
    searched = time.process_time() - t0
    assert hits and query
    t0 = time.process_time()
    retrieval = library.retrieve(question)
    answer = library.stream(retrieval).run()  # extractive: it embeds the question again
    answered = time.process_time() - t0
    assert answer.sources
    print(f"CPU: search {searched * 1000:.0f} ms, retrieve and answer {answered * 1000:.0f} ms")
    assert searched < 2.0 and answered < 3.0


def test_a_longer_question_is_refused_at_once_by_the_engine(library: DocChat) -> None:
    calls = library.services.embedder.get().calls  # type: ignore[attr-defined]
    cid = library.chats.start("default").id
    for text in (long_question(library.settings.max_question_chars + 1), long_question(MB)):
        for ask in (library.search, library.retrieve, lambda q: library.chats.ask(cid, q),
                    lambda q: library.chats.ask_new("default", q)):  # fmt: skip
            t0 = time.process_time()
            with pytest.raises(LimitExceededError, match="DOCCHAT_MAX_QUESTION_CHARS"):
                ask(text)
            assert time.process_time() - t0 < 0.1
    assert library.services.embedder.get().calls == calls  # type: ignore[attr-defined]
    assert [c.id for c in library.chats.list()] == [cid] and library.chats.open(cid).turns == ()


def test_the_command_line_refuses_it_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCCHAT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DOCCHAT_MAX_QUESTION_CHARS", "100")
    for command in ("ask", "search"):
        assert main([command, "x" * 101]) == 1
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("error: The question is 101 characters")
        assert "DOCCHAT_MAX_QUESTION_CHARS" in err


def test_the_chat_page_shows_the_refusal_and_saves_nothing(
    fake_embedder: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCCHAT_MAX_QUESTION_CHARS", "200")
    at = upload(start(), ("cats.md", CATS))
    at.switch_page("pages/chat.py").run()
    at.chat_input[0].set_value("Do cats sleep? " * 20).run()
    assert not at.exception, at.exception
    error = " ".join(str(e.value) for e in at.error)
    assert "300 characters long" in error and "DOCCHAT\\_MAX\\_QUESTION\\_CHARS" in error
    assert ui.engine().chats.list() == []  # not even an empty conversation
    at.chat_input[0].set_value("Do cats sleep?").run()  # the chat goes on
    (info,) = ui.engine().chats.list()
    assert [len(t.answer.sources) > 0 for t in ui.engine().chats.open(info.id).turns] == [True]
