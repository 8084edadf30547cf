"""Chat history: each user's conversations in the record store, with branches, exported
as Markdown.

A user has any number of conversations, each on one collection, with a title and the
`ChatSettings` it was asked with (its document filter and answer settings, restored
when it is opened). Its turns (a question and its `Answer`, sources included) form a
tree: regenerating an answer or editing a question adds a turn beside the one it
replaces (the same parent), so every earlier answer stays reachable. The branch shown
is stored as the conversation's last turn (`leaf_id`); `select` moves it. How rows
look and the tree is walked: `conversation_rows.py`.

`Conversations` is one user's view (`owner`, a user id; single-user mode's is
`LOCAL_ID`): no method takes another owner's id, and an id that is not the owner's
reads as missing (`ConversationNotFoundError`), whoever asks: an administrator's
view cannot open another user's conversations either. `drop_collection` and
`rename_collection` alone act on every user's, for the collections service.

A turn is a row inserted once and never rewritten, and each change is one
transaction, so two processes (or browser tabs) appending to one conversation both
keep their turn, the later after the earlier. A turn whose stored answer cannot be
read is left out of the branch shown (the turns after it stay); a damaged row never
locks a user out of chatting.

Left out: moving a conversation to another collection, sharing one, and full-text
search indexes (a search reads the user's own turns: LIKE, bounded by the query's
length and number of words).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Connection, Row, Text, cast, insert, select, update

from rag.components.conversation_rows import (
    Tree,
    answer_message,
    branch,
    children,
    clean_title,
    drop,
    info_query,
    markdown,
    matches,
    missing,
    newest_below,
    own_row,
    read_answer,
    search_words,
    settings_fields,
    turn_in,
    turn_tree,
)
from rag.components.conversation_rows import (
    source_label as source_label,  # (re-exported: rag.source_label)
)
from rag.core.errors import RagError
from rag.core.models import Answer
from rag.core.text import Message
from rag.records.database import Database
from rag.records.schema import LOCAL_ID, conversations, turns

LIST_LIMIT = 1000  # the most rows `list` returns, whatever the caller asks


@dataclass(frozen=True)
class ChatSettings:
    """What a conversation remembers, restored when it is opened."""

    doc_ids: tuple[str, ...] = ()  # the document filter ("a document in focus": one id)
    top_k: int | None = None  # None: the Settings default
    min_score: float | None = None
    model: str = ""  # "": the LLM's default model
    temperature: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"doc_ids": list(self.doc_ids), "top_k": self.top_k, "min_score": self.min_score,
                "model": self.model, "temperature": self.temperature}  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | None) -> ChatSettings:
        """Stored settings (JSON text): unknown keys ignored, bad values the defaults;
        never raises."""
        return cls(**settings_fields(raw))


@dataclass(frozen=True)
class ConversationInfo:
    """A row of the conversation list."""

    id: str
    collection: str
    title: str
    created: float
    updated: float  # unix time of the last turn (or of the creation)
    settings: ChatSettings = field(default_factory=ChatSettings)
    turns: int = 0  # every turn, on every branch


@dataclass(frozen=True)
class Turn:
    """One question and what came back (possibly partial: stopped, or failed)."""

    question: str
    answer: Answer
    stopped: bool = False  # the user stopped the answer before its end
    at: float = 0.0  # unix time
    id: int = 0  # the row id
    parent: int | None = None  # the turn before it on its branch (None: a first question)
    siblings: tuple[int, ...] = ()  # every turn with the same parent, oldest first (incl. this)

    @property
    def index(self) -> int:
        """Its place among its siblings, 0-based ("answer index+1 of alternatives")."""
        return self.siblings.index(self.id) if self.id in self.siblings else 0

    @property
    def alternatives(self) -> int:
        return max(1, len(self.siblings))


@dataclass(frozen=True)
class Conversation:
    collection: str
    turns: tuple[Turn, ...] = ()  # the shown branch, first question first
    id: str = ""
    title: str = ""
    settings: ChatSettings = field(default_factory=ChatSettings)

    def history(self, before: int | None = None) -> list[Message]:
        """Plain OpenAI-style messages, oldest first, of the shown branch's turns before
        turn `before` (all when None: what a regenerated or edited turn follows). Turns
        without answer text are left out (a failed answer taught the model nothing).
        ValueError when `before` is not on the shown branch."""
        shown = self.turns
        if before is not None:
            ids = [t.id for t in shown]
            if before not in ids:
                raise ValueError(f"turn {before} is not on the shown branch")
            shown = shown[: ids.index(before)]
        messages: list[Message] = []
        for t in shown:
            if t.answer.text.strip():
                messages.append({"role": "user", "content": t.question})
                messages.append({"role": "assistant", "content": t.answer.text})
        return messages

    def to_markdown(self) -> str:
        """The shown branch for people: each question, answer, and its sources in full;
        a summary says it read the whole document."""
        return markdown(self.title, self.collection, self.turns)


def failed_answer(question: str, error: str) -> Answer:
    """An `Answer` for a question that failed before any source was found."""
    return Answer(
        text="", mode="no-answer", question=question, query="", sources=(), cited=(), error=error
    )


# -- reading rows ---------------------------------------------------------------------------------


def _info(r: Row[Any]) -> ConversationInfo:
    return ConversationInfo(id=r.id, collection=r.collection, title=r.title,
                            created=float(r.created), updated=float(r.updated),
                            settings=ChatSettings.from_json(r.settings),
                            turns=int(r.turns or 0))  # fmt: skip


def _conversation(conn: Connection, row: Row[Any], tree: Tree, leaf: int | None) -> Conversation:
    """The conversation `row` with the branch through `leaf` (see `branch`)."""
    ids = branch(tree, leaf)
    kids = children(tree)
    found = {}
    if ids:
        # The answers as text: a row the JSON decoder chokes on is left out, not fatal.
        rows = conn.execute(
            select(turns.c.id, turns.c.question, cast(turns.c.answer, Text).label("raw"),
                   turns.c.stopped, turns.c.at)
            .where(turns.c.conversation_id == row.id, turns.c.id.in_(ids))
        )  # fmt: skip
        found = {int(r.id): r for r in rows}
    shown: list[Turn] = []
    for tid in ids:
        r = found.get(tid)
        answer = None if r is None else read_answer(r.question, r.raw)
        if r is None or answer is None:
            continue
        parent = tree[tid]
        shown.append(Turn(r.question, answer, stopped=bool(r.stopped), at=float(r.at), id=tid,
                          parent=parent, siblings=tuple(kids.get(parent, [tid]))))  # fmt: skip
    return Conversation(row.collection, tuple(shown), id=row.id, title=row.title,
                        settings=ChatSettings.from_json(row.settings))  # fmt: skip


class Conversations:
    """One user's conversations in the record store (see the module docstring);
    `for_user` gives another user's view for that user's own session."""

    def __init__(self, db: Database, owner: str = LOCAL_ID) -> None:
        self.db = db
        self.owner = owner or LOCAL_ID  # "" meant single-user mode's user before ids

    def for_user(self, owner: str) -> Conversations:
        """`owner`'s conversations."""
        return Conversations(self.db, owner)

    # -- reading ------------------------------------------------------------------------------

    def list(self, query: str = "", *, limit: int = 200) -> list[ConversationInfo]:
        """The owner's conversations, last changed first (at most `limit`, and never more
        than LIST_LIMIT). With `query`: those where every word of it occurs, case
        folded, in the title, a question or an answer's text (of any branch)."""
        limit = min(limit, LIST_LIMIT)
        if limit <= 0:
            return []

        def read(conn: Connection) -> list[ConversationInfo]:
            q = info_query(self.owner)
            for word in search_words(query):
                q = q.where(matches(word, conn.dialect.name))
            q = q.order_by(conversations.c.updated.desc(), conversations.c.created.desc(),
                           conversations.c.id).limit(limit)  # fmt: skip
            return [_info(r) for r in conn.execute(q)]

        return self.db.read(read)

    def latest(self, collection: str | None = None) -> ConversationInfo | None:
        """The owner's last changed conversation (on `collection` when given), or None."""

        def read(conn: Connection) -> ConversationInfo | None:
            q = info_query(self.owner)
            if collection is not None:
                q = q.where(conversations.c.collection == collection)
            q = q.order_by(conversations.c.updated.desc(), conversations.c.created.desc())
            row = conn.execute(q.limit(1)).first()
            return None if row is None else _info(row)

        return self.db.read(read)

    def get(self, cid: str) -> Conversation:
        """The conversation with its shown branch (ConversationNotFoundError when it is
        not the owner's)."""

        def read(conn: Connection) -> Conversation:
            row = own_row(conn, self.owner, cid)
            return _conversation(conn, row, turn_tree(conn, cid), row.leaf_id)

        return self.db.read(read)

    def load(self, collection: str) -> Conversation:
        """The owner's last changed conversation on `collection`, or an empty one (the
        one-conversation-per-collection reading of earlier releases)."""
        info = self.latest(collection)
        return Conversation(collection) if info is None else self.get(info.id)

    # -- writing ------------------------------------------------------------------------------

    def create(
        self, collection: str, settings: ChatSettings | None = None, title: str = ""
    ) -> ConversationInfo:
        """A new, empty conversation on `collection`."""
        now, cid, title = time.time(), "c" + secrets.token_hex(12), clean_title(title)
        settings = settings or ChatSettings()
        values = {"id": cid, "owner_id": self.owner, "collection": collection, "title": title,
                  "created": now, "updated": now, "settings": settings.to_dict()}  # fmt: skip
        self.db.write(lambda c: c.execute(insert(conversations).values(values)))
        return ConversationInfo(cid, collection, title, now, now, settings, 0)

    def append(
        self,
        cid: str,
        question: str,
        answer: Answer,
        *,
        parent: int | Literal["leaf"] | None = "leaf",
        stopped: bool = False,
        title: str = "",
    ) -> Turn:
        """Add a turn after `parent` ("leaf": the shown branch's last turn; None: a new
        first question; a turn id: beside that turn's children, as a regenerated answer
        or an edited question is). The new turn becomes the shown branch's last; the
        conversation counts as changed now; `title` becomes its title only when it has
        none yet."""
        now = time.time()

        def write(conn: Connection) -> Turn:
            row = own_row(conn, self.owner, cid)
            tree = turn_tree(conn, cid)
            after: int | None = None
            if parent == "leaf":
                shown = branch(tree, row.leaf_id)
                after = shown[-1] if shown else None
            elif parent is not None:
                after = turn_in(tree, parent)
            values = {"conversation_id": cid, "parent_id": after, "question": question,
                      "answer": answer_message(answer), "stopped": stopped, "at": now}  # fmt: skip
            tid = conn.execute(insert(turns).values(values).returning(turns.c.id)).scalar_one()
            changes: dict[str, Any] = {"leaf_id": tid, "updated": now}
            if not row.title and clean_title(title):
                changes["title"] = clean_title(title)
            conn.execute(update(conversations).where(conversations.c.id == cid).values(changes))
            kin = tuple(t for t, p in tree.items() if p == after)
            return Turn(question, answer, stopped, now, id=tid, parent=after,
                        siblings=(*sorted(kin), tid))  # fmt: skip

        # One short transaction: appends to one conversation from several processes then
        # rarely have to run again, and each finds the others' turns before it.
        return self.db.write(write)

    def select(self, cid: str, turn_id: int) -> Conversation:
        """Show the branch through `turn_id` (below it, at each step, the newest child),
        saved as the conversation's shown branch; returns the conversation so."""

        def write(conn: Connection) -> Conversation:
            row = own_row(conn, self.owner, cid)
            tree = turn_tree(conn, cid)
            leaf = newest_below(tree, turn_in(tree, turn_id))[-1]
            conn.execute(update(conversations).where(conversations.c.id == cid)
                         .values(leaf_id=leaf))  # fmt: skip
            return _conversation(conn, row, tree, leaf)

        return self.db.write(write)

    def _set(self, cid: str, **values: Any) -> None:
        """Change the owner's conversation `cid` (not when it was last changed: the list
        keeps its order)."""
        if not isinstance(cid, str):
            raise missing(cid)
        mine = (conversations.c.id == cid, conversations.c.owner_id == self.owner)
        done = self.db.write(
            lambda c: c.execute(update(conversations).where(*mine).values(values)).rowcount
        )
        if not done:
            raise missing(cid)

    def rename(self, cid: str, title: str) -> None:
        """Give the conversation a title (one line, at most 200 characters); an empty one
        is refused (RagError), as a list of untitled rows helps no one."""
        title = clean_title(title)
        if not title:
            raise RagError("A conversation's title cannot be empty.")
        self._set(cid, title=title)

    def update_settings(self, cid: str, settings: ChatSettings) -> None:
        self._set(cid, settings=settings.to_dict())

    def delete(self, cid: str) -> None:
        """Delete the conversation and its turns."""

        def write(conn: Connection) -> None:
            own_row(conn, self.owner, cid)
            drop(conn, conversations.c.id == cid)

        self.db.write(write)

    # -- for the collections service: every user's --------------------------------------------

    def drop_collection(self, collection: str) -> None:
        """Forget a deleted collection's conversations (every user's) and their turns."""
        self.db.write(lambda c: drop(c, conversations.c.collection == collection))

    def rename_collection(self, old: str, new: str) -> None:
        """Follow a collection rename, for every user: the conversations keep their turns
        (and sit beside any the users have on `new` already)."""
        if old == new:
            return
        self.db.write(
            lambda c: c.execute(
                update(conversations)
                .where(conversations.c.collection == old)
                .values(collection=new)
            )
        )
