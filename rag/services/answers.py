"""Search and answers: the retrieval stage for a question, then a streamed answer
(`rag.services.chats` saves it to a conversation).

Every question goes through here (the app, the CLI, the API), so here it is refused
at once when it is over `max_question_chars` (`check_length`), before any step whose
cost grows with it.

The answer's claim check runs in its stream (`rag.answering.checking`), as the
`claim_check` setting says. Left out: conversations (`rag.services.chats` saves turns).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Unpack

from rag.answering.context import Retrieval, retrieve
from rag.answering.stream import AnswerStream, Finished, standalone_question
from rag.components.generation import LLM
from rag.components.lexical import Lexical
from rag.components.rerankers import Reranker
from rag.components.store import Store
from rag.core.errors import LimitExceededError, RagError
from rag.core.models import Hit
from rag.core.settings import ENV_NAMES, Settings
from rag.core.text import Message
from rag.retrieval.options import SearchOptions, SearchOverrides
from rag.retrieval.query import clean_query
from rag.retrieval.search import search
from rag.services.collections import CollectionService
from rag.services.gate import Gate
from rag.services.resources import LazyEmbedder
from rag.team.access import User


def check_length(text: str, limit: int, what: str = "question") -> None:
    """`LimitExceededError` when `text` (a question, a chat message) is over `limit`
    characters (`max_question_chars`): a constant-time check, before any other work."""
    if len(text) > limit:
        raise LimitExceededError(
            f"The {what} is {len(text):,} characters long, over the limit of {limit:,} "
            f"({ENV_NAMES['max_question_chars']}): shorten it."
        )


@dataclass(frozen=True)
class AnswerService:
    settings: Settings
    store: Store
    gate: Gate
    embedder: LazyEmbedder
    lexical: Lexical
    llm: LLM | None
    collections: CollectionService
    reranker: Reranker | None = None  # DOCCHAT_RERANK; None: the fused order as it is

    def options(self, **overrides: Unpack[SearchOverrides]) -> SearchOptions:
        """The settings' search options with these overrides."""
        return SearchOptions.from_settings(self.settings, **overrides)

    def search(
        self, user: User, query: str, collection: str | None, options: SearchOptions
    ) -> tuple[str, list[Hit]]:
        """(cleaned query, hits, best first)."""
        check_length(query, self.settings.max_question_chars)
        cleaned = clean_query(query)
        info = self.collections.info(user, collection)
        hits = search(cleaned, store=self.store, embedder=self.embedder.for_collection(info),
                      collection=info, options=options, lexical=self.lexical,
                      question=query, reranker=self.reranker)  # fmt: skip
        return cleaned, hits

    def retrieve(
        self,
        user: User,
        question: str,
        collection: str | None,
        history: Sequence[Message],
        options: SearchOptions,
    ) -> Retrieval:
        """Everything up to the prompt; a follow-up is first rewritten to stand alone
        (with an LLM)."""
        check_length(question, self.settings.max_question_chars)
        question = question.strip()
        if not question:
            raise RagError("Please type a question.")
        info = self.collections.info(user, collection)
        return retrieve(
            question,
            store=self.store,
            embedder=self.embedder.for_collection(info),
            collection=info,
            options=options,
            budget=self.settings.context_tokens,
            history=history,
            search_text=standalone_question(self.llm, question, history),
            lexical=self.lexical,
            reranker=self.reranker,
        )

    def stream(
        self,
        retrieval: Retrieval,
        model: str | None,
        temperature: float | None,
        on_finish: Finished | None,
    ) -> AnswerStream:
        """The answer: the LLM's, streamed, or an extractive one without an LLM."""
        if temperature is None:
            temperature = self.settings.temperature
        return AnswerStream(retrieval, llm=self.llm, embedder=self.embedder.get(), model=model,
                            temperature=temperature, on_finish=on_finish,
                            claim_check=self.settings.claim_check_mode())  # fmt: skip
