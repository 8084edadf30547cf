"""Chats: a user's conversations, and the answers that go into them.

`ChatService.for_user(user)` is that user's `Chats` (`DocChat.chats`): list and search
their conversations, start one on a collection (optionally focused on documents),
open, rename, delete one, change what it remembers (document filter, answer
settings), and ask in it. Asking returns a `TextStream`; when it ends (complete,
failed or stopped) its turn is saved to the conversation. Three ways to ask:

- `ask`: the next question, after the shown branch's last turn;
- `regenerate`: the same question again, as another answer beside a turn's
  ("answer 2 of 2"); stopped and failed answers can be regenerated too;
- `edit`: another question in a turn's place; the turns after it stay on the other
  branch (`select` shows either).

A question about a whole document ("summarize it", "list every risk it names"),
or `summarize` on a focused document, reads that document through
`SummaryService` instead of the top-k search. A conversation's first answer names
it (`rag.answering.titles`). Conversations are the user's own: no one else, an
administrator included, can list or open them; one on a collection the user may no
longer read is neither listed nor opened.

Left out: sharing a conversation, and moving one to another collection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rag.answering.stream import SettledStream, TextStream
from rag.answering.summary import Progress
from rag.answering.titles import conversation_title, plain_title
from rag.components.conversations import (
    ChatSettings,
    Conversation,
    ConversationInfo,
    Conversations,
    Turn,
    failed_answer,
)
from rag.components.generation import LLM
from rag.core.errors import LimitExceededError, RagError
from rag.core.models import Answer
from rag.core.settings import Settings
from rag.services.answers import AnswerService, check_length
from rag.services.collections import CollectionService
from rag.services.gate import Gate, owner
from rag.services.summaries import SummaryService
from rag.team.access import User

SUMMARIZE = "Summarize this document."  # the question the Summarize button asks


@dataclass(frozen=True)
class ChatService:
    settings: Settings
    gate: Gate
    conversations: Conversations
    collections: CollectionService
    answers: AnswerService
    summaries: SummaryService
    llm: LLM | None

    def for_user(self, user: User) -> Chats:
        return Chats(self, user)


class Chats:
    """`user`'s conversations (see the module docstring)."""

    def __init__(self, service: ChatService, user: User) -> None:
        self._s = service
        self.user = user
        self._mine = service.conversations.for_user(owner(user))

    # -- the list ---------------------------------------------------------------------------

    def list(self, query: str = "") -> list[ConversationInfo]:
        """Newest first; with `query`, those with every one of its words in their title,
        a question or an answer."""
        readable = set(self._s.collections.names(self.user))
        return [c for c in self._mine.list(query) if c.collection in readable]

    def latest(self, collection: str) -> ConversationInfo | None:
        """The user's most recent conversation on `collection`."""
        return self._mine.latest(collection)

    def start(self, collection: str, settings: ChatSettings | None = None) -> ConversationInfo:
        """A new, empty conversation on `collection` (`settings`: e.g. one document in focus)."""
        name = self._s.gate.open(self.user, collection, "chat")
        return self._mine.create(name, settings or ChatSettings())

    def open(self, cid: str) -> Conversation:
        """The conversation, its shown branch first question first."""
        conv = self._mine.get(cid)
        self._s.gate.open(self.user, conv.collection, "chat")
        return conv

    def rename(self, cid: str, title: str) -> None:
        self._mine.rename(cid, title)

    def delete(self, cid: str) -> None:
        self._mine.delete(cid)

    def update_settings(self, cid: str, settings: ChatSettings) -> None:
        """What the conversation remembers: its document filter and answer settings."""
        self._mine.update_settings(cid, settings)

    def select(self, cid: str, turn_id: int) -> Conversation:
        """Show the branch through `turn_id` (another answer, or an edited question)."""
        return self._mine.select(cid, turn_id)

    def export(self, cid: str) -> str:
        """The conversation's shown branch as Markdown, sources in full."""
        return self.open(cid).to_markdown()

    # -- asking -----------------------------------------------------------------------------

    def ask(self, cid: str, question: str, *, on_progress: Progress | None = None) -> TextStream:
        """Answer the next question of the conversation."""
        return self._answer(self.open(cid), question, "leaf", None, on_progress)

    def ask_new(
        self,
        collection: str,
        question: str,
        settings: ChatSettings | None = None,
        *,
        on_progress: Progress | None = None,
    ) -> tuple[str, TextStream]:
        """(id, stream) of a new conversation on `collection` that starts with `question`;
        a question refused at once (too long, empty) starts none."""
        _check(question, self._s.settings)
        cid = self.start(collection, settings).id
        return cid, self.ask(cid, question, on_progress=on_progress)

    def regenerate(
        self, cid: str, turn_id: int, *, on_progress: Progress | None = None
    ) -> TextStream:
        """Answer a turn's question again; the earlier answer stays reachable."""
        conv = self.open(cid)
        turn = _turn(conv, turn_id)
        return self._answer(conv, turn.question, turn.parent, turn.id, on_progress)

    def edit(
        self, cid: str, turn_id: int, question: str, *, on_progress: Progress | None = None
    ) -> TextStream:
        """Ask `question` in place of a turn's; the turns after it stay on their branch."""
        conv = self.open(cid)
        turn = _turn(conv, turn_id)
        return self._answer(conv, question, turn.parent, turn.id, on_progress)

    def summarize(self, cid: str, *, on_progress: Progress | None = None) -> TextStream:
        """The summary of the conversation's one focused document, as its next turn."""
        conv = self.open(cid)
        if len(conv.settings.doc_ids) != 1:
            raise RagError("Focus the conversation on one document to summarize it.")
        doc = conv.settings.doc_ids[0]
        return self._answer(conv, SUMMARIZE, "leaf", None, on_progress, doc=doc)

    def _answer(
        self,
        conv: Conversation,
        question: str,
        parent: int | Literal["leaf"] | None,
        replaces: int | None,
        on_progress: Progress | None,
        *,
        doc: str | None = None,
    ) -> TextStream:
        """The stream of one answer in `conv`, saved after `parent` when it ends.
        `replaces`: the turn it is another version of (its history is what came before)."""
        _check(question, self._s.settings)  # refused at once: nothing is saved
        question = question.strip()
        s, name = conv.settings, conv.collection
        model = s.model or None
        history = conv.history(before=replaces)
        first = not conv.title

        def save(answer: Answer, stopped: bool) -> None:
            title = ""
            if first:  # the conversation's first answer names it
                done = bool(answer.text) and not (stopped or answer.error)
                title = conversation_title(self._s.llm if done else None, question, model)
            self._mine.append(conv.id, question, answer, parent=parent, stopped=stopped,
                              title=title or plain_title(question))  # fmt: skip

        try:
            doc = doc or self._s.summaries.target(self.user, question, name, s.doc_ids)
            if doc is not None:
                return self._s.summaries.stream(
                    self.user, doc, name, question, model=model, temperature=s.temperature,
                    on_progress=on_progress, on_finish=save,
                )  # fmt: skip
            options = self._s.answers.options(top_k=s.top_k, min_score=s.min_score,
                                              doc_ids=s.doc_ids or None)  # fmt: skip
            retrieval = self._s.answers.retrieve(self.user, question, name, history, options)
        except LimitExceededError:
            raise  # refused before any work: nothing to keep
        except RagError as e:  # e.g. the store went away: the question is kept, with why
            answer = failed_answer(question, str(e))
            save(answer, False)
            return SettledStream(answer)
        return self._s.answers.stream(retrieval, model, s.temperature, save)


def _turn(conv: Conversation, turn_id: int) -> Turn:
    for t in conv.turns:
        if t.id == turn_id:
            return t
    raise RagError("That turn is not on the conversation's shown branch any more: reload it.")


def _check(question: str, settings: Settings) -> None:
    """Refuse a question that is too long (`check_length`) or empty, before any work."""
    check_length(question, settings.max_question_chars)
    if not question.strip():
        raise RagError("Please type a question.")
