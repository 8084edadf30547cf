"""The search: a cleaned query -> hits, best first, by dense, BM25 or both fused.

Two searches run side by side when `hybrid` is on (the default):
- dense: cosine similarity of normalized MiniLM vectors in Chroma, for the question
  as asked (the model reads sentences better than keyword lists);
- lexical: BM25 over stemmed words and word pairs (lexical.py), for the question
  without filler and stop words.
Each side contributes its top `CANDIDATES`; every candidate gets both real scores (the
dense similarity of a keyword-only candidate is computed from its stored vector, the
BM25 score of a dense-only one looked up) and the lexical search's per-question
findings (best sentence, naming words, coverage), and fusion.py ranks them. A question
that names a reporting period also brings its documents' best chunks in (the `periods`
step, adjustments.py).

Hits whose dense similarity is under `min_score` are dropped in both modes: they are
off-topic, and an empty result lets the caller answer "not covered" without calling
the LLM. `Hit.score` is the fused score (0..1) in hybrid mode, the cosine otherwise.

With a `reranker` (`DOCCHAT_RERANK`), the top candidates that pass `min_score` are
re-ordered by it before the cut to `top_k` (rerank.py: bounded in time; on a failure
the fused order stays and a note is added to `notes`); scores stay as they were.

Left out: building the prompt from the hits (answering/context.py does).
"""

from __future__ import annotations

import time

import numpy as np

from rag.components.embeddings import Embedder
from rag.components.lexical import Lexical
from rag.components.model_check import check_model
from rag.components.rerankers import Reranker
from rag.components.store import Store
from rag.core.models import CollectionInfo, Hit
from rag.retrieval.adjustments import PERIOD_CANDIDATES, PERIODS, mixes, period_documents
from rag.retrieval.fusion import fuse
from rag.retrieval.options import SearchOptions
from rag.retrieval.query import dense_query
from rag.retrieval.rerank import rerank

CANDIDATES = 30  # per side, before fusion (20 to 50 scored the same on COVID-QA)


def search(
    query: str,
    *,
    store: Store,
    embedder: Embedder,
    collection: CollectionInfo,
    options: SearchOptions,
    timings: dict[str, float] | None = None,
    lexical: Lexical | None = None,
    question: str | None = None,
    reranker: Reranker | None = None,
    notes: list[str] | None = None,
) -> list[Hit]:
    """Hits for a cleaned query, best first, all with a dense similarity of at least
    `options.min_score`. `question` (the uncleaned text) is what the dense side embeds
    when given: the model reads natural questions better than keyword lists; it is also
    what a `reranker` reads. A note for the user (re-ranking skipped) goes to `notes`."""
    top_k, min_score, doc_ids = options.top_k, options.min_score, options.doc_ids or None
    check_model(collection, embedder)
    t = timings if timings is not None else {}
    t0 = time.perf_counter()
    vector = np.asarray(embedder.embed([dense_query(question) if question else query])[0])
    t1 = time.perf_counter()
    t["embed"] = t1 - t0
    if not options.hybrid or lexical is None:
        wanted = max(top_k, reranker.candidates) if reranker is not None else top_k
        hits = store.query(collection.name, vector, wanted, doc_ids=doc_ids)
        t["search"] = time.perf_counter() - t1
        kept = [h for h in hits if h.score >= min_score]
        return _reranked(question or query, kept, reranker, t, notes)[:top_k]

    n = max(top_k, CANDIDATES)
    dense_hits = store.query(collection.name, vector, n, doc_ids=doc_ids)
    in_period: frozenset[str] = frozenset()
    if mixes(options.dense_weight) and options.on(PERIODS.name):
        in_period = period_documents(store, collection.name, question or query, doc_ids)
    if in_period:
        seen = {h.chunk.id for h in dense_hits}
        more = store.query(collection.name, vector, PERIOD_CANDIDATES, doc_ids=sorted(in_period))
        dense_hits += [h for h in more if h.chunk.id not in seen]
    t2 = time.perf_counter()
    chunks = [h.chunk for h in dense_hits]
    also = [c.id for c in chunks]
    lex = lexical.search(collection, query, n, doc_ids=doc_ids, also=also, question=question)
    t3 = time.perf_counter()
    dense = [h.score for h in dense_hits]
    seen = {c.id for c in chunks}
    extra_ids = [cid for cid, _ in lex.top if cid not in seen]
    if extra_ids:
        # Keyword-only candidates: their dense similarity, from their stored vectors.
        extra, vectors = store.chunks_by_id(collection.name, extra_ids)
        if extra:  # (a chunk deleted since the BM25 index last synced is not found)
            chunks.extend(extra)
            dense.extend((vectors.reshape(len(extra), -1) @ vector.astype(np.float32)).tolist())
    ids = [c.id for c in chunks]
    hits = fuse(
        chunks,
        np.asarray(dense, dtype=np.float32),
        np.asarray([lex.bm25.get(i, 0.0) for i in ids], dtype=np.float32),
        options.dense_weight,
        np.asarray([lex.sentence.get(i, 0.0) for i in ids], dtype=np.float32),
        lex,
        np.asarray([c.doc_id in in_period for c in chunks], dtype=np.float32),
        without=options.without,
    )
    t4 = time.perf_counter()
    t["search"] = t2 - t1
    t["lexical"] = t3 - t2
    t["fuse"] = t4 - t3
    kept = [h for h in hits if (h.dense_score or 0.0) >= min_score]
    return _reranked(question or query, kept, reranker, t, notes)[:top_k]


def _reranked(
    text: str,
    hits: list[Hit],
    reranker: Reranker | None,
    timings: dict[str, float],
    notes: list[str] | None,
) -> list[Hit]:
    """`hits` re-ranked when there is a re-ranker (its time in `timings["rerank"]`)."""
    if reranker is None or len(hits) < 2:
        return hits
    t0 = time.perf_counter()
    hits, note = rerank(text, hits, reranker)
    timings["rerank"] = time.perf_counter() - t0
    if note and notes is not None:
        notes.append(note)
    return hits
