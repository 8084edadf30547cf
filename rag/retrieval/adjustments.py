"""The retrieval adjustments: named steps on top of dense + BM25 fusion, in one place.

Fusion (fusion.py) adds the min-max scaled dense and BM25 scores of each candidate.
Each step below changes that, per question, in the order `STEPS` gives:
- `sentence`: adds the best-sentence score (`LexicalResult.sentence`);
- `coverage`: a question whose words BM25's best chunks hold poorly leans on the
  dense side (`coverage_shift`);
- `names`: the document weight of the question's naming words ("NVIDIA's") when no
  top candidate contains them all (`named_prior`);
- `periods`: the documents whose file name gives the reporting period the question
  names join the candidates and score more (`period_documents`);
- `figures`: a question about amounts weighs each candidate's figure density
  (`figure_density`, `figure_weight`);
- `boilerplate`: text a better candidate of another document already has is pushed
  down (`repeated`).
None of them touches dense-only or BM25-only search (`mixes`). A search can switch
any of them off by name (`SearchOptions.without`, `python -m rag eval ... --without
periods`); with none off, a search is what it always was. docs/retrieval.md gives each
step's measured effect; the one-line comments here give the reason for each constant.

Left out: applying a step by collection or by question type (each is on or off for
the whole search).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag.components.store import Store
from rag.core.models import Chunk
from rag.core.text import figures
from rag.retrieval.periods import asks_latest, latest, periods


@dataclass(frozen=True)
class Step:
    """One adjustment: the name that switches it off, and what it does in a line."""

    name: str
    summary: str


SENTENCE = Step("sentence", "add the score of each candidate's best-matching sentence")
COVERAGE = Step("coverage", "lean on the dense side when BM25's best chunks miss the words")
NAMES = Step("names", "favour documents with the question's naming words (NVIDIA's)")
PERIODS = Step("periods", "favour documents whose file name gives the period asked for")
FIGURES = Step("figures", "favour chunks dense with figures (tables) for amount questions")
BOILERPLATE = Step("boilerplate", "push down text a better candidate of another file repeats")
STEPS: tuple[Step, ...] = (SENTENCE, COVERAGE, NAMES, PERIODS, FIGURES, BOILERPLATE)
STEP_NAMES: tuple[str, ...] = tuple(s.name for s in STEPS)


def mixes(dense_weight: float) -> bool:
    """Whether a search at this dense weight fuses both sides: only then do the
    adjustments apply (dense-only and BM25-only search stay as they are)."""
    return 0.0 < dense_weight < 1.0


# -- sentence ------------------------------------------------------------------------
# +1.5 points of COVID-QA answer_in_context@4000 at 0.5; flat between 0.35 and 0.75.
SENTENCE_WEIGHT = 0.5


# -- coverage ------------------------------------------------------------------------
# Long generic filing questions ("key drivers") send BM25 to chunks sharing those words.
# Coverage median: COVID-QA 1.0, SEC 10-Q 0.53; full at 0.7, shift 2 scored best on both.
COVERAGE_FULL = 0.7
COVERAGE_SHIFT = 2.0
COVERAGE_MAX_DENSE = 0.95


def _shortfall(coverage: float) -> float:
    """How far `coverage` is under `COVERAGE_FULL`, as a share of it (0..1)."""
    return max(0.0, COVERAGE_FULL - coverage) / COVERAGE_FULL


def coverage_shift(dense_weight: float, coverage: float) -> tuple[float, float]:
    """(dense weight, sentence weight) for a question whose best BM25 chunks hold this
    share of its words' idf (`LexicalResult.coverage`): below `COVERAGE_FULL`, the
    dense weight moves towards `COVERAGE_MAX_DENSE` and the sentence weight towards 0,
    in proportion to the shortfall (without scaling the sentence weight, half the gain)."""
    short = _shortfall(coverage)
    w = dense_weight + (1.0 - dense_weight) * COVERAGE_SHIFT * short
    return min(w, max(dense_weight, COVERAGE_MAX_DENSE)), SENTENCE_WEIGHT * (1.0 - short)


# -- names ---------------------------------------------------------------------------
# Only when no top candidate has all the names: applied always, it cost COVID-QA points
# ("SARS-CoV-2" names dozens of articles, and the passage usually says it itself).
NAMED_WEIGHT = 0.75
NAMED_TOP = 3


def named_prior(
    chunks: Sequence[Chunk],
    fused: np.ndarray,
    named: Mapping[str, Mapping[str, float]],
    has: Mapping[str, frozenset[str]],
) -> np.ndarray | None:
    """For each candidate, the summed document weight (`LexicalResult.named`) of the
    question's naming words, when none of the `NAMED_TOP` best candidates by `fused`
    contains all of them; None when one does (or the question has none).

    So NVIDIA's own revenue table (which never says "NVIDIA") can outrank Apple's
    "Total net sales", and "Apple and Microsoft" is not settled by a chunk naming one."""
    if not named or not chunks:
        return None
    top = [chunks[i].id for i in np.argsort(-fused, kind="stable")[:NAMED_TOP].tolist()]
    if any(all(c in has.get(t, ()) for t in named) for c in top):
        return None
    return np.asarray(
        [sum(w.get(c.doc_id, 0.0) for w in named.values()) for c in chunks], dtype=np.float32
    )


# -- periods -------------------------------------------------------------------------
# The right quarter's table reads like the other quarters' to both searches, and was
# often not among the 30 candidates of all documents: hence the added candidates.
PERIOD_WEIGHT = 0.75
PERIOD_CANDIDATES = 20


def period_documents(
    store: Store, collection: str, question: str, doc_ids: Sequence[str] | None
) -> frozenset[str]:
    """The documents (of `doc_ids`, or all) whose file name gives the period that the
    question names (periods.py: "Q1 2023" and "2023 Q1 AAPL.pdf"), or, for a question
    that asks for the latest, the newest of each series (`periods.latest`). Empty when
    it names none, or when that is every document (the period then tells none apart).

    Those documents' `PERIOD_CANDIDATES` best dense chunks join the candidates, and
    their chunks get `PERIOD_WEIGHT` as one more score (1 or 0)."""
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


# -- figures -------------------------------------------------------------------------
# A filing question asks mostly for amounts, and the text explaining an amount outranks
# the table row holding it. Gated (by coverage, or tables at the dense side's top):
# applied to every question it cost COVID-QA; not min-max scaled, so prose stays prose.
FIGURE_WEIGHT = 1.0
FIGURE_DENSE = 0.3  # figures per word of a chunk that counts as all table
FIGURE_SET = 0.15  # mean density of the dense side's best that counts as all tables
FIGURE_TOP = 10


def figure_density(chunks: Sequence[Chunk]) -> np.ndarray:
    """For each chunk, its figures (`text.figures`: 82,959, 25.3) per word over
    `FIGURE_DENSE`, at most 1: a table's rows are near 1, prose near 0."""
    return np.asarray(
        [min(1.0, len(figures(c.text)) / max(len(c.text.split()), 1) / FIGURE_DENSE)
         for c in chunks],
        dtype=np.float32,
    )  # fmt: skip


