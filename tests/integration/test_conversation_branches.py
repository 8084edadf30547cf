"""Many conversations per user, with branches, on SQLite and on a real PostgreSQL
(rag.components.conversations): newest first, search over titles, questions and
answer texts (not sources), rename and delete, regenerate and edit as branches that
`select` brings back, every method confined to the owner, collections renamed and
deleted under the conversations, and the upgrade of a store made at revision 0001."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, func, select, text

from rag import Answer, Chunk, Hit, Settings, Source
from rag.components.conversations import ChatSettings, Conversations, failed_answer
from rag.core.errors import ConversationNotFoundError, RagError
from rag.records.database import Database, database_url, open_database
from rag.records.migrate import alembic_config, upgrade
from rag.records.schema import conversations, turns


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = "" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    return Settings(data_dir=tmp_path / "data", database_url=url)


@pytest.fixture
def db(settings: Settings) -> Database:
    return open_database(settings)


def answer(question: str, text: str) -> Answer:
    chunk = Chunk(doc_id="d" * 64, file="zoo.md", index=0, start=0, end=30,
                  text="Penguins huddle in the winter.")  # fmt: skip
    return Answer(text=text, mode="llm", question=question, query=question, cited=(1,),
                  sources=(Source(n=1, hit=Hit(chunk=chunk, score=0.5)),))  # fmt: skip


def _rows(db: Database, table: object) -> int:
    return db.read(lambda c: int(c.execute(select(func.count()).select_from(table)).scalar_one()))


def test_many_conversations_newest_first_and_searched(db: Database) -> None:
    ann = Conversations(db).for_user("u-ann")
    pets = ann.create("pets", title="Feeding")
    ann.append(pets.id, "What do cats eat?", answer("What do cats eat?", "Fish and MICE [1]."))
    notes = ann.create("notes")
    ann.append(notes.id, "Where do otters sleep?", answer("Where?", "In the water."))
    empty = ann.create("pets")
    assert [c.id for c in ann.list()] == [empty.id, notes.id, pets.id]
    assert ann.latest("pets").id == empty.id and ann.latest().id == empty.id  # type: ignore[union-attr]
    assert [c.turns for c in ann.list()] == [0, 1, 1]
    assert ann.list()[2].title == "Feeding" and ann.list()[1].title == ""
    search = {q: [c.id for c in ann.list(q)] for q in
              ("mice", "otters", "feeding fish", "PENGUINS", "water cats", "")}  # fmt: skip
    assert search["mice"] == [pets.id]  # a word of an answer, case folded
    assert search["otters"] == [notes.id]  # of a question
    assert search["feeding fish"] == [pets.id]  # the title and an answer
    assert search["PENGUINS"] == []  # only in a source's text: not found
    assert search["water cats"] == []  # every word, in one conversation
    assert len(search[""]) == 3
    assert ann.list("%") == [] and ann.list("_") == []  # LIKE's wildcards taken literally


def test_rename_and_delete(db: Database) -> None:
    ann = Conversations(db).for_user("u-ann")
    cid = ann.create("pets").id
    ann.append(cid, "q?", answer("q?", "a"))
    ann.rename(cid, "  Cats  ")
    assert ann.get(cid).title == "Cats" and ann.list("cats")[0].id == cid
    ann.delete(cid)
    with pytest.raises(ConversationNotFoundError):
        ann.get(cid)
    assert ann.list() == [] and _rows(db, turns) == 0


def test_regenerate_and_edit_branch_and_select_shows_either(db: Database) -> None:
    store = Conversations(db)
    cid = store.create("zoo").id
    q1 = store.append(cid, "Penguins?", answer("Penguins?", "They huddle."))
    q2 = store.append(cid, "Why?", answer("Why?", "For warmth."))
    q3 = store.append(cid, "Where?", answer("Where?", "Antarctica."))
    # Regenerate the last answer: the same question beside it.
    r3 = store.append(cid, q3.question, answer("Where?", "The south."), parent=q3.parent)
    conv = store.get(cid)
    assert [t.id for t in conv.turns] == [q1.id, q2.id, r3.id]
    assert conv.turns[2].siblings == (q3.id, r3.id) and conv.turns[2].index == 1
    assert [m["content"] for m in conv.history(before=r3.id)] == [
        "Penguins?", "They huddle.", "Why?", "For warmth."
    ]  # fmt: skip
    # Edit the second question: a new branch from the first turn; the old one is kept.
    e2 = store.append(cid, "How many?", answer("How many?", "Millions."), parent=q2.parent)
    conv = store.get(cid)
    assert [t.question for t in conv.turns] == ["Penguins?", "How many?"]
    assert conv.turns[1].siblings == (q2.id, e2.id) and conv.turns[1].alternatives == 2
    # The other branch by its turn: below it, the newest answer at each step.
    back = store.select(cid, q2.id)
    assert [t.id for t in back.turns] == [q1.id, q2.id, r3.id] and back == store.get(cid)
    assert [t.id for t in store.select(cid, q3.id).turns] == [q1.id, q2.id, q3.id]
    assert store.get(cid).turns[-1].answer.text == "Antarctica."
    # "leaf" follows the shown branch; a new first question is a root of its own.
    q4 = store.append(cid, "And seals?", answer("And seals?", "Also cold."))
    assert q4.parent == q3.id
    again = store.append(cid, "Other start?", failed_answer("Other start?", "x"), parent=None)
    assert again.siblings == (q1.id, again.id)
    assert [t.id for t in store.select(cid, q1.id).turns] == [q1.id, e2.id]  # newest child
    assert [t.id for t in store.select(cid, e2.id).turns] == [q1.id, e2.id]
    with pytest.raises(ConversationNotFoundError):
        store.select(cid, 10**9)
    with pytest.raises(ConversationNotFoundError):
        store.append(cid, "q", failed_answer("q", "x"), parent=10**9)
    assert store.list()[0].turns == 7  # every branch's turns


def test_only_the_owner_reaches_a_conversation(db: Database) -> None:
    convs = Conversations(db)
    ann, bob, admin = (convs.for_user(u) for u in ("u-ann", "u-bob", "u-admin"))
    mine = ann.create("team", ChatSettings(doc_ids=("x",)))
    turn = ann.append(mine.id, "Secret?", answer("Secret?", "Plans."))
    other = bob.create("team")
    for who in (bob, admin, convs):  # convs: single-user mode's user
        with pytest.raises(ConversationNotFoundError) as e:
            who.get(mine.id)
        assert "u-ann" not in str(e.value) and isinstance(e.value, RagError)
        for call in (
            lambda w=who: w.select(mine.id, turn.id),
            lambda w=who: w.append(mine.id, "q", failed_answer("q", "x")),
            lambda w=who: w.rename(mine.id, "mine now"),
            lambda w=who: w.update_settings(mine.id, ChatSettings()),
            lambda w=who: w.delete(mine.id),
        ):
            with pytest.raises(ConversationNotFoundError):
                call()
        assert all(c.id != mine.id for c in who.list()) and who.list("plans") == []
    # A turn of another conversation is no parent here.
    with pytest.raises(ConversationNotFoundError):
        bob.append(other.id, "q", failed_answer("q", "x"), parent=turn.id)
    assert [c.id for c in ann.list()] == [mine.id] and ann.latest("team").id == mine.id  # type: ignore[union-attr]
    got = ann.get(mine.id)
    assert [t.question for t in got.turns] == ["Secret?"] and got.title == ""
    assert got.settings == ChatSettings(doc_ids=("x",))
    with pytest.raises(ConversationNotFoundError):
        ann.get("")


def test_collections_renamed_and_dropped_under_the_conversations(db: Database) -> None:
    convs = Conversations(db)
    ann, bob = convs.for_user("u-ann"), convs.for_user("u-bob")
    a1 = ann.create("a").id
    ann.append(a1, "ann a?", answer("ann a?", "x"))
    b1, b2 = bob.create("a").id, bob.create("b").id
    bob.append(b1, "bob a?", answer("bob a?", "x"))
    bob.append(b2, "bob b?", answer("bob b?", "x"))
    convs.rename_collection("a", "b")  # every user's follows, with their turns
    assert ann.get(a1).collection == "b" and [t.question for t in ann.get(a1).turns] == ["ann a?"]
    assert {c.id for c in bob.list() if c.collection == "b"} == {b1, b2}  # both kept
    assert ann.latest("a") is None
    convs.rename_collection("b", "b")  # changes nothing
    convs.drop_collection("b")
    assert ann.list() == [] and bob.list() == []
    assert _rows(db, turns) == 0 and _rows(db, conversations) == 0


def test_a_store_at_0001_upgrades_with_its_turns_chained(settings: Settings) -> None:
    db = Database(database_url(settings))
    db.write(lambda c: command.upgrade(alembic_config(c), "0001"))
    message = '{"role": "assistant", "content": "A%d.", "docchat": {"mode": "extractive"}}'

    def release(c: Connection) -> None:  # two conversations, turns interleaved, one empty
        for cid, at in (("c-one", 1.0), ("c-two", 2.0), ("c-none", 3.0)):
            c.execute(text("INSERT INTO conversations (id, owner_id, collection, title, created,"
                           " updated) VALUES (:id, 'u-ann', 'pets', '', :at, :at)"),
                      {"id": cid, "at": at})  # fmt: skip
        for n, cid in enumerate(["c-one", "c-two", "c-one", "c-one", "c-two"]):
            c.execute(text("INSERT INTO turns (conversation_id, question, answer, stopped, at)"
                           " VALUES (:cid, :q, :a, false, :at)"),
                      {"cid": cid, "q": f"Q{n}?", "a": message % n, "at": float(n)})  # fmt: skip

    db.write(release)
    upgrade(db, settings.data_dir)  # to head, as a start of the new release does
    ann = Conversations(db).for_user("u-ann")
    one, two = ann.get("c-one"), ann.get("c-two")
    assert [t.question for t in one.turns] == ["Q0?", "Q2?", "Q3?"]
    assert [t.answer.text for t in two.turns] == ["A1.", "A4."]
    assert [t.parent for t in one.turns] == [None, one.turns[0].id, one.turns[1].id]
    leaf = select(conversations.c.id, conversations.c.leaf_id)
    leaves = db.read(lambda c: dict(c.execute(leaf).tuples().all()))
    assert leaves == {"c-one": one.turns[-1].id, "c-two": two.turns[-1].id, "c-none": None}
    assert ann.get("c-none").turns == () and ann.get("c-one").settings == ChatSettings()
    # It goes on from the old last turn.
    assert ann.append("c-one", "Q5?", failed_answer("Q5?", "x")).parent == one.turns[-1].id
