"""Chat history: one conversation per collection and user, kept in the record store,
exported as Markdown.

A `Conversation` is a list of `Turn`s (a question and its `Answer`, sources
included). `history()` gives it back as plain OpenAI-style messages for the next
question. `Conversations` keeps them in the record store's `conversations` and
`turns` tables, by user id: a turn is a row inserted once and never rewritten, so
two processes (or browser tabs) appending at once both keep their turn. A turn's
answer is stored as the OpenAI-style assistant message it reads as, DocChat's
details under a `docchat` key (the shape earlier releases' JSON files held, so
their import copies it as it is):

    {"role": "assistant", "content": "...",
     "docchat": {"mode": "llm", "query": "...", "sources": [...], "cited": [1], ...}}

A turn whose stored answer cannot be read is left out of the conversation: a
damaged row never locks a user out of chatting.

Left out: several conversations per collection (the tables allow them; `load` takes
the newest), and titles.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, Text, cast, delete, insert, select, update

from rag.core.models import Answer, Chunk, Hit, Source, from_dict
from rag.core.text import Message
from rag.records.database import Database
from rag.records.schema import LOCAL_ID, conversations, turns

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Turn:
    """One question and what came back (possibly partial: stopped, or failed)."""

    question: str
    answer: Answer
    stopped: bool = False  # the user stopped the answer before its end
    at: float = 0.0  # unix time


@dataclass(frozen=True)
class Conversation:
    collection: str
    turns: tuple[Turn, ...] = ()

    def add(self, turn: Turn) -> Conversation:
        return replace(self, turns=(*self.turns, turn))

    def history(self) -> list[Message]:
        """Plain OpenAI-style messages, oldest first; turns without answer text are left
        out (a failed answer taught the model nothing)."""
        messages: list[Message] = []
        for t in self.turns:
            if t.answer.text.strip():
                messages.append({"role": "user", "content": t.question})
                messages.append({"role": "assistant", "content": t.answer.text})
        return messages

    def to_markdown(self) -> str:
        """The conversation for people: each question, answer, and its sources in full."""
        lines = [f"# DocChat conversation: {self.collection}", ""]
        for i, t in enumerate(self.turns, start=1):
            a = t.answer
            lines += [f"## {i}. {_one_line(t.question)}", ""]
            lines += [a.text.strip() or "(no answer text)", ""]
            if t.stopped:
                lines += ["*Stopped before the end.*", ""]
            if a.error:
                lines += [f"*The answer failed: {a.error}*", ""]
            if a.query:
                lines += [f"Searched for: `{_one_line(a.query)}`", ""]
            if a.sources:
                lines += ["### Sources", ""]
                for s in a.sources:
                    lines += [f"[{s.n}] {source_label(s)}", ""]
                    lines += ["> " + line for line in s.chunk.text.strip().splitlines()]
                    lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def source_label(s: Source) -> str:
    """'report.pdf, page 3, section Intro, score 0.71' (parts that exist only)."""
    c = s.chunk
    parts = [c.file, c.location, c.section and f"section {c.section}", f"score {s.hit.score:.2f}"]
    return ", ".join(p for p in parts if p)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def failed_answer(question: str, error: str) -> Answer:
    """An `Answer` for a question that failed before any source was found."""
    return Answer(
        text="", mode="no-answer", question=question, query="", sources=(), cited=(), error=error
    )


# -- a turn's answer as stored --------------------------------------------------------------


def _source_from_dict(d: dict[str, Any]) -> Source:
    # (`index` and `tokens` are missing from records written before they were saved)
    chunk = from_dict(Chunk, {"index": 0, **d})
    return Source(n=int(d["n"]), hit=Hit(chunk=chunk, score=float(d.get("score", 0.0))))


def _answer_message(a: Answer) -> dict[str, Any]:
    """The answer as the assistant message stored in `turns.answer`."""
    return {
        "role": "assistant",
        "content": a.text,
        "docchat": {
            "mode": a.mode,
            "query": a.query,
            "sources": [s.to_dict() for s in a.sources],
            "cited": list(a.cited),
            "prompt_tokens": a.prompt_tokens,
            "left_out": list(a.left_out),
            "error": a.error,
        },
    }


def _message_answer(question: str, m: dict[str, Any]) -> Answer:
    """The `Answer` a stored assistant message holds (ValueError, KeyError, TypeError
    or AttributeError when it is damaged)."""
    meta = m.get("docchat") or {}
    return Answer(
        text=str(m.get("content", "")),
        mode=meta.get("mode", "llm"),
        question=question,
        query=str(meta.get("query", "")),
        sources=tuple(_source_from_dict(s) for s in meta.get("sources", [])),
        cited=tuple(int(n) for n in meta.get("cited", [])),
        prompt_tokens=int(meta.get("prompt_tokens", 0)),
        left_out=tuple(int(n) for n in meta.get("left_out", [])),
        error=str(meta.get("error", "")),
    )


def _turn(question: str, raw: str, stopped: bool, at: float) -> Turn | None:
    """A stored turn, or None when its answer cannot be read (logged, skipped)."""
    try:
        message = json.loads(raw)
        if not isinstance(message, dict):
            raise TypeError("not an object")
        answer = _message_answer(question, message)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("a stored conversation turn cannot be read (%s): left out", type(e).__name__)
        return None
    return Turn(question, answer, stopped=bool(stopped), at=float(at))


def _turn_row(conversation_id: str, t: Turn) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "question": t.question,
        "answer": _answer_message(t.answer),
        "stopped": t.stopped,
        "at": t.at,
    }


# -- the tables ---------------------------------------------------------------------------------


def _current(conn: Connection, owner: str, collection: str) -> str | None:
    """The id of `owner`'s conversation on the collection (the newest), or None."""
    row = conn.execute(
        select(conversations.c.id)
        .where(conversations.c.owner_id == owner, conversations.c.collection == collection)
        .order_by(conversations.c.updated.desc())
        .limit(1)
    ).first()
    return None if row is None else str(row.id)


