"""Chats (rag.services.chats): asking in a conversation saves the turn however the
answer ends; regenerate and edit make branches; conversations are their user's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rag import ChatSettings, DocChat, LLMError, RagError, Settings
from rag.components.generation import ChatStream, Completion
from rag.team.access import User
from tests.fixtures.fakes import HashEmbedder

CATS = b"# Cats\n\nCats eat fish and mice. Cats sleep sixteen hours a day.\n"
DOGS = b"# Dogs\n\nDogs eat meat and bones. Dogs sleep twelve hours a day.\n"


class ScriptedLLM:
    """Streams the given deltas (raising LLMError after them when `fail` is set);
    `complete` (a title) answers `title`."""

    model = "scripted"

    def __init__(self, deltas: list[str], *, fail: bool = False, title: str = "Cat food") -> None:
        self.deltas, self.fail, self.title = deltas, fail, title

    def stream(self, messages: object, **kwargs: object) -> ChatStream:
        def run(stream: ChatStream) -> Iterator[str]:
            yield from self.deltas
            if self.fail:
                raise LLMError("The LLM server failed half-way.")
            stream.completion = Completion("".join(self.deltas), 20, 5, self.model, 0.01)

        return ChatStream(run)

    def complete(self, messages: object, **kwargs: object) -> Completion:
        return Completion(self.title, 10, 3, self.model, 0.01)


class Stopped(Exception):
    """What Streamlit raises in the page when the user stops the run."""


def chat_app(tmp_path: Path, llm: ScriptedLLM | None = None) -> DocChat:
    settings = Settings(data_dir=tmp_path / "data", min_score=0.0)
    app = DocChat.open(settings, embedder=HashEmbedder(), llm=llm)  # type: ignore[arg-type]
    app.ingest("cats.md", CATS)
    return app


def test_a_complete_answer_is_saved_once_and_names_the_conversation(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish ", "[1]."]))
    cid = app.chats.start("default").id
    with app.chats.ask(cid, "  What do cats eat?  ") as stream:
        assert "".join(stream) == "Fish [1]."
    conv = app.chats.open(cid)
    (turn,) = conv.turns
    assert turn.question == "What do cats eat?" and turn.answer.text == "Fish [1]."
    assert not turn.stopped and turn.answer.sources and stream.result().text == turn.answer.text
    assert conv.title == "Cat food"  # the LLM's title
    assert turn.answer.llm_calls == 1


def test_a_stopped_answer_keeps_what_arrived(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish ", "and ", "mice."]))
    cid = app.chats.start("default").id
    with pytest.raises(Stopped), app.chats.ask(cid, "What do cats eat?") as stream:
        for delta in stream:
            assert delta == "Fish "
            raise Stopped
    conv = app.chats.open(cid)
    (turn,) = conv.turns
    assert turn.stopped and turn.answer.text == "Fish " and not turn.answer.error
    assert stream.stopped and stream.result().sources
    assert conv.title == "What do cats eat?"  # no LLM title for an answer cut short


def test_a_failed_answer_keeps_its_sources_and_error(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish"], fail=True))
    cid = app.chats.start("default").id
    with pytest.raises(LLMError), app.chats.ask(cid, "What do cats eat?") as stream:
        list(stream)
    (turn,) = app.chats.open(cid).turns
    assert not turn.stopped and turn.answer.text == "Fish"
    assert "half-way" in turn.answer.error and turn.answer.sources


def test_a_stream_never_read_is_saved_as_stopped(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish"]))
    cid = app.chats.start("default").id
    with app.chats.ask(cid, "What do cats eat?") as stream:
        pass
    (turn,) = app.chats.open(cid).turns
    assert turn.stopped and turn.answer.text == "" and stream.result() is stream.result()


def test_a_failed_search_is_saved_with_its_reason(tmp_path: Path) -> None:
    app = chat_app(tmp_path)
    cid = app.chats.start("default").id
    # The collection was indexed with another model: the search refuses, with why.
    other = DocChat.open(app.settings, embedder=HashEmbedder(name="another-model"))
    with other.chats.ask(cid, "What do cats eat?") as stream:
        assert list(stream) == []
    (turn,) = app.chats.open(cid).turns
    assert turn.answer.error and not turn.answer.sources and turn.answer == stream.result()


def test_too_long_a_question_is_refused_and_not_saved(tmp_path: Path) -> None:
    app = chat_app(tmp_path)
    cid = app.chats.start("default").id
    with pytest.raises(RagError, match="over the limit"):
        app.chats.ask(cid, "x" * (app.settings.max_question_chars + 1))
    assert app.chats.open(cid).turns == ()


def test_regenerate_keeps_both_answers_and_edit_branches(tmp_path: Path) -> None:
    app = chat_app(tmp_path)  # extractive: works without an LLM too
    app.ingest("dogs.md", DOGS)
    chats = app.chats
    cid = chats.start("default").id
    chats.ask(cid, "What do cats eat?").run()
    chats.ask(cid, "How long do cats sleep?").run()
    first, second = chats.open(cid).turns
    chats.regenerate(cid, second.id).run()
    conv = chats.open(cid)
    assert [t.question for t in conv.turns] == ["What do cats eat?", "How long do cats sleep?"]
    again = conv.turns[1]
    assert again.id != second.id and again.siblings == (second.id, again.id)
    assert again.index == 1 and again.alternatives == 2
    assert chats.select(cid, second.id).turns[1].id == second.id  # answer 1 of 2
    # An edit of the first question: a branch of its own; the old turns stay reachable.
    chats.edit(cid, first.id, "What do dogs eat?").run()
    conv = chats.open(cid)
    assert [t.question for t in conv.turns] == ["What do dogs eat?"]
    assert conv.turns[0].siblings[0] == first.id
    back = chats.select(cid, first.id)
    assert [t.question for t in back.turns] == ["What do cats eat?", "How long do cats sleep?"]


def test_a_conversation_remembers_its_filter_and_settings(tmp_path: Path) -> None:
    app = chat_app(tmp_path)
    dogs = app.ingest("dogs.md", DOGS).doc_id
    chats = app.chats
    cid = chats.start("default", ChatSettings(doc_ids=(dogs,))).id
    answer = chats.ask(cid, "What do they eat?").run()
    assert {s.chunk.file for s in answer.sources} == {"dogs.md"}
    chats.update_settings(cid, ChatSettings(doc_ids=(), top_k=1))
    conv = chats.open(cid)
    assert conv.settings == ChatSettings(top_k=1)
    assert len(chats.ask(cid, "What do they eat?").run().sources) == 1


def test_conversations_are_their_users_own(tmp_path: Path) -> None:
    app = chat_app(tmp_path)
    ann = app.as_user(User("u-ann", "ann", admin=True))
    bob = app.as_user(User("u-bob", "bob", admin=True))
    cid = ann.chats.start("default").id
    ann.chats.ask(cid, "How long do cats sleep?").run()
    assert [c.id for c in ann.chats.list()] == [cid]
    assert bob.chats.list() == [] and app.chats.list() == []  # an administrator neither
    for other in (bob, app):
        with pytest.raises(RagError):
            other.chats.open(cid)
        with pytest.raises(RagError):
            other.chats.delete(cid)
    app.rename_collection("default", "pets")
    (info,) = ann.chats.list()
    assert info.collection == "pets" and len(ann.chats.open(cid).turns) == 1
    app.delete_collection("pets")
    assert ann.chats.list() == []


def test_an_answer_stream_has_no_result_before_its_end(tmp_path: Path) -> None:
    app = chat_app(tmp_path, ScriptedLLM(["Fish"]))
    stream = app.stream(app.retrieve("What do cats eat?"))  # outside any conversation
    with pytest.raises(RuntimeError):
        stream.result()
    assert stream.run().text == "Fish"


def test_a_whole_document_question_reads_the_whole_document(tmp_path: Path) -> None:
    app = chat_app(tmp_path)  # extractive: the labelled summary
    dogs = app.ingest("dogs.md", DOGS).doc_id
    chats = app.chats
    cid = chats.start("default", ChatSettings(doc_ids=(dogs,))).id
    summary = chats.ask(cid, "Summarize this document.").run()
    assert summary.kind == "summary" and {s.chunk.file for s in summary.sources} == {"dogs.md"}
    again = chats.summarize(cid).run()  # the Summarize button
    assert again.kind == "summary" and again.sources
    assert [t.answer.kind for t in chats.open(cid).turns] == ["summary", "summary"]
    # Unfocused, a plain question still searches top-k.
    assert chats.ask(chats.start("default").id, "What do cats eat?").run().kind == "answer"
