"""The retrieval stage: clean the question, embed it, search, filter, number.

Search is dense (cosine similarity of normalized MiniLM vectors in Chroma). Hits
under `min_score` are dropped: they are off-topic, and an empty result lets the
caller answer "not covered" without calling the LLM.

Left out: re-ranking with a cross-encoder (no second model is shipped offline).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from .answering import Retrieval
from .embeddings import Embedder
from .ingest import check_model
from .models import CollectionInfo, Hit
from .prompts import Message, build_prompt
from .query import clean_query
from .store import Store


def search(
    query: str,
    *,
    store: Store,
    embedder: Embedder,
    collection: CollectionInfo,
    top_k: int,
    min_score: float,
    doc_ids: Sequence[str] | None = None,
    timings: dict[str, float] | None = None,
) -> list[Hit]:
    """Hits for an already-cleaned query, best first, all scoring at least `min_score`."""
    check_model(collection, embedder)
    t = timings if timings is not None else {}
    t0 = time.perf_counter()
    vector = embedder.embed([query])[0]
    t1 = time.perf_counter()
    hits = store.query(collection.name, vector, top_k, doc_ids=doc_ids)
    t2 = time.perf_counter()
    t["embed"] = t1 - t0
    t["search"] = t2 - t1
    return [h for h in hits if h.score >= min_score]


def retrieve(
    question: str,
    *,
    store: Store,
    embedder: Embedder,
    collection: CollectionInfo,
    top_k: int,
    min_score: float,
    budget: int,
    history: Sequence[Message] = (),
    doc_ids: Sequence[str] | None = None,
    search_text: str | None = None,
) -> Retrieval:
    """Everything up to the prompt. `search_text` overrides the text that is searched
    (e.g. a stand-alone rewrite of a follow-up question)."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    query = clean_query(search_text or question)
    timings["clean"] = time.perf_counter() - t0
    hits = search(
        query,
        store=store,
        embedder=embedder,
        collection=collection,
        top_k=top_k,
        min_score=min_score,
        doc_ids=doc_ids,
        timings=timings,
    )
    prompt = build_prompt(question, hits, history=history, budget=budget)
    return Retrieval(question=question, query=query, prompt=prompt, timings=timings)
