"""Conversations in the record store (rag.components.conversations), on SQLite: the
stored shape of a turn, damaged rows, settings and titles, history and Markdown, and
the walk over a conversation's tree of turns (rag.components.conversation_rows).

Many conversations, branches, search and privacy on SQLite and PostgreSQL are in
tests/integration/test_conversation_branches.py; appends from several processes in
tests/integration/test_conversation_records.py; how a chat's answer is saved (it needs
an engine) in tests/integration/test_conversations.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Connection, Text, cast, select, update

from rag import Answer, Chunk, Hit, Settings, Source
from rag.components.conversation_rows import branch, newest_below, search_words
from rag.components.conversations import (
    ChatSettings,
    Conversation,
    Conversations,
    Turn,
    failed_answer,
)
from rag.core.errors import RagError
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
    cid = store.create("default").id
    assert store.get(cid) == Conversation("default", id=cid)
    first = store.append(cid, "What do cats eat?", answer("What do cats eat?", "Fish [1]."))
    failed = answer("And dogs?", "", error="The LLM server failed.")
    second = store.append(cid, "And dogs?", failed, stopped=True)
    assert (first.parent, second.parent, second.siblings) == (None, first.id, (second.id,))
    restarted = Database(database_url(Settings(data_dir=tmp_path)))  # another process
    again = Conversations(restarted).get(cid)
    assert again.turns == (first, second) and again == store.load("default")
    a = again.turns[0].answer
    assert a.sources[0].chunk.page == 2 and a.sources[0].chunk.index == 3
    assert a.prompt_tokens == 321 and a.left_out == (4,) and a.kind == "answer"
    # History: plain OpenAI-style messages; the failed turn taught nothing and is left out.
    asked = [{"role": "user", "content": "What do cats eat?"},
             {"role": "assistant", "content": "Fish [1]."}]  # fmt: skip
    assert again.history() == asked and again.history(before=second.id) == asked
    assert again.history(before=first.id) == []
    with pytest.raises(ValueError):
        again.history(before=12345)
    md = again.to_markdown()
    assert md.startswith("# DocChat conversation: default\n")
    assert "[1] ../../etc/cats.pdf, page 2, section Food, score 0.81" in md
    assert "> Cats eat fish." in md and "The LLM server failed." in md
    assert "Stopped before the end." in md and "whole document" not in md


def test_new_answer_fields_and_a_summary_in_markdown(db: Database) -> None:
    store = Conversations(db)
    cid = store.create("docs", title="  Risks\nof the   filing ").id
    summary = Answer(text="It covers A [1].", mode="llm", question="Summarize it.", query="",
                     sources=(), cited=(1,), prompt_tokens=900, kind="summary", llm_calls=4,
                     completion_tokens=250)  # fmt: skip
    store.append(cid, "Summarize it.", summary)
    (turn,) = store.get(cid).turns
    assert turn.answer == summary
    md = store.get(cid).to_markdown()
    assert md.startswith("# Risks of the filing\n\nDocChat conversation: docs\n")
    assert "*Summary of the whole document.*" in md


def _raw(db: Database) -> list[tuple[str, str]]:
    """Every stored turn: (its conversation's collection, its answer as stored)."""
    query = (
        select(conversations.c.collection, cast(turns.c.answer, Text))
        .join(turns, turns.c.conversation_id == conversations.c.id)
        .order_by(turns.c.id)
    )
    return db.read(lambda c: [(r[0], r[1]) for r in c.execute(query)])


def test_a_name_is_data_and_an_answer_a_plain_message(db: Database, tmp_path: Path) -> None:
    store = Conversations(db)
    store.append(store.create("../../evil name").id, "q?", failed_answer("q?", "no index"))
    assert not (tmp_path / "conversations").exists()  # no file per conversation any more
    ((collection, raw),) = _raw(db)
    assert collection == "../../evil name"
    message = json.loads(raw)
    assert message["role"] == "assistant" and message["content"] == ""
    details = message["docchat"]
    assert details["error"] == "no index" and details["sources"] == []
    assert (details["kind"], details["llm_calls"], details["completion_tokens"]) == ("answer", 0, 0)


def test_damaged_rows_hide_only_themselves(db: Database) -> None:
    store = Conversations(db)
    cid = store.create("d").id
    made = [store.append(cid, f"q{n}?", answer(f"q{n}?", f"a{n}")) for n in range(4)]

    def damage(c: Connection) -> None:  # one not JSON, one JSON of the wrong shape
        bad = {made[0].id: "{not json", made[1].id: '{"docchat": {"sources": [{"n": "x"}]}}',
               made[2].id: json.dumps({"role": "assistant", "content": "old row a2"})}  # fmt: skip
        for tid, text in bad.items():
            c.exec_driver_sql("UPDATE turns SET answer = ? WHERE id = ?", (text, tid))
        c.exec_driver_sql("UPDATE conversations SET settings = '{oops', leaf_id = 999999")

    db.write(damage)
    # Damaged turns never lock a user out: they are left out, the turns after them stay
    # (the branch is walked by ids); an old row without the new details reads defaults;
    # damaged settings read as the defaults; a leaf that is no turn falls back to the
    # newest turn's branch.
    conv = store.get(cid)
    assert [t.question for t in conv.turns] == ["q2?", "q3?"]
    old = conv.turns[0].answer
    assert (old.text, old.mode, old.kind, old.llm_calls) == ("old row a2", "llm", "answer", 0)
    assert old.sources == ()
    assert conv.settings == ChatSettings() and conv.turns[1].parent == made[2].id
    more = store.append(cid, "q4?", answer("q4?", "y"))
    assert more.parent == made[3].id
    assert [t.question for t in store.get(cid).turns] == ["q2?", "q3?", "q4?"]
    assert [c.title for c in store.list("a2")] == [""]  # a search skips what it cannot read
    assert store.list("fish") == []  # a word of a source's text only


def test_settings_round_trip_and_never_fail(db: Database) -> None:
    store = Conversations(db)
    focused = ChatSettings(doc_ids=("d" * 64,), top_k=8, min_score=0.35, model="m",
                           temperature=0.7)  # fmt: skip
    info = store.create("pets", focused)
    assert info.settings == focused and store.get(info.id).settings == focused
    assert store.list()[0].settings == focused
    store.update_settings(info.id, ChatSettings(top_k=3))
    assert store.get(info.id).settings == ChatSettings(top_k=3)
    assert ChatSettings.from_json(json.dumps(focused.to_dict())) == focused
    # Unknown keys ignored, bad values their defaults, never an exception.
    bad = {"doc_ids": ["ok", 3], "top_k": True, "min_score": float("nan"), "model": 5,
           "temperature": 9.0, "new_field": 1}  # fmt: skip
    assert ChatSettings.from_json(json.dumps(bad)) == ChatSettings()
    assert ChatSettings.from_json(json.dumps({"top_k": 4, "x": []})) == ChatSettings(top_k=4)
    for raw in ("", "null", "[1]", "{not json", '"text"', None):
        assert ChatSettings.from_json(raw) == ChatSettings()


def test_titles(db: Database) -> None:
    store = Conversations(db)
    cid = store.create("pets").id
    store.append(cid, "q?", failed_answer("q?", "x"), title="  What   cats\neat ")
    store.append(cid, "q2?", failed_answer("q2?", "x"), title="Another title")
    assert store.get(cid).title == "What cats eat"  # set once, when it had none
    store.rename(cid, "  Cats,\tfood  " + "x" * 300)
    title = store.get(cid).title
    assert title.startswith("Cats, food x") and len(title) == 200
    with pytest.raises(RagError):
        store.rename(cid, " \n ")
    assert store.get(cid).title == title


def test_search_words_are_bounded_and_literal(db: Database) -> None:
    assert search_words("a " * 500) == ["a"] * 10
    assert len("".join(search_words("x" * 1000))) == 200
    store = Conversations(db)
    cid = store.create("pets").id
    store.append(cid, "Why 100%?", answer("Why 100%?", "Because_of CATS."))
    store.append(store.create("pets").id, "Other?", answer("Other?", "Dogs, 1000 of them."))
    assert [c.id for c in store.list("100%")] == [cid]  # % is no wildcard
    assert [c.id for c in store.list("because_OF cats")] == [cid]  # _ neither; case folded
    assert store.list("100% dogs") == []  # every word must occur
    assert len(store.list()) == 2 and len(store.list(limit=1)) == 1 and store.list(limit=0) == []


def test_the_walk_over_the_tree() -> None:
    # 1 -> 2 -> 3, 2 -> 4 (a regenerated answer), 1 -> 5 -> 6 (an edit), 7 (a new first)
    tree = {1: None, 2: 1, 3: 2, 4: 2, 5: 1, 6: 5, 7: None}
    assert branch(tree, 3) == [1, 2, 3] and branch(tree, 4) == [1, 2, 4]
    assert branch(tree, 2) == [1, 2, 4]  # below the leaf: the newest child at each step
    assert branch(tree, None) == [7] and branch(tree, 99) == [7]  # the newest turn's
    assert newest_below(tree, 1) == [1, 5, 6] and branch({}, None) == []
    # Damaged parents: one pointing nowhere starts a branch; a cycle ends the walk.
    assert branch({1: None, 2: 42, 3: 2}, 3) == [2, 3]
    assert branch({1: 2, 2: 1}, 2) == [1, 2]


def test_turn_is_frozen_and_counts_its_alternatives() -> None:
    t = Turn("q", failed_answer("q", "e"))
    assert t.stopped is False and t.answer.error == "e" and (t.index, t.alternatives) == (0, 1)
    t = Turn("q", failed_answer("q", "e"), id=7, parent=2, siblings=(3, 7, 9))
    assert (t.index, t.alternatives) == (1, 3)
    with pytest.raises(AttributeError):
        t.id = 8  # type: ignore[misc]


def test_a_store_row_update_is_visible(db: Database) -> None:
    """`updated` orders the list: an append moves a conversation first, a rename, a
    select or new settings do not."""
    store = Conversations(db)
    old, new = store.create("a").id, store.create("a").id
    set_time = update(conversations).where(conversations.c.id == old).values(updated=1.0)
    db.write(lambda c: c.execute(set_time))
    assert [c.id for c in store.list()] == [new, old]
    turn = store.append(old, "q?", failed_answer("q?", "x"))
    assert [c.id for c in store.list()] == [old, new] and store.latest("a").id == old  # type: ignore[union-attr]
    db.write(lambda c: c.execute(set_time))
    store.rename(old, "t")
    store.update_settings(old, ChatSettings(top_k=2))
    store.select(old, turn.id)
    assert [c.id for c in store.list()] == [new, old]
    assert store.latest("b") is None and store.list()[1].turns == 1
