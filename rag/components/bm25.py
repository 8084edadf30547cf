"""BM25 over the chunks of one collection, in memory: `LexicalIndex` and its search.

`LexicalIndex` holds the term ids of each document's chunks and sentences
(`bm25_terms.py`); the BM25 weights are recomputed lazily, at the first search after
a change, from the stored term ids (`bm25_build.py`), so a bulk ingest pays once.
Beside them it keeps what its owner says of the source: a mark per document, saved
with the terms, and a stamp for the whole, in memory only (lexical.py: what the
store's document and collection were when read). It is saved as one `.npz`
(`bm25_file.py`); a missing, unreadable or outdated file loads as None (lexical.py
then rebuilds it from the store).

A search gives the best chunks by BM25 and, for those and any chunks asked about, the
best-sentence score, the naming words' document weights (`doc_terms.py`) and the
query's coverage (`LexicalResult`).

Left out: keeping the index in step with the store (lexical.py), phrase and fuzzy
matching, languages other than English.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.components.bm25_build import BM25Matrix
from rag.components.bm25_file import SavedTerms, load_terms, save_terms
from rag.components.bm25_terms import term_ids, tokenize
from rag.core.doc_terms import named_words
from rag.core.models import Chunk

# `LexicalResult.coverage` is taken over this many of BM25's best chunks (1 to 10
# moved SEC 10-Q figure_in_context@4000 by a question; see adjustments.COVERAGE_FULL).
COVERAGE_TOP = 5


@dataclass(frozen=True)
class LexicalResult:
    """One lexical search: the best chunks, and two scores for every chunk asked about.

    `bm25` and `sentence` cover the ids in `top` and the ids passed as `also`
    (e.g. the dense side's candidates). The sentence score is the summed idf of
    the query words found in the chunk's best-matching sentence: answers tend to
    sit in one sentence that repeats the question's words. For each of the query's
    naming words (doc_terms.py), by its term: `named`, its BM25 weight in each
    document; `has`, the chunks asked about that contain it. `coverage`: the largest
    share of the query words' idf found in one of the `COVERAGE_TOP` best chunks (a
    long, generic question that no chunk matches well has a low one).
    """

    top: list[tuple[str, float]]  # (chunk id, BM25 score), best first, all > 0
    bm25: dict[str, float]
    sentence: dict[str, float]
    named: dict[str, dict[str, float]] = field(default_factory=dict)
    has: dict[str, frozenset[str]] = field(default_factory=dict)
    coverage: float = 1.0


def _find_sorted(haystack: np.ndarray, needles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(where each needle would sit in the sorted `haystack`, whether it is there)."""
    at = np.searchsorted(haystack, needles)
    found = at < len(haystack)
    found[found] = haystack[at[found]] == needles[found]
    return at, found


