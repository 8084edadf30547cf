"""Re-ranking over real HTTP, against the fake OpenAI server (tests/fixtures/fake_openai.py).

Its `/rerank` scores a passage by the share of the question's words it contains, stop
words included, which fusion leaves out: so for "What does the shop do with the
tuna?" it puts the council's question ("What does the council do with the roads...")
above the tuna passage that fusion ranks first. That is the re-ordering the tests look
for, in TEI's reply shape and in Cohere's, and from the LLM's grades (the fake chat
completions grade the same way). Every failure (500, a reply later than
`rerank_timeout`, a reply that is not a ranking or misses a candidate, a refused key, a
server that is down, an LLM that fails) keeps the fused order and leaves a note that
reaches the answer, its saved turn, the API's response and the chat page.
"""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

from rag import DocChat, Settings
from rag.api import shapes
from rag.components.conversation_rows import answer_message, message_answer
from rag.components.rerankers import RERANK_MARKER
from tests.fixtures.app import CATS, DOGS, start, upload
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import free_port

DOCS = {
    "tuna.md": b"# Tuna\n\nTuna cans and tuna steaks are sold here.\n",
    "council.md": b"# Council\n\nWhat does the council do with the roads in winter?\n",
    "birds.md": b"# Birds\n\nBirds sing at dawn in the trees.\n",
}
QUESTION = "What does the shop do with the tuna?"
FUSED = ["tuna.md", "council.md", "birds.md"]  # checked in every test: the fusion's order
RERANKED = ["council.md", "tuna.md", "birds.md"]  # by word overlap: 4/6, 1/6, 1/6 (a tie)
TIMEOUT = 0.5


def open_app(settings: Settings, server: FakeOpenAIServer, **changes: object) -> DocChat:
    s = settings.with_(
        rerank="remote",
        rerank_base_url=server.base_url,
        rerank_api_key="test-key",
        rerank_timeout=TIMEOUT,
    ).with_(**changes)
    app = DocChat.open(s, embedder=HashEmbedder())
    for name, data in DOCS.items():
        assert app.ingest(name, data).status == "indexed"
    fused = dataclasses.replace(app.services.answers, reranker=None)
    _, hits = fused.search(app.user, QUESTION, None, fused.options())
    assert [h.chunk.file for h in hits] == FUSED
    return app


def files(app: DocChat) -> list[str]:
    return [h.chunk.file for h in app.search(QUESTION)[1]]


def with_llm(server: FakeOpenAIServer) -> dict[str, object]:
    return {
        "rerank": "llm",
        "openai_base_url": server.base_url,
        "openai_api_key": "test-key",
        "chat_model": "fake-model",
        "llm_max_retries": 0,
    }


def skipped_note(app: DocChat) -> str:
    """The note of a skipped re-ranking, as it reaches the answer, its saved turn and
    the API's response; the order is the fused one."""
    retrieval = app.retrieve(QUESTION)
    assert [s.chunk.file for s in retrieval.sources] == FUSED
    assert len(retrieval.notes) == 1
    note = retrieval.notes[0]
    assert note.startswith("Re-ranking was skipped: ")
    assert note.endswith("; the fused order is used.")
    answer = app.stream(retrieval).run()
    assert answer.notes == (note,) and answer.text
    assert message_answer(QUESTION, answer_message(answer)).notes == (note,)
    assert shapes.completion(answer, "docchat/default", "c1")["docchat"]["notes"] == [note]
    return note


