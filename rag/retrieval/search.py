"""The retrieval stage: clean the question, search, fuse, filter, number.

Two searches run side by side when `hybrid` is on (the default):
- dense: cosine similarity of normalized MiniLM vectors in Chroma, for the question
  as asked (the model reads sentences better than keyword lists);
- lexical: BM25 over stemmed words and word pairs (lexical.py), for the question
  without filler and stop words.

Fusion is a weighted sum of normalized scores, not reciprocal-rank fusion: on
COVID-QA, plain RRF loses to BM25 alone because it throws away how far ahead a
strong keyword match is. Each side contributes its top `CANDIDATES`; every
candidate gets both real scores (the dense similarity of a keyword-only candidate
is computed from its stored vector, the BM25 score of a dense-only one looked up)
and a third, the best-sentence score (lexical.py, `LexicalResult`). Each is min-max
scaled over the candidates, then
`dense_weight * dense + (1 - dense_weight) * bm25 + SENTENCE_WEIGHT * sentence`.
The weights were chosen on the COVID-QA evaluation (README, Performance). A fourth
score is added when the question names something (doc_terms.py: "NVIDIA's", taken from
the question as asked) and no one of the `NAMED_TOP` best candidates contains all of
its names: the documents' BM25 weight for those names, so NVIDIA's own revenue table
(which never says "NVIDIA") can outrank Apple's "Total net sales", and "Apple and
Microsoft" is not settled by a chunk naming one of them (chosen on COVID-QA and SEC
10-Q together, as are the next two).

Adjustments per question, none of which touches dense-only or BM25-only search:
- when BM25's best chunks hold under `COVERAGE_FULL` of the question's words' idf
  (`LexicalResult.coverage`: a long generic question, "key drivers ... implications"),
  the dense weight moves up and the sentence weight down (`coverage_shift`), and
  each candidate's figure density (`figure_density`: figures per word, so a table's
  rows) is added at a weight that grows with the same shortfall, or with the figure
  density of the dense side's best candidates when that is larger (`figure_weight`:
  a question whose meaning lands on tables);
- when the question names a reporting period ("Q1 2023", "the latest 10-Q") and some
  documents' file names give it (`period_documents`, periods.py), those documents'
  best chunks join the candidates and their chunks get `PERIOD_WEIGHT` more;
- a candidate whose word 8-grams a better candidate of another document already has
  (boilerplate repeated filing after filing) is pushed down by `REPEAT_WEIGHT` times
  the share so repeated (`repeated`).

Hits whose dense similarity is under `min_score` are dropped in both modes: they are
off-topic, and an empty result lets the caller answer "not covered" without calling
the LLM. `Hit.score` is the fused score (0..1) in hybrid mode, the cosine otherwise.

Left out: re-ranking with a cross-encoder (no second model is shipped offline).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict, Unpack

import numpy as np

from rag.answering.prompts import build_prompt
from rag.answering.stream import Retrieval
from rag.components.bm25 import LexicalResult
from rag.components.embeddings import Embedder
from rag.components.lexical import Lexical
from rag.components.store import Store
from rag.core.models import Chunk, CollectionInfo, Hit
from rag.core.settings import Settings
from rag.core.text import Message, figures
from rag.ingest import check_model
from rag.retrieval.periods import asks_latest, latest, periods
from rag.retrieval.query import clean_query, dense_query

CANDIDATES = 30  # per side, before fusion (20 to 50 scored the same on COVID-QA)
# Weight of the best-sentence score, on top of dense_weight * dense +
# (1 - dense_weight) * BM25 (see lexical.py, LexicalResult). Chosen on COVID-QA:
# +1.5 points of answer_in_context@4000 at 0.5; flat between 0.35 and 0.75.
SENTENCE_WEIGHT = 0.5
# The document weight of the question's naming words (doc_terms.py) when none of the
# NAMED_TOP best candidates contains them all, min-max scaled like the others, at this
# weight. Measured (both datasets, one index each): SEC 10-Q doc_hit@5 0.692 -> 0.815
# and figure_in_context@4000 0.150 -> 0.173, COVID-QA unchanged (0.7601), for names
# that no top chunk contains, taken from the cleaned query; from the question as asked
# ("Has Apple ...": cleaning made "Apple" a first word) and with all names in one
# chunk required: 0.933 and 0.228 (fresh `eval all`), COVID-QA 0.7601. Applied to every
# candidate instead, it gave SEC up to 0.944 but cost COVID-QA 0.5 to 2.5 points: there
# "SARS-CoV-2" names dozens of articles, and the passage usually says it itself. A top
# of 5 gave SEC 0.846 and cost COVID-QA one question; 10, and weights 0.5 to 1, less.
NAMED_WEIGHT = 0.75
NAMED_TOP = 3
# A question whose words BM25's best chunks hold poorly (`LexicalResult.coverage`
# under COVERAGE_FULL of their idf) leans on the dense side: the filings' long generic
# questions ("key drivers", "implications") send BM25 to chunks that share those words.
# Coverage, median / 25th percentile: COVID-QA 1.0 / 0.78, SEC 10-Q 0.53 / 0.44.
# Measured (one index each, with REPEAT_*): full at 0.7, shift 2, up to 0.95, sentence
# weight scaled down alike: SEC figure_in_context@4000 0.228 -> 0.283, doc_hit@5 0.933
# -> 0.949, COVID-QA +2 questions. Full at 0.6 or 0.8, or shift 1, gained 1 to 3 SEC
# questions; shift 4 cost COVID-QA 4; without scaling the sentence weight, half the gain.
COVERAGE_FULL = 0.7
COVERAGE_SHIFT = 2.0
COVERAGE_MAX_DENSE = 0.95
# Text a better candidate of another document already has (a filing's boilerplate,
# repeated quarter after quarter: certifications, forward-looking statements) is
# pushed down by this weight times the share of its word 8-grams so repeated. SEC 10-Q
# figure_in_context@4000 0.283 -> 0.315 at 0.3 (8-, 6- and 12-grams alike; 0.2 and 0.5:
# 0.299 to 0.315) at a cost in doc_hit@5 (0.949 -> 0.882: the copies pushed down are
# the right company's other filings); COVID-QA unchanged (articles share no 8-grams).
# Pushing down every copy, the first one too, cost more doc_hit@5 (0.872).
REPEAT_WEIGHT = 0.3
REPEAT_GRAM = 8
# A long generic question that BM25's best chunks hold poorly (the coverage shortfall
# above) asks, in a filing, mostly for amounts ("How has Apple's total net sales
# changed?"), and the text that explains an amount outranks the table row that holds
# it. Such a question adds FIGURE_WEIGHT times the shortfall's share (as the dense
# shift: COVERAGE_SHIFT times it, at most 1) of each candidate's figure density: its
# figures per word (text.figures) over FIGURE_DENSE, at most 1; not min-max scaled, so
# prose whose best candidate has a few figures does not count as a table. Measured
# (one index each): SEC 10-Q figure_in_context@4000 0.315 -> 0.370, doc_hit@5 0.882 ->
# 0.887, COVID-QA unchanged (0.7616: its questions are covered, the shortfall is 0).
# For every question instead: SEC up to 0.409 (weight 0.75), at a cost on COVID-QA
# (0.7609, MRR@10 0.653 -> 0.643); min-max scaled, 0.402 and COVID-QA 0.730. A density
# cap of 0.2 or 0.5, or weights 0.5 to 1, scored 0.36 to 0.40 ungated.
# The weight also grows (whichever is larger) with the mean figure density of the dense
# side's FIGURE_TOP best candidates over FIGURE_SET, at most 1: a question whose meaning
# lands on tables. That mean, deciles 1 / 5 / 9: COVID-QA 0 / 0.014 / 0.056, SEC 10-Q
# 0 / 0.096 / 0.41. Measured (same indexes): SEC 0.370 -> 0.409 (doc_hit@5 0.887 ->
# 0.892), COVID-QA 0.7616 -> 0.7638 (doc_hit@5 0.887 -> 0.884, MRR@10 0.653 -> 0.649).
# FIGURE_SET 0.1 / 0.2 / 0.3: SEC 0.402 / 0.402 / 0.378, COVID-QA 0.7623 / 0.7638 / -;
# FIGURE_TOP 5: SEC 0.402; FIGURE_WEIGHT 1.25: SEC 0.378.
FIGURE_WEIGHT = 1.0
FIGURE_DENSE = 0.3
FIGURE_SET = 0.15
FIGURE_TOP = 10
# A question that names a reporting period ("in Q1 2023", "the most recent 10-Q") is
# answered by the document whose file name gives that period ("2023 Q1 AAPL.pdf"), not
# by the same table of the company's other quarters, which reads alike to both searches
# (periods.py; a filing calls its quarter "the period ended April 1, 2023"). Those
# documents' chunks get this weight as one more score (1 or 0, fused like the others),
# and the dense side's PERIOD_CANDIDATES best chunks of them join the candidates (the
# company's right quarter was often not among the 30 of all documents). Measured (one
# index each): SEC 10-Q figure_in_context@4000 0.409 -> 0.480 and doc_hit@5 0.892 ->
# 0.928 for named quarters (85 of 195 questions), then 0.496 and 0.995 with "latest"
# (54 more); COVID-QA unchanged (no question or title names a quarter, no article has a
# period to be latest). Weight 0.5 / 1.0: 0.488 / 0.488; 10 / 30 candidates: 0.465 /
# 0.472; no candidates added: 0.457 (named quarters only).
PERIOD_WEIGHT = 0.75
PERIOD_CANDIDATES = 20
_GRAM_HASH = np.uint64(1_000_003)  # the multiplier of the n-gram hash


class SearchOverrides(TypedDict, total=False):
    """What a caller may change of the settings for one search (None: the setting)."""

    top_k: int | None
    min_score: float | None
    doc_ids: Sequence[str] | None
    hybrid: bool | None
    dense_weight: float | None


@dataclass(frozen=True)
class SearchOptions:
    """How one search runs: the settings' values, or a caller's overrides of them."""

    top_k: int
    min_score: float
    doc_ids: tuple[str, ...] = ()  # empty: every document
    hybrid: bool = False
    dense_weight: float = 0.5

    @classmethod
    def from_settings(
        cls, settings: Settings, **overrides: Unpack[SearchOverrides]
    ) -> SearchOptions:
        """The settings, with each override that is not None (a `top_k` of 0 neither)."""
        o = overrides
        min_score, hybrid, weight = o.get("min_score"), o.get("hybrid"), o.get("dense_weight")
        return cls(
            top_k=o.get("top_k") or settings.top_k,
            min_score=settings.min_score if min_score is None else min_score,
            doc_ids=tuple(o.get("doc_ids") or ()),
            hybrid=settings.hybrid if hybrid is None else hybrid,
            dense_weight=settings.dense_weight if weight is None else weight,
        )


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def named_prior(
    chunks: Sequence[Chunk],
    fused: np.ndarray,
    named: Mapping[str, Mapping[str, float]],
    has: Mapping[str, frozenset[str]],
) -> np.ndarray | None:
    """For each candidate, the summed document weight (`LexicalResult.named`) of the
    question's naming words, when none of the `NAMED_TOP` best candidates by `fused`
    contains all of them; None when one does (or the question has none)."""
    if not named or not chunks:
        return None
    top = [chunks[i].id for i in np.argsort(-fused, kind="stable")[:NAMED_TOP].tolist()]
    if any(all(c in has.get(t, ()) for t in named) for c in top):
        return None
    return np.asarray(
        [sum(w.get(c.doc_id, 0.0) for w in named.values()) for c in chunks], dtype=np.float32
    )


def repeated(chunks: Sequence[Chunk], fused: np.ndarray) -> np.ndarray:
    """For each candidate, the share of its word `REPEAT_GRAM`-grams (figures and all)
    that a better candidate by `fused` from another document already has: a filing's
    boilerplate that the filings before it repeat word for word. A chunk shorter than
    that is one n-gram, itself. (N-grams are 64-bit polynomial hashes of the words'
    hashes, all candidates at once: 2 ms for 60 candidates, against 6 ms as tuples.)"""
    n, g = len(chunks), REPEAT_GRAM
    words = [c.text.lower().split() for c in chunks]
    lens = np.asarray([len(w) for w in words], dtype=np.int64)
    hashed = map(hash, itertools.chain.from_iterable(words))
    ids = np.fromiter(hashed, np.int64, int(lens.sum())).view(np.uint64)
    owner = np.repeat(np.arange(n), lens)
    h = np.zeros(max(len(ids) - g + 1, 0), np.uint64)
    for k in range(g):
        h = h * _GRAM_HASH + ids[k : k + len(h)]
    ends = np.cumsum(lens)
    inside = np.arange(len(h)) + g <= ends[owner[: len(h)]]  # not across two chunks
    short = np.flatnonzero(lens < g)
    hashes = np.concatenate(
        [h[inside], np.asarray([hash(tuple(words[i])) for i in short], np.int64).view(np.uint64)]
    )
    rank = np.empty(n, np.int64)
    order = np.argsort(-fused, kind="stable")
    rank[order] = np.arange(n)
    ranks = rank[np.concatenate([owner[: len(h)][inside], short])]
    # Sorted by n-gram, then rank: each n-gram's first holder leads its group.
    at = np.lexsort((ranks, hashes))
    hashes, ranks = hashes[at], ranks[at]
    new = np.ones(len(at), dtype=bool)
    new[1:] = (hashes[1:] != hashes[:-1]) | (ranks[1:] != ranks[:-1])  # once per chunk
    hashes, ranks = hashes[new], ranks[new]
    lead = np.ones(len(hashes), dtype=bool)
    lead[1:] = hashes[1:] != hashes[:-1]
    first = ranks[np.maximum.accumulate(np.where(lead, np.arange(len(hashes)), 0))]
    doc_at_rank = np.unique([chunks[i].doc_id for i in order], return_inverse=True)[1]
    other = doc_at_rank[first] != doc_at_rank[ranks]
    share = np.bincount(ranks, weights=other, minlength=n) / np.bincount(ranks, minlength=n)
    out = np.zeros(n, dtype=np.float32)
    out[order] = share
    return out


def coverage_shift(dense_weight: float, coverage: float) -> tuple[float, float]:
    """(dense weight, sentence weight) for a question whose best BM25 chunks hold this
    share of its words' idf (`LexicalResult.coverage`): below `COVERAGE_FULL`, the
    dense weight moves towards `COVERAGE_MAX_DENSE` and the sentence weight towards 0,
    in proportion to the shortfall."""
    short = _shortfall(coverage)
    w = dense_weight + (1.0 - dense_weight) * COVERAGE_SHIFT * short
    return min(w, max(dense_weight, COVERAGE_MAX_DENSE)), SENTENCE_WEIGHT * (1.0 - short)


def _shortfall(coverage: float) -> float:
    """How far `coverage` is under `COVERAGE_FULL`, as a share of it (0..1)."""
    return max(0.0, COVERAGE_FULL - coverage) / COVERAGE_FULL


def figure_weight(coverage: float, density: np.ndarray, dense: np.ndarray) -> float:
    """The weight of the figure density (`density`, per candidate) for a question of
    this coverage whose candidates have these dense scores: up to `FIGURE_WEIGHT` as
    the coverage shortfall grows, or as the dense side's `FIGURE_TOP` best candidates
    are tables; 0 when BM25's best chunks hold the question's words and the dense
    side's best are prose."""
    by_coverage = min(1.0, COVERAGE_SHIFT * _shortfall(coverage))
    top = density[np.argsort(-dense, kind="stable")[:FIGURE_TOP]]
    by_tables = min(1.0, float(top.mean()) / FIGURE_SET) if top.size else 0.0
    return FIGURE_WEIGHT * max(by_coverage, by_tables)


