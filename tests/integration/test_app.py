"""The Streamlit pages, driven by `streamlit.testing.v1.AppTest` (no browser).

Each test gets its own data dir through the environment, as `streamlit run` would.
Most tests build the engine with the fast fake embedder (`tests/fixtures/fakes.py`);
`test_empty_pages_and_a_chat_turn_with_the_defaults` runs the real model, as shipped.
The LLM is the fake OpenAI server (tests/fixtures/fake_openai.py), never a patched client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Text, cast, select
from streamlit.testing.v1 import AppTest

import pages._ui as ui
from rag.records.schema import turns
from tests.fixtures.app import CATS, DOGS, start, upload
from tests.fixtures.fake_openai import FakeOpenAIServer
from tests.fixtures.paths import SAMPLES, need_shared


@pytest.fixture
def llm(env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "test-key")
        yield server


def ask(at: AppTest, question: str) -> AppTest:
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return at


def texts(elements: object) -> list[str]:
    return [str(e.value) for e in elements]  # type: ignore[attr-defined]


def plain(elements: object) -> str:
    """The texts of elements without the Markdown escapes DocChat adds."""
    return re.sub(r"\\(.)", r"\1", " ".join(texts(elements)))


def results(at: AppTest) -> dict[str, str]:
    frame = at.dataframe[0].value
    return dict(zip(frame["file"], frame["result"], strict=True))


# -- empty states, the real model, extractive mode --------------------------------------------


def test_empty_pages_and_a_chat_turn_with_the_defaults(env: Path) -> None:
    at = start()
    assert "No documents in" in texts(at.info)[0]
    assert at.chat_input[0].disabled
    assert "extractive mode: no LLM configured" in " ".join(texts(at.sidebar.caption))
    assert "loads on first use" in " ".join(texts(at.sidebar.caption))
    at.switch_page("pages/upload.py").run()
    assert "Nothing uploaded yet" in texts(at.info)[0]
    at.switch_page("pages/library.py").run()
    assert any("No collections yet" in t for t in texts(at.info))
    assert not at.exception
    # Nothing so far needed the embedding model: the first page never waits for it.
    assert not ui.engine().embedder_loaded

    upload(at, ("cats.md", CATS))
    assert results(at) == {"cats.md": "indexed"}
    at.switch_page("pages/chat.py").run()
    ask(at, "What do cats eat?")
    answer = texts(at.chat_message[1].markdown)[0]
    assert answer.startswith("Extractive answer (no LLM configured)")
    assert "Cats eat fish and mice" in answer and "[" in answer
    labels = [e.label for e in at.expander]
    assert any(label.startswith("\\[1\\] cats\\.md") for label in labels), labels
    assert "Searched for: cats eat" in " ".join(texts(at.caption))
    assert "**Cats eat fish and mice\\.**" in " ".join(texts(at.markdown))  # highlighted


# -- upload --------------------------------------------------------------------------------------


def test_upload_reports_each_file_and_never_indexes_twice(fake_embedder: None) -> None:
    need_shared()
    at = upload(
        start(),
        ("cats.md", CATS),
        ("dogs.txt", DOGS),
        ("tool.bin", b"\x00\x01\x02binary"),
        ("secret.pdf", (SAMPLES / "libreoffice-writer-password.pdf").read_bytes()),
    )
    assert results(at) == {
        "cats.md": "indexed",
        "dogs.txt": "indexed",
        "tool.bin": "rejected",
        "secret.pdf": "rejected",
    }
    errors = plain(at.error)
    assert "tool.bin" in errors and "password" in errors.lower()
    assert "2 indexed, 2 rejected in default" in texts(at.warning)[0]
    engine = ui.engine()
    calls = engine.embedder.calls  # type: ignore[attr-defined]

    at.run()  # a rerun: same results, nothing embedded again
    assert results(at)["cats.md"] == "indexed"
    assert engine.embedder.calls == calls  # type: ignore[attr-defined]

    at.text_input[0].set_value("openpassword").run()  # only the locked PDF is retried
    assert results(at) == {
        "cats.md": "indexed",
        "dogs.txt": "indexed",
        "tool.bin": "rejected",
        "secret.pdf": "indexed",
    }
    assert sorted(d.name for d in engine.documents("default")) == [
        "cats.md",
        "dogs.txt",
        "secret.pdf",
    ]
    assert at.session_state[ui.ACTIVE] == "default"


def test_upload_into_a_new_collection_with_its_own_chunk_settings(fake_embedder: None) -> None:
    at = start("pages/upload.py")
    target = next(s for s in at.selectbox if s.label == "Into collection")
    target.set_value(target.options[-1]).run()  # "New collection…"
    at.text_input(key="up_new_name").set_value("notes").run()
    at.number_input(key="up_tokens-notes").set_value(64).run()
    at.file_uploader[0].set_value(("dogs.txt", DOGS, "text/plain")).run()
    # An impossible setting is refused with a clear message, and nothing is created.
    assert "Chunk overlap 40 must be between 0 and half the chunk size" in plain(at.error)
    assert not ui.engine().collections()
    at.number_input(key="up_overlap-notes").set_value(10).run()
    assert not at.exception, at.exception
    info = ui.engine().collection("notes")
    assert (info.chunk_tokens, info.documents) == (64, 1)
    assert at.session_state[ui.ACTIVE] == "notes"  # the sidebar follows


def test_upload_runs_on_the_background_workers(
    fake_embedder: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a worker thread (as `make run` has): the page follows the job to its end."""
    monkeypatch.setenv("DOCCHAT_WORKERS", "1")
    at = start()
    workers = ui.shared_engine().start_workers()  # the ones the page started
    assert workers is not None and workers.consumer.workers == 1
    try:
        upload(at, ("cats.md", CATS), ("dogs.txt", DOGS))
        assert results(at) == {"cats.md": "indexed", "dogs.txt": "indexed"}
        [job] = ui.engine().jobs()
        assert job.status == "done" and job.summary() == "2 indexed of 2 file(s)"
        at.switch_page("pages/library.py").run()
        uploads = at.dataframe[1].value
        assert list(uploads["status"]) == ["done"] and list(uploads["collection"]) == ["default"]
    finally:
        workers.stop()