def _create(conn: Connection, owner: str, collection: str, now: float) -> str:
    cid = "c" + secrets.token_hex(12)
    conn.execute(
        insert(conversations).values(
            id=cid, owner_id=owner, collection=collection, title="", created=now, updated=now
        )
    )
    return cid


def _load(conn: Connection, owner: str, collection: str) -> Conversation:
    cid = _current(conn, owner, collection)
    if cid is None:
        return Conversation(collection)
    rows = conn.execute(
        # The answer as text: a row the JSON decoder chokes on is skipped, not fatal.
        select(turns.c.question, cast(turns.c.answer, Text).label("raw"), turns.c.stopped,
               turns.c.at)
        .where(turns.c.conversation_id == cid)
        .order_by(turns.c.id)
    ).all()  # fmt: skip
    loaded = (_turn(r.question, r.raw, r.stopped, r.at) for r in rows)
    return Conversation(collection, tuple(t for t in loaded if t is not None))


def _drop(conn: Connection, *where: Any) -> None:
    """Delete the conversations `where` selects, and their turns."""
    ids = select(conversations.c.id).where(*where)
    conn.execute(delete(turns).where(turns.c.conversation_id.in_(ids)))
    conn.execute(delete(conversations).where(*where))


class Conversations:
    """One conversation per collection and user, in the record store; `owner` is a
    user id (single-user mode's is `LOCAL_ID`). `for_user` gives another user's view
    on the same store."""

    def __init__(self, db: Database, owner: str = LOCAL_ID) -> None:
        self.db = db
        self.owner = owner or LOCAL_ID  # "" meant single-user mode's user before ids

    def for_user(self, owner: str) -> Conversations:
        """`owner`'s conversations."""
        return Conversations(self.db, owner)

    def load(self, collection: str) -> Conversation:
        """The saved conversation, or an empty one."""
        return self.db.read(lambda c: _load(c, self.owner, collection))

    def save(self, conv: Conversation) -> None:
        """Replace the user's conversation on `conv.collection` with `conv`."""
        now = time.time()

        def write(conn: Connection) -> None:
            mine = (conversations.c.owner_id == self.owner,
                    conversations.c.collection == conv.collection)  # fmt: skip
            _drop(conn, *mine)
            cid = _create(conn, self.owner, conv.collection, now)
            if conv.turns:
                conn.execute(insert(turns), [_turn_row(cid, t) for t in conv.turns])

        self.db.write(write)

    def append(
        self, collection: str, question: str, answer: Answer, *, stopped: bool = False
    ) -> Conversation:
        """Add a turn to the saved conversation and return the conversation as it is
        then (with the turns other processes added meanwhile)."""
        turn = Turn(question, answer, stopped, time.time())

        def write(conn: Connection) -> None:
            cid = _current(conn, self.owner, collection)
            if cid is None:
                cid = _create(conn, self.owner, collection, turn.at)
            else:
                conn.execute(
                    update(conversations).where(conversations.c.id == cid).values(updated=turn.at)
                )
            conn.execute(insert(turns).values(_turn_row(cid, turn)))

        # The write is kept short (the conversation is read after it): appends to one
        # conversation from several processes then rarely have to run again.
        self.db.write(write)
        return self.load(collection)

    def clear(self, collection: str) -> None:
        self.db.write(
            lambda c: _drop(
                c, conversations.c.owner_id == self.owner, conversations.c.collection == collection
            )
        )

    def delete(self, collection: str) -> None:
        """Forget a deleted collection's conversations (every user's)."""
        self.db.write(lambda c: _drop(c, conversations.c.collection == collection))

    def rename(self, old: str, new: str) -> None:
        """Follow a collection rename, for every user, in one transaction (a user's
        existing conversation under `new` is replaced by the one under `old`)."""
        if old == new:
            return

        def write(conn: Connection) -> None:
            movers = select(conversations.c.owner_id).where(conversations.c.collection == old)
            _drop(conn, conversations.c.collection == new, conversations.c.owner_id.in_(movers))
            conn.execute(
                update(conversations)
                .where(conversations.c.collection == old)
                .values(collection=new)
            )

        self.db.write(write)