def figure_density(chunks: Sequence[Chunk]) -> np.ndarray:
    """For each chunk, its figures (`text.figures`: 82,959, 25.3) per word over
    `FIGURE_DENSE`, at most 1: a table's rows are near 1, prose near 0."""
    return np.asarray(
        [min(1.0, len(figures(c.text)) / max(len(c.text.split()), 1) / FIGURE_DENSE)
         for c in chunks],
        dtype=np.float32,
    )  # fmt: skip


def mixes(dense_weight: float) -> bool:
    """Whether a search at this dense weight fuses both sides: only then do the
    per-question adjustments apply (dense-only and BM25-only search stay as they are)."""
    return 0.0 < dense_weight < 1.0


def period_documents(
    store: Store, collection: str, question: str, doc_ids: Sequence[str] | None
) -> frozenset[str]:
    """The documents (of `doc_ids`, or all) whose file name gives the period that the
    question names (periods.py: "Q1 2023" and "2023 Q1 AAPL.pdf"), or, for a question
    that asks for the latest, the newest of each series (`periods.latest`). Empty when
    it names none, or when that is every document (the period then tells none apart)."""
    asked = periods(question)
    if not asked and not asks_latest(question):
        return frozenset()
    docs = store.documents(collection)
    if doc_ids:
        wanted = set(doc_ids)
        docs = [d for d in docs if d.doc_id in wanted]
    if asked:
        named = frozenset(d.doc_id for d in docs if periods(d.name) & asked)
    else:
        named = latest({d.doc_id: d.name for d in docs})
    return named if len(named) < len(docs) else frozenset()