def figure_weight(coverage: float, density: np.ndarray, dense: np.ndarray) -> float:
    """The weight of the figure density (`density`, per candidate) for a question of
    this coverage whose candidates have these dense scores: up to `FIGURE_WEIGHT` as
    the coverage shortfall grows (as the dense shift: `COVERAGE_SHIFT` times it, at
    most 1), or as the dense side's `FIGURE_TOP` best candidates are tables (their mean
    density over `FIGURE_SET`, at most 1); 0 when BM25's best chunks hold the
    question's words and the dense side's best are prose."""
    by_coverage = min(1.0, COVERAGE_SHIFT * _shortfall(coverage))
    top = density[np.argsort(-dense, kind="stable")[:FIGURE_TOP]]
    by_tables = min(1.0, float(top.mean()) / FIGURE_SET) if top.size else 0.0
    return FIGURE_WEIGHT * max(by_coverage, by_tables)


# -- boilerplate ---------------------------------------------------------------------
# Filings repeat certifications and forward-looking statements quarter after quarter;
# 6- to 12-grams scored alike. Only later copies: pushing the first down cost doc_hit@5.
REPEAT_WEIGHT = 0.3
REPEAT_GRAM = 8
_GRAM_HASH = np.uint64(1_000_003)  # the multiplier of the n-gram hash


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
