"""Conversations kept per collection on disk (rag.components.conversations): the store alone.

How an answer's stream is saved (it needs an engine) is in
tests/integration/test_conversations.py."""

from __future__ import annotations

import json
from pathlib import Path

from rag import Answer, Chunk, Hit, Source
from rag.components.conversations import Conversation, Conversations, Turn, failed_answer


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