def fuse(
    chunks: Sequence[Chunk],
    dense: np.ndarray,
    lexical: np.ndarray,
    dense_weight: float,
    sentence: np.ndarray | None = None,
    names: LexicalResult | None = None,
    period: np.ndarray | None = None,
) -> list[Hit]:
    """Candidates with their scores -> hits, best first.

    Each score is min-max scaled over the candidates; the fused score is
    `w * dense + (1 - w) * lexical + s * sentence`, plus
    `NAMED_WEIGHT * named_prior(...)` when `names` (the lexical search) gives one,
    plus `PERIOD_WEIGHT * period` (1 for a chunk of a document of the question's
    period, else 0) when one chunk is, divided by its largest possible value so it
    stays within 0..1; then
    `REPEAT_WEIGHT * repeated(...)` is taken off (and the result scaled back into 0..1).
    `w` and `s` are `dense_weight` and `SENTENCE_WEIGHT`, or `coverage_shift`'s when
    `names` is given. `dense_weight` 1 ranks by the dense score alone and 0 by BM25
    alone (the others are then left out).
    """
    if not chunks:
        return []
    w = min(max(dense_weight, 0.0), 1.0)
    mixed = mixes(w)
    sentence_weight = SENTENCE_WEIGHT
    if mixed and names is not None:
        w, sentence_weight = coverage_shift(w, names.coverage)
    fused = w * _minmax(dense) + (1.0 - w) * _minmax(lexical)
    if mixed:
        total = 1.0
        if sentence is not None:
            fused = fused + sentence_weight * _minmax(sentence)
            total += sentence_weight
        prior = named_prior(chunks, fused, names.named, names.has) if names else None
        if prior is not None:
            fused = fused + NAMED_WEIGHT * _minmax(prior)
            total += NAMED_WEIGHT
        # All 0: the question names no period; all 1: it tells no candidate apart.
        if period is not None and period.any() and not period.all():
            fused = fused + PERIOD_WEIGHT * period
            total += PERIOD_WEIGHT
        if names is not None:
            density = figure_density(chunks)
            figure_w = figure_weight(names.coverage, density, dense)
            fused = fused + figure_w * density
            total += figure_w
        fused = fused / total
        fused = (fused + REPEAT_WEIGHT * (1.0 - repeated(chunks, fused))) / (1.0 + REPEAT_WEIGHT)
    # Ties (e.g. w = 1 with equal dense scores) keep the stronger raw score first.
    order = np.lexsort((-(dense if w >= 0.5 else lexical), -fused))
    return [
        Hit(
            chunk=chunks[i],
            score=float(fused[i]),
            dense_score=float(dense[i]),
            lexical_score=float(lexical[i]),
        )
        for i in order.tolist()
    ]


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
) -> list[Hit]:
    """Hits for a cleaned query, best first, all with a dense similarity of at least
    `options.min_score`. `question` (the uncleaned text) is what the dense side embeds
    when given: the model reads natural questions better than keyword lists."""
    top_k, min_score, doc_ids = options.top_k, options.min_score, options.doc_ids or None
    check_model(collection, embedder)
    t = timings if timings is not None else {}
    t0 = time.perf_counter()
    vector = np.asarray(embedder.embed([dense_query(question) if question else query])[0])
    t1 = time.perf_counter()
    t["embed"] = t1 - t0
    if not options.hybrid or lexical is None:
        hits = store.query(collection.name, vector, top_k, doc_ids=doc_ids)
        t["search"] = time.perf_counter() - t1
        return [h for h in hits if h.score >= min_score]

    n = max(top_k, CANDIDATES)
    dense_hits = store.query(collection.name, vector, n, doc_ids=doc_ids)
    in_period: frozenset[str] = frozenset()
    if mixes(options.dense_weight):
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
    )
    t4 = time.perf_counter()
    t["search"] = t2 - t1
    t["lexical"] = t3 - t2
    t["fuse"] = t4 - t3
    return [h for h in hits if (h.dense_score or 0.0) >= min_score][:top_k]


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
) -> Retrieval:
    """Everything up to the prompt. `search_text` overrides the text that is searched
    (e.g. a stand-alone rewrite of a follow-up question)."""
    timings: dict[str, float] = {}
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
    )
    prompt = build_prompt(question, hits, history=history, budget=budget)
    return Retrieval(question=question, query=query, prompt=prompt, timings=timings)