# -- library -------------------------------------------------------------------------------------


def test_library_lists_browses_and_manages(fake_embedder: None, env: Path) -> None:
    at = upload(start(), ("cats.md", CATS), ("dogs.txt", DOGS))
    at.switch_page("pages/library.py").run()
    assert not at.exception, at.exception
    collections = at.dataframe[0].value
    assert list(collections["collection"]) == ["default"]
    assert list(collections["documents"]) == [2]
    docs = at.dataframe[2].value  # [1]: the Uploads table
    assert list(docs["name"]) == ["cats.md", "dogs.txt"]
    assert {b.label for b in at.get("download_button")} >= {"Download original"}

    # Chunk browser: the first document's chunks, then a search within them.
    assert any("Cats eat fish" in t for t in texts(at.text))
    at.text_input(key=next(k for k in _keys(at) if k.startswith("chunk-q-"))).set_value(
        "purr"
    ).run()
    shown = texts(at.text)
    assert shown and all("purr" in t for t in shown)

    # Delete a document, confirmed.
    at.button(key=next(k for k in _keys(at) if k.startswith("del-"))).click().run()
    _button(at, "Yes, delete it").click().run()
    assert not at.exception, at.exception
    assert [d.name for d in ui.engine().documents("default")] == ["dogs.txt"]
    assert "Deleted cats.md." in plain(at.success)

    # Re-index with new chunk settings.
    at.number_input(key="rt-default").set_value(50)
    at.number_input(key="ro-default").set_value(10).run()
    _button(at, "Re-index").click().run()
    assert ui.engine().collection("default").chunk_tokens == 50

    # Rename (the conversation follows), then delete the collection, confirmed.
    chats = ui.engine().chats
    cid, stream = chats.ask_new("default", "hello?")
    stream.run()
    at.text_input(key="rename-default").set_value("pets").run()
    _button(at, "Rename").click().run()
    assert [c.name for c in ui.engine().collections()] == ["pets"]
    assert at.session_state[ui.ACTIVE] == "pets"
    assert chats.open(cid).collection == "pets" and len(chats.open(cid).turns) == 1
    _button(at, "Delete collection…").click().run()
    assert ui.engine().collections()  # not before the confirmation
    _button(at, "Yes, delete").click().run()
    assert not at.exception, at.exception
    assert ui.engine().collections() == []
    assert chats.list() == []


def test_library_creates_a_collection(fake_embedder: None) -> None:
    at = start("pages/library.py")
    at.text_input[0].set_value("papers")  # the form's name field
    _button(at, "Create").click().run()
    assert not at.exception, at.exception
    assert [c.name for c in ui.engine().collections()] == ["papers"]
    assert at.session_state[ui.ACTIVE] == "papers"


# -- chat with an LLM ------------------------------------------------------------------------------