@dataclass
class LexicalIndex(BM25Matrix):
    """BM25 over the chunks of one collection, held in memory.

    Term ids per chunk are kept, so a change only re-runs the (vectorized) BM25
    weighting, never the tokenizer (0.3 s at 10k chunks, 7 s at 100k). `marks` (by
    document, saved with the terms) and `stamp` (not saved: "" after a load) are the
    owner's words for the state of the source each document, and the whole index,
    were read at.
    """

    marks: dict[str, str] = field(default_factory=dict)
    stamp: str = ""

    # -- changes -------------------------------------------------------------------

    def add(self, doc_id: str, chunks: Iterable[Chunk], mark: str = "") -> None:
        self.docs[doc_id] = term_ids(chunks, self.vocab)
        self.marks[doc_id] = mark
        self.dirty = self.unsaved = True

    def remove(self, doc_id: str) -> None:
        self.marks.pop(doc_id, None)
        if self.docs.pop(doc_id, None) is not None:
            self.dirty = self.unsaved = True

    @property
    def chunk_count(self) -> int:
        return sum(len(d.indexes) for d in self.docs.values())

    # -- search ----------------------------------------------------------------------

    def _query_ids(self, query: str) -> tuple[list[int], list[int]]:
        """(distinct known word ids, distinct known term ids incl. word pairs)."""
        words = [self.vocab.get(t, -1) for t in tokenize(query)]
        known = sorted({w for w in words if w >= 0})
        ids = set(known)
        if self._pair_keys.size:
            keys = np.asarray(
                [a << 32 | b for a, b in itertools.pairwise(words) if a >= 0 and b >= 0],
                dtype=np.int64,
            )
            at, found = _find_sorted(self._pair_keys, keys)
            ids.update((len(self.vocab) + at[found]).tolist())
        return known, sorted(ids)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (row order of the last build) for `query`."""
        if self.dirty:
            self._build()
        return self._scores(self._query_ids(query)[1])

    def _scores(self, ids: list[int]) -> np.ndarray:
        n_rows = len(self._row_ids)
        if not ids or not n_rows:
            return np.zeros(n_rows, np.float32)
        parts = [slice(self._indptr[t], self._indptr[t + 1]) for t in ids]
        rows = np.concatenate([self._post_rows[p] for p in parts])
        weights = np.concatenate([self._post_weights[p] for p in parts])
        return np.bincount(rows, weights=weights, minlength=n_rows).astype(np.float32)

    def _sentence_scores(self, words: list[int], rows: np.ndarray) -> np.ndarray:
        """For each row: the summed idf of the distinct query words in its best sentence."""
        out = np.zeros(len(rows), dtype=np.float32)
        if not words or not len(rows):
            return out
        first, last = self._row_sentences[rows], self._row_sentences[rows + 1]
        n = last - first
        owner = np.repeat(np.arange(len(rows)), n)  # candidate of each sentence
        sent = np.repeat(first - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
        lens = self._sentence_len[sent]
        tok_owner = np.repeat(np.arange(len(sent)), lens)  # sentence of each token
        pos = np.repeat(self._sentence_start[sent] - np.cumsum(lens) + lens, lens)
        pos += np.arange(int(lens.sum()))
        toks = self._words[pos]
        hit = np.isin(toks, np.asarray(words, dtype=np.int32))
        pairs = np.unique(tok_owner[hit].astype(np.int64) << 32 | toks[hit].astype(np.int64))
        per_sentence = np.bincount(
            pairs >> 32, weights=self._idf[pairs & 0xFFFFFFFF], minlength=len(sent)
        )
        np.maximum.at(out, owner, per_sentence.astype(np.float32))
        return out

    def search(
        self,
        query: str,
        k: int,
        *,
        doc_ids: Sequence[str] | None = None,
        also: Sequence[str] = (),
        question: str | None = None,
    ) -> LexicalResult:
        """The `k` best chunks (positive BM25 score only), and both scores of those
        and of the chunk ids in `also`. The naming words are `question`'s (the text as
        asked, see `doc_terms.named_words`) when given, else `query`'s."""
        if self.dirty:
            self._build()
        words, ids = self._query_ids(query)
        s = self._scores(ids)
        if doc_ids and len(s):
            wanted = set(doc_ids)
            allowed = np.asarray([name in wanted for name in self._doc_names], dtype=bool)
            s = np.where(allowed[self._row_doc], s, np.float32(0.0))
        top: list[tuple[str, float]] = []
        if len(s) and k > 0:
            k = min(k, len(s))
            best = np.argpartition(-s, k - 1)[:k]
            best = best[np.argsort(-s[best], kind="stable")]
            top = [(self._row_ids[r], float(s[r])) for r in best.tolist() if s[r] > 0]
        asked = list(dict.fromkeys([cid for cid, _ in top] + list(also)))
        known = [cid for cid in asked if cid in self._rows]
        rows = np.asarray([self._rows[cid] for cid in known], dtype=np.int64)
        sentence = self._sentence_scores(words, rows)
        named: dict[str, dict[str, float]] = {}
        has: dict[str, frozenset[str]] = {}
        names = named_words(query if question is None else question)
        for term in sorted(set(tokenize(" ".join(names))) & self.vocab.keys()):
            w = self.vocab[term]  # a word's term id is its vocabulary id
            named[term] = self._named.of(w, self._doc_names)
            inside = self._holds(w, rows)
            has[term] = frozenset(c for c, ok in zip(known, inside.tolist(), strict=True) if ok)
        return LexicalResult(
            top=top,
            bm25={cid: float(s[r]) for cid, r in zip(known, rows.tolist(), strict=True)},
            sentence=dict(zip(known, sentence.tolist(), strict=True)),
            named=named,
            has=has,
            coverage=self._coverage(words, [self._rows[cid] for cid, _ in top[:COVERAGE_TOP]]),
        )

    def _coverage(self, words: list[int], rows: list[int]) -> float:
        """The largest share of the query words' summed idf that one of `rows` holds
        (1.0 when the query has no known word or there are no rows)."""
        total = float(self._idf[words].sum()) if words else 0.0
        if not rows or total <= 0.0:
            return 1.0
        at = np.asarray(rows, dtype=np.int64)
        held = np.zeros(len(at))
        for w in words:
            held += self._holds(w, at) * self._idf[w]
        return float(held.max() / total)

    def _holds(self, term: int, rows: np.ndarray) -> np.ndarray:
        """Whether each of `rows` has `term`. A term's posting rows are sorted (see
        `_build`), so this is a binary search per row: `np.isin` sorted the whole
        posting list instead and took 85% of the search time at 300k chunks (a common
        word is in most rows; p95 91 ms there, 12.5 ms with this, same results)."""
        posting = self._post_rows[self._indptr[term] : self._indptr[term + 1]]
        return _find_sorted(posting, rows)[1]

    # -- persistence -----------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically (a reader sees the old or the new file)."""
        save_terms(path, SavedTerms(self.vocab, self.docs, self.marks))
        self.unsaved = False

    @classmethod
    def load(cls, path: Path) -> LexicalIndex | None:
        """The index saved at `path`, or None when missing, unreadable or outdated."""
        saved = load_terms(path)
        if saved is None:
            return None
        return cls(vocab=saved.vocab, docs=saved.docs, marks=saved.marks, dirty=True,
                   unsaved=False)  # fmt: skip
