"""Conversations kept per collection on disk (rag.components.conversations)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import Answer, Chunk, DocChat, Hit, LLMError, Settings, Source
from rag.components.conversations import Conversation, Conversations, Turn, failed_answer
from tests.fixtures.fakes import HashEmbedder


def answer(question: str, text: str, *, error: str = "") -> Answer:
    chunk = Chunk(
        doc_id="a" * 64, file="../../etc/cats.pdf", index=3, text="Cats eat fish.", start=10,
        end=24, page=2, section="Food", tokens=4,
    )  # fmt: skip
    return Answer(
        text=text, mode="llm", question=question, query="cats eat", cited=(1,),
        sources=(Source(n=1, hit=Hit(chunk=chunk, score=0.8123)),), prompt_tokens=321,
        left_out=(4,), error=error,
    )  # fmt: skip


def test_round_trip_history_and_markdown(tmp_path: Path) -> None:
    store = Conversations(tmp_path)
    assert store.load("default") == Conversation("default")
    store.append("default", "What do cats eat?", answer("What do cats eat?", "Fish [1]."))
    failed = answer("And dogs?", "", error="The LLM server failed.")
    conv = store.append("default", "And dogs?", failed)
    again = Conversations(tmp_path).load("default")  # a reload
    assert again == conv
    first = again.turns[0].answer
    assert first.sources[0].chunk.page == 2 and first.sources[0].chunk.index == 3
    assert first.prompt_tokens == 321 and first.left_out == (4,)
    # History: plain OpenAI-style messages; the failed turn taught nothing and is left out.
    assert again.history() == [
        {"role": "user", "content": "What do cats eat?"},
        {"role": "assistant", "content": "Fish [1]."},
    ]
    md = again.to_markdown()
    assert md.startswith("# DocChat conversation: default")
    assert "[1] ../../etc/cats.pdf, page 2, section Food, score 0.81" in md
    assert "> Cats eat fish." in md and "The LLM server failed." in md


def test_files_are_named_by_hash_and_plain_json(tmp_path: Path) -> None:
    store = Conversations(tmp_path)
    store.append("../../evil name", "q?", failed_answer("q?", "no index"))
    files = list((tmp_path / "conversations").iterdir())
    assert len(files) == 1 and files[0].suffix == ".json"
    assert files[0].parent == tmp_path / "conversations"  # a name is never a path
    raw = json.loads(files[0].read_text())
    assert raw["collection"] == "../../evil name"
    assert [m["role"] for m in raw["messages"]] == ["user", "assistant"]


def test_clear_rename_delete_and_damaged_file(tmp_path: Path) -> None:
    store = Conversations(tmp_path)
    store.append("a", "q?", answer("q?", "x"))
    store.rename("a", "b")
    assert store.load("a").turns == () and len(store.load("b").turns) == 1
    store.clear("b")
    assert store.load("b").turns == ()
    store.append("c", "q?", answer("q?", "x"))
    store.delete("c")
    assert store.load("c").turns == ()
    store.append("d", "q?", answer("q?", "x"))
    next((tmp_path / "conversations").glob("*.json")).write_text("{not json")
    assert store.load("d") == Conversation("d")  # a damaged file never locks a user out


def test_turn_is_frozen() -> None:
    t = Turn("q", failed_answer("q", "e"))
    assert t.stopped is False and t.answer.error == "e"


# -- the chat protocol: a stream's turn is saved when it ends, however it ends ------------


class ScriptedLLM:
    """Streams the given deltas; raises LLMError after them when `fail` is set."""

    model = "scripted"

    def __init__(self, deltas: list[str], *, fail: bool = False) -> None:
        self.deltas, self.fail = deltas, fail

    def stream(self, messages: object, **kwargs: object) -> Iterator[str]:
        yield from self.deltas
        if self.fail:
            raise LLMError("The LLM server failed half-way.")


class Stopped(Exception):
    """What Streamlit raises in the page when the user stops the run."""


def chat_app(tmp_path: Path, llm: ScriptedLLM) -> DocChat:
    app = DocChat(Settings(data_dir=tmp_path / "data", min_score=0.0), embedder=HashEmbedder())
    app.llm = llm  # type: ignore[assignment]
    app.ingest("cats.md", b"# Cats\n\nCats eat fish and mice.\n")
    return app


def test_a_complete_answer_is_saved_once(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish ", "[1]."]))
    with app.chat(app.retrieve("  What do cats eat?  ")) as stream:
        assert "".join(stream) == "Fish [1]."
    (turn,) = app.conversations.load("default").turns
    assert turn.question == "What do cats eat?" and turn.answer.text == "Fish [1]."
    assert not turn.stopped and turn.answer.sources and stream.result().text == turn.answer.text


def test_a_stopped_answer_keeps_what_arrived(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish ", "and ", "mice."]))
    with pytest.raises(Stopped), app.chat(app.retrieve("What do cats eat?")) as stream:
        for delta in stream:
            assert delta == "Fish "
            raise Stopped
    (turn,) = app.conversations.load("default").turns
    assert turn.stopped and turn.answer.text == "Fish " and not turn.answer.error
    assert stream.stopped and stream.result().sources


def test_a_failed_answer_keeps_its_sources_and_error(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish"], fail=True))
    with pytest.raises(LLMError), app.chat(app.retrieve("What do cats eat?")) as stream:
        list(stream)
    (turn,) = app.conversations.load("default").turns
    assert not turn.stopped and turn.answer.text == "Fish"
    assert "half-way" in turn.answer.error and turn.answer.sources


def test_a_stream_never_read_is_saved_as_stopped(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish"]))
    with app.chat(app.retrieve("What do cats eat?"), collection="default") as stream:
        pass
    (turn,) = app.conversations.load("default").turns
    assert turn.stopped and turn.answer.text == "" and stream.result() is stream.answer


def test_a_failed_retrieval_is_saved_with_its_reason(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM([]))
    answer = app.chat_failed("Hello?", "The store is down.", collection="notes")
    assert app.conversations.load("notes").turns[0].answer == answer
    assert answer.error == "The store is down." and not answer.sources


def test_result_before_the_end_is_an_error(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish"]))
    stream = app.stream(app.retrieve("What do cats eat?"))
    with pytest.raises(RuntimeError):
        stream.result()
    assert stream.run().text == "Fish"