def test_chat_streams_an_answer_with_sources_and_follow_ups(
    fake_embedder: None, llm: FakeOpenAIServer, env: Path
) -> None:
    at = start()
    # (after a page switch AppTest runs the page file alone: check the sidebar first)
    assert "gpt-4o-mini via" in plain(at.sidebar.caption)
    upload(at, ("cats.md", CATS), ("dogs.txt", DOGS))
    at.switch_page("pages/chat.py").run()
    ask(at, "What do cats eat?")
    answer = texts(at.chat_message[1].markdown)[0]
    # The citation links to source 1 under the answer (an in-page anchor).
    assert answer.startswith("According to the documents \\[[1](#source-0-1)\\]")
    assert "prompt: about" in " ".join(texts(at.caption))
    assert [e.label.split(" ")[0] for e in at.expander][:2] == ["\\[1\\]", "\\[2\\]"]

    llm.reply = "They also drink water [1]."
    ask(at, "And what do they drink?")
    # The follow-up was rewritten with the history, and the answer prompt carries it.
    last = llm.requests[-1]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "user"]
    assert last[1]["content"] == "What do cats eat?"
    assert len(at.chat_message) == 4

    # A reload (a new session) shows the saved conversation; it downloads as Markdown.
    again = start()
    assert len(again.chat_message) == 4
    md = next(b for b in again.get("download_button") if b.label == "Download as Markdown")
    assert md is not None
    (info,) = ui.engine().chats.list()
    saved = ui.engine().chats.export(info.id)
    assert "## 2. And what do they drink?" in saved and "[1] cats.md" in saved
    _button(again, "Yes, delete it").click().run()
    assert len(again.chat_message) == 0
    assert ui.engine().chats.list() == []


def test_llm_error_shows_in_the_chat_with_sources_and_history_kept(
    fake_embedder: None, llm: FakeOpenAIServer
) -> None:
    at = upload(start(), ("cats.md", CATS))
    at.switch_page("pages/chat.py").run()
    llm.fail_next("server_error")
    ask(at, "What do cats eat?")
    error = plain(at.error)
    assert "The answer failed" in error and "HTTP 500" in error
    assert any(e.label.startswith("\\[1\\] cats\\.md") for e in at.expander)  # sources kept

    llm.fail_next("stream_error")  # a failure half-way keeps what arrived
    ask(at, "Where do cats sleep?")
    assert "The answer failed" in plain(at.error)

    ask(at, "Do cats purr?")  # the chat goes on; earlier turns stay
    assert len(at.chat_message) == 6
    (info,) = ui.engine().chats.list()
    turns = ui.engine().chats.open(info.id).turns
    assert [bool(t.answer.error) for t in turns] == [True, True, False]
    assert turns[1].answer.text  # the partial text of the cut answer was kept
    assert all(t.answer.sources for t in turns)


def test_model_output_cannot_load_images_or_links(
    fake_embedder: None, llm: FakeOpenAIServer
) -> None:
    at = upload(start(), ("cats.md", CATS))
    at.switch_page("pages/chat.py").run()
    llm.reply = (
        "Cats eat fish [1]. ![pixel](http://evil.example/p.png?q=secret) "
        "[click](javascript:alert(1)) <img src=http://evil.example/x.png> www.evil.example"
    )
    ask(at, "What do cats eat?")
    shown = texts(at.chat_message[1].markdown)[0]
    assert "[image: pixel]" in shown
    # The one link left is the citation's, to its source on this page.
    assert shown.count("](") == shown.count("](#source-") == 1
    assert "<img" not in shown and "http://" not in shown
    assert "www." not in shown


# -- helpers -----------------------------------------------------------------------------------


def _keys(at: AppTest) -> list[str]:
    return [w.key for w in at.main.get("text_input") + at.main.get("button") if w.key]  # type: ignore[operator]


def _button(at: AppTest, label: str):  # type: ignore[no-untyped-def]
    return next(b for b in at.button if b.label == label)


def test_saved_conversation_is_plain_messages(fake_embedder: None, env: Path) -> None:
    at = upload(start(), ("cats.md", CATS))
    at.switch_page("pages/chat.py").run()
    ask(at, "What do cats eat?")
    query = select(turns.c.question, cast(turns.c.answer, Text))  # as stored
    ((question, raw),) = ui.engine().services.records.read(lambda c: c.execute(query).all())
    message = json.loads(raw)  # the answer: an OpenAI-style assistant message
    assert question == "What do cats eat?"
    assert message["role"] == "assistant" and isinstance(message["content"], str)
    assert message["docchat"]["sources"][0]["file"] == "cats.md"
