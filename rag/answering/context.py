"""From a question to the prompt: the search's hits fitted into the chat messages.

`retrieve` cleans the question, searches (retrieval/search.py) and builds the prompt
(prompts.py); `Retrieval` is everything that decided (cleaned query, sources,
prompt, timings, notes for the user such as a skipped re-ranking), which the answer
stream (stream.py) then answers from. It sits here, above the retrieval stage,
because a prompt is the answering stage's: the retrieval stage hands back hits and
knows nothing of prompts.

Left out: rewriting a follow-up question (stream.py's `standalone_question` does; its
result comes in as `search_text`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.answering.prompts import Prompt, build_prompt
from rag.components.embeddings import Embedder
from rag.components.lexical import Lexical
from rag.components.rerankers import Reranker
from rag.components.store import Store
from rag.core.models import CollectionInfo, Source
from rag.core.text import Message
from rag.retrieval.options import SearchOptions
from rag.retrieval.query import clean_query
from rag.retrieval.search import search


@dataclass(frozen=True)
class Retrieval:
    """The outcome of the retrieval stage for one question."""

    question: str
    query: str
    prompt: Prompt
    timings: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # for the user, e.g. "Re-ranking was skipped: ..."

    @property
    def sources(self) -> tuple[Source, ...]:
        return self.prompt.sources


def retrieve(
    question: str,
    *,
    store: Store,
    embedder: Embedder,
    collection: CollectionInfo,
    options: SearchOptions,
    budget: int,
    history: Sequence[Message] = (),
    search_text: str | None = None,
    lexical: Lexical | None = None,
    reranker: Reranker | None = None,
) -> Retrieval:
    """Everything up to the prompt. `search_text` overrides the text that is searched
    (e.g. a stand-alone rewrite of a follow-up question)."""
    timings: dict[str, float] = {}
    notes: list[str] = []
    t0 = time.perf_counter()
    text = search_text or question
    query = clean_query(text)
    timings["clean"] = time.perf_counter() - t0
    hits = search(
        query,
        store=store,
        embedder=embedder,
        collection=collection,
        options=options,
        timings=timings,
        lexical=lexical,
        question=text,
        reranker=reranker,
        notes=notes,
    )
    prompt = build_prompt(question, hits, history=history, budget=budget)
    return Retrieval(question=question, query=query, prompt=prompt, timings=timings,
                     notes=tuple(notes))  # fmt: skip
