"""Conversations kept per collection on disk (rag.components.conversations)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import DocChat, LLMError, Settings
from tests.fixtures.fakes import HashEmbedder

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
    settings = Settings(data_dir=tmp_path / "data", min_score=0.0)
    app = DocChat.open(settings, embedder=HashEmbedder(), llm=llm)
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
