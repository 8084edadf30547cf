"""Conversations kept per collection and user in the record store
(rag.components.conversations), on SQLite: the store alone.

How an answer's stream is saved (it needs an engine) is in
tests/integration/test_conversations.py; the same on PostgreSQL, and appends from
several processes, in tests/integration/test_conversation_records.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Connection, Text, cast, select

from rag import Answer, Chunk, Hit, Settings, Source
from rag.components.conversations import Conversation, Conversations, Turn, failed_answer
from rag.records.database import Database, database_url, open_database
from rag.records.schema import conversations, turns


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return open_database(Settings(data_dir=tmp_path))


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


def test_round_trip_history_and_markdown(db: Database, tmp_path: Path) -> None:
    store = Conversations(db)
    assert store.load("default") == Conversation("default")
    store.append("default", "What do cats eat?", answer("What do cats eat?", "Fish [1]."))
    failed = answer("And dogs?", "", error="The LLM server failed.")
    conv = store.append("default", "And dogs?", failed)
    restarted = Database(database_url(Settings(data_dir=tmp_path)))  # another process
    again = Conversations(restarted).load("default")
    assert again == conv and [t.question for t in conv.turns] == ["What do cats eat?", "And dogs?"]
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


def _raw(db: Database) -> list[tuple[str, str]]:
    """Every stored turn: (its conversation's collection, its answer as stored)."""
    query = (
        select(conversations.c.collection, cast(turns.c.answer, Text))
        .join(turns, turns.c.conversation_id == conversations.c.id)
        .order_by(turns.c.id)
    )
    return db.read(lambda c: [(r[0], r[1]) for r in c.execute(query)])


def test_a_name_is_data_and_an_answer_a_plain_message(db: Database, tmp_path: Path) -> None:
    Conversations(db).append("../../evil name", "q?", failed_answer("q?", "no index"))
    assert not (tmp_path / "conversations").exists()  # no file per conversation any more
    ((collection, raw),) = _raw(db)
    assert collection == "../../evil name"
    message = json.loads(raw)
    assert message["role"] == "assistant" and message["content"] == ""
    assert message["docchat"]["error"] == "no index" and message["docchat"]["sources"] == []


def test_clear_rename_delete_and_damaged_rows(db: Database) -> None:
    store = Conversations(db)
    store.append("a", "q?", answer("q?", "x"))
    store.rename("a", "b")
    assert store.load("a").turns == () and len(store.load("b").turns) == 1
    store.rename("b", "b")  # a rename to the same name changes nothing
    assert len(store.load("b").turns) == 1
    store.clear("b")
    assert store.load("b").turns == ()
    store.append("c", "q?", answer("q?", "x"))
    store.delete("c")
    assert store.load("c").turns == ()
    for n in range(3):
        store.append("d", f"q{n}?", answer(f"q{n}?", f"a{n}"))
    first, second = db.read(lambda c: list(c.execute(select(turns.c.id).order_by(turns.c.id))))[:2]

    def damage(c: Connection) -> None:  # one not JSON, one JSON of the wrong shape
        bad = {first.id: "{not json", second.id: '{"docchat": {"sources": [{"n": "x"}]}}'}
        for tid, text in bad.items():
            c.exec_driver_sql("UPDATE turns SET answer = ? WHERE id = ?", (text, tid))

    db.write(damage)
    # Damaged turns never lock a user out: they are left out, the others stay.
    assert [t.question for t in store.load("d").turns] == ["q2?"]
    assert [t.question for t in store.append("d", "q3?", answer("q3?", "y")).turns] == [
        "q2?", "q3?"
    ]  # fmt: skip


def test_each_user_has_their_own_and_renames_move_everyones(db: Database) -> None:
    local, ann, bob = (Conversations(db).for_user(u) for u in ("", "u-ann", "u-bob"))
    assert local.owner == "local"  # single-user mode's user by its id
    local.append("pets", "local?", answer("local?", "l"))
    ann.append("pets", "ann?", answer("ann?", "a"))
    bob.append("notes", "bob's notes?", answer("bob's notes?", "b"))
    assert [t.question for t in ann.load("pets").turns] == ["ann?"]
    assert not bob.load("pets").turns
    local.rename("pets", "notes")  # every user's follows; bob had no "pets": keeps his own
    assert [t.question for t in ann.load("notes").turns] == ["ann?"]
    assert [t.question for t in local.load("notes").turns] == ["local?"]
    assert [t.question for t in bob.load("notes").turns] == ["bob's notes?"]
    bob.append("pets", "bob's pets?", answer("bob's pets?", "b"))
    ann.rename("pets", "notes")  # bob's "notes" replaced by his "pets"
    assert [t.question for t in bob.load("notes").turns] == ["bob's pets?"]
    ann.delete("notes")
    assert not any(c.load("notes").turns for c in (local, ann, bob))
    assert _raw(db) == []


def test_save_replaces_the_conversation(db: Database) -> None:
    store = Conversations(db)
    store.append("a", "old?", answer("old?", "x"))
    conv = Conversation("a").add(Turn("new?", answer("new?", "y"), stopped=True, at=5.0))
    store.save(conv)
    assert store.load("a") == conv


def test_turn_is_frozen() -> None:
    t = Turn("q", failed_answer("q", "e"))
    assert t.stopped is False and t.answer.error == "e"