def test_remote_reranking_reorders_in_tei_shape(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = open_app(settings, openai_server)
    sent = len(openai_server.requests)
    retrieval = app.retrieve(QUESTION)
    assert [s.chunk.file for s in retrieval.sources] == RERANKED
    assert retrieval.notes == () and "rerank" in retrieval.timings
    body = openai_server.requests[sent]
    texts = [DOCS[f].decode().strip() for f in FUSED]
    assert body == {"query": QUESTION, "documents": texts, "texts": texts, "top_n": 3,
                    "return_documents": False}  # fmt: skip
    assert openai_server.headers[sent]["authorization"] == "Bearer test-key"
    answer = app.stream(retrieval).run()
    assert answer.notes == () and "notes" not in shapes.completion(answer, "m", "c")["docchat"]
    app.close()


def test_remote_reranking_reads_cohere_shape_and_sends_the_model(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    openai_server.rerank_shape = "cohere"
    app = open_app(settings, openai_server, rerank_model="rerank-v3.5", rerank_candidates=2)
    assert files(app) == RERANKED  # the two first re-ordered, birds after them
    body = openai_server.requests[-1]
    assert body["model"] == "rerank-v3.5" and len(body["documents"]) == 2 == body["top_n"]
    app.close()


def test_a_server_error_keeps_the_fused_order_with_a_note(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = open_app(settings, openai_server)
    openai_server.fail_next("server_error")
    assert skipped_note(app) == (
        "Re-ranking was skipped: the re-ranking service failed (HTTP 500); the fused order is used."
    )
    assert files(app) == RERANKED  # the next question is re-ranked again
    app.close()


def test_a_slow_server_is_not_waited_for(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = open_app(settings, openai_server)
    openai_server.delay = 3.0
    openai_server.fail_next("slow_first_token")
    started = time.monotonic()
    note = skipped_note(app)
    assert time.monotonic() - started < 2.0
    assert "the re-ranking service did not answer in 0.5 s" in note
    app.close()


@pytest.mark.parametrize(
    ("fault", "why"),
    [
        ("bad_json", "the re-ranking service sent a reply that is not a ranking"),
        ("wrong_count", "the re-ranking service scored 2 of the 3 candidates"),
    ],
)
def test_a_reply_that_is_not_a_whole_ranking_is_not_used(
    settings: Settings, openai_server: FakeOpenAIServer, fault: str, why: str
) -> None:
    app = open_app(settings, openai_server)
    openai_server.fail_next(fault)
    assert why in skipped_note(app)
    app.close()


def test_a_refused_key_is_not_shown(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    app = open_app(settings, openai_server, rerank_api_key="sk-secret-rerank-key")
    note = skipped_note(app)  # the fake echoes the key it refuses: it must not get through
    assert "rejected the API key (HTTP 401; check DOCCHAT_RERANK_API_KEY)" in note
    assert "sk-secret" not in note and "127.0.0.1" not in note
    app.close()


def test_a_dead_server_shows_no_url(settings: Settings, openai_server: FakeOpenAIServer) -> None:
    down = f"http://user:pw@127.0.0.1:{free_port()}/v1"
    app = open_app(settings, openai_server, rerank_base_url=down)
    note = skipped_note(app)
    assert "the re-ranking service cannot be reached (connection refused)" in note
    assert "pw" not in note and "127.0.0.1" not in note
    app.close()


def test_llm_reranking_reorders_by_the_llm_s_grades(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = open_app(settings, openai_server, **with_llm(openai_server))
    sent = len(openai_server.requests)
    assert files(app) == RERANKED
    (graded,) = openai_server.requests[sent:]  # one call for all the candidates
    assert RERANK_MARKER in graded["messages"][0]["content"] and graded["max_tokens"] > 0
    assert "[3] # Birds" in graded["messages"][1]["content"]
    app.close()


def test_an_llm_failure_or_delay_keeps_the_fused_order(
    settings: Settings, openai_server: FakeOpenAIServer
) -> None:
    app = open_app(settings, openai_server, **with_llm(openai_server))
    openai_server.fail_next("server_error")
    note = skipped_note(app)
    assert "the LLM could not grade the candidates" in note and "127.0.0.1" not in note
    openai_server.reply = "Passage 1 looks best to me."
    assert "the LLM's grades could not be read" in skipped_note(app)
    openai_server.reply = None
    openai_server.delay = 3.0
    openai_server.fail_next("slow_first_token")
    assert "the LLM did not answer in 0.5 s" in skipped_note(app)
    app.close()


def test_the_chat_shows_the_note_under_the_answer(
    fake_embedder: None, openai_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCCHAT_RERANK", "remote")
    monkeypatch.setenv("DOCCHAT_RERANK_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("DOCCHAT_RERANK_API_KEY", "test-key")
    at = upload(start(), ("cats.md", CATS), ("dogs.txt", DOGS))
    at.switch_page("pages/chat.py").run()
    openai_server.fail_next("server_error")
    at.chat_input[0].set_value("What do cats eat?").run()
    assert not at.exception, at.exception
    captions = re.sub(r"\\(.)", r"\1", " ".join(str(c.value) for c in at.caption))
    assert "Re-ranking was skipped: the re-ranking service failed (HTTP 500)" in captions
