"""BM25 over the chunks of one collection, in memory, saved as one file.

`LexicalIndex` holds the term ids of each document's chunks and sentences; the BM25
weights are recomputed lazily, at the first search after a change, from the stored
term ids (vectorized: 0.3 s at 10k chunks, 7 s at 100k), so a bulk ingest pays once.
It is saved as one `.npz` (term ids per chunk and sentence, the vocabulary), written
atomically; a missing, unreadable or outdated file loads as None (lexical.py then
rebuilds it from the store).

Terms: lowercase words, English stop words (`text.BM25_STOP_WORDS`) removed,
Snowball-stemmed (PyStemmer) so "infections" finds "infected"; plus each pair of
neighbouring words, at a lower weight. Sentences (for the best-sentence score) are
`text.sentence_spans`'. Each chunk is indexed with its document's name and section.
Scoring is bm25s' Lucene BM25 (k1 1.2, b 0.75), computed here with numpy over the
stored term ids (bm25s' own index builder loops over chunks in Python: 25 s per
rebuild at 100k chunks, and it cannot add or drop a document); scores were checked
equal to bm25s' on a 10k-chunk corpus.

Left out: phrase and fuzzy matching, languages other than English.
"""

from __future__ import annotations

import itertools
import os
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import Stemmer

from rag.core.doc_terms import DocumentWeights, named_words
from rag.core.models import Chunk
from rag.core.text import BM25_STOP_WORDS, FIGURE, sentence_spans

# Bump when tokenization or the file layout changes: older files are then rebuilt.
INDEX_VERSION = "bm25-v5"  # v3: sentences split by text.sentence_spans; v5: no figures

_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMER = Stemmer.Stemmer("english")
K1 = 1.2
B = 0.75
# Neighbouring words ("hiv 1") are terms too, worth this much of a single word.
# COVID-QA questions reuse phrases of their answer sentence ("main cause of HIV-1
# infection"); pairs reward that. At 0.4 they added about 2 points of
# answer_in_context@4000; at 1.0 they add nothing.
BIGRAM_WEIGHT = 0.4
# Chunks per block of the BM25 build (`LexicalIndex._build`). Its temporary arrays
# take about 25 MB per 1,000 chunks of a block (measured at 100k chunks: build peak
# 1.57 GB with blocks of 50k, 0.71 GB with 10k, 2.1 GB built at once); smaller
# blocks cost more passes of Python overhead (blocks of 1 chunk: 2x the time). With
# 10k, a build takes 1.2 to 1.3x the one-shot build's time (16.6 vs 13.8 s at 100k).
BUILD_BLOCK_ROWS = 10_000
# `LexicalResult.coverage` is taken over this many of BM25's best chunks (1 to 10
# moved SEC 10-Q figure_in_context@4000 by a question; see retrieval.COVERAGE_FULL).
COVERAGE_TOP = 5
_TERMS: dict[str, str] = {}  # word -> its stem, "" for a stop word (a cache)
_TERMS_MAX = 1_000_000


def _term(word: str) -> str:
    term = _TERMS.get(word)
    if term is None:
        if len(_TERMS) > _TERMS_MAX:
            _TERMS.clear()
        term = _TERMS[word] = "" if word in BM25_STOP_WORDS else _STEMMER.stemWord(word)
    return term


def tokenize(text: str) -> list[str]:
    """The words of `text` as BM25 sees them, in order (repeats kept).

    Figures ("82,959", "25.3") are not terms: questions rarely quote them, and split
    into digit groups they made a table chunk look three times as long, so BM25's
    length normalization buried tables. Without them, SEC 10-Q figure_in_context@4000
    rose 3 points (hybrid) and COVID-QA stayed at 0.760.
    """
    return [t for w in _WORD_RE.findall(FIGURE.sub(" ", text).lower()) if (t := _term(w))]


def chunk_header(chunk: Chunk) -> str:
    """Words indexed with every chunk of a document: its name, the chunk's section and
    the document's running header (`Chunk.context`).

    A question names its topic ("... of HIV-1 in Zimbabwe?") more often than the
    chunk holding the answer does; the document's name carries it. Worth about a
    point of answer_in_context@4000 on COVID-QA (articles named by their titles).
    A filing's pages name their company only in the running header ("Apple Inc. | Q3
    2022 Form 10-Q"), which the loader drops from the page text and keeps here.
    """
    stem = chunk.file.rsplit(".", 1)[0] if "." in chunk.file else chunk.file
    return f"{stem}\n{chunk.section}\n{chunk.context}"


def _chunk_terms(chunk: Chunk) -> tuple[list[str], list[list[str]]]:
    """(header terms, terms of each sentence of the text)."""
    sentences = [tokenize(chunk.text[s:e]) for s, e in sentence_spans(chunk.text)]
    return tokenize(chunk_header(chunk)), [t for t in sentences if t]


@dataclass
class _Doc:
    """The terms of one document's chunks, as vocabulary ids, chunk after chunk.

    Each chunk's terms are its header's, then its sentences' in order; `lengths`,
    `headers` and `sentence_counts` have one entry per chunk, `sentences` one per
    sentence (its number of terms).
    """

    indexes: np.ndarray  # Chunk.index of each chunk, int32
    lengths: np.ndarray  # terms of each chunk, int64
    headers: np.ndarray  # header terms of each chunk, int32
    sentence_counts: np.ndarray  # sentences of each chunk, int32
    sentences: np.ndarray  # terms of each sentence, int32
    tokens: np.ndarray  # term ids, int32


_EMPTY_I32 = np.zeros(0, np.int32)
_EMPTY_I64 = np.zeros(0, np.int64)
_FIELDS = ("indexes", "lengths", "headers", "sentence_counts", "sentences", "tokens")
_DTYPES = (np.int32, np.int64, np.int32, np.int32, np.int32, np.int32)


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)


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
class LexicalIndex:
    """BM25 over the chunks of one collection, held in memory.

    Term ids per chunk are kept, so a change only re-runs the (vectorized) BM25
    weighting, never the tokenizer (0.3 s at 10k chunks, 7 s at 100k).
    """

    vocab: dict[str, int] = field(default_factory=dict)
    docs: dict[str, _Doc] = field(default_factory=dict)
    dirty: bool = True  # the BM25 matrix is out of date
    unsaved: bool = False
    # The built matrix, term-major (CSC): rows of term t are
    # _post_rows[_indptr[t]:_indptr[t+1]] with weights _post_weights[...].
    _indptr: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    _post_rows: np.ndarray = field(default_factory=lambda: _EMPTY_I32)
    _post_weights: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    _pair_keys: np.ndarray = field(default_factory=lambda: _EMPTY_I64)  # sorted
    _idf: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))  # per word
    _words: np.ndarray = field(default_factory=lambda: _EMPTY_I32)  # all term ids
    _sentence_start: np.ndarray = field(default_factory=lambda: _EMPTY_I64)  # in _words
    _sentence_len: np.ndarray = field(default_factory=lambda: _EMPTY_I64)
    _row_sentences: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))  # ptr
    _row_doc: np.ndarray = field(default_factory=lambda: _EMPTY_I32)
    _doc_names: list[str] = field(default_factory=list)
    _row_ids: list[str] = field(default_factory=list)  # chunk id of each row
    _rows: dict[str, int] = field(default_factory=dict)  # chunk id -> row
    _named: DocumentWeights = field(default_factory=DocumentWeights)

    # -- changes -------------------------------------------------------------------

    def add(self, doc_id: str, chunks: Iterable[Chunk]) -> None:
        cols: tuple[list[int], ...] = ([], [], [], [], [], [])
        indexes, lengths, headers, counts, sentences, ids = cols
        vocab = self.vocab
        for c in chunks:
            header, sents = _chunk_terms(c)
            indexes.append(c.index)
            headers.append(len(header))
            counts.append(len(sents))
            sentences.extend(len(t) for t in sents)
            lengths.append(len(header) + sum(len(t) for t in sents))
            for t in itertools.chain(header, *sents):
                ids.append(vocab.setdefault(t, len(vocab)))
        self.docs[doc_id] = _Doc(
            *(np.asarray(col, dtype=dt) for col, dt in zip(cols, _DTYPES, strict=True))
        )
        self.dirty = self.unsaved = True

    def remove(self, doc_id: str) -> None:
        if self.docs.pop(doc_id, None) is not None:
            self.dirty = self.unsaved = True

    @property
    def chunk_count(self) -> int:
        return sum(len(d.indexes) for d in self.docs.values())

    # -- build ---------------------------------------------------------------------

    def _build(self, block_rows: int = BUILD_BLOCK_ROWS) -> None:
        names = list(self.docs)
        docs = [self.docs[n] for n in names]
        self._doc_names = names
        self._row_ids = [f"{n}:{i}" for n in names for i in self.docs[n].indexes.tolist()]
        self._rows = {cid: r for r, cid in enumerate(self._row_ids)}
        n_rows = len(self._row_ids)
        doc_rows = np.asarray([len(d.indexes) for d in docs], dtype=np.int64)
        self._row_doc = np.repeat(np.arange(len(docs), dtype=np.int32), doc_rows)
        lengths = _cat([d.lengths for d in docs], np.int64)
        words = _cat([d.tokens for d in docs], np.int32)
        row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)

        # Sentences: where each starts in `words` and how many terms it has; row r
        # has sentences ptr[r]:ptr[r+1], the first one right after the row's header.
        sent_len = _cat([d.sentences for d in docs], np.int64)
        counts = _cat([d.sentence_counts for d in docs], np.int64)
        headers = _cat([d.headers for d in docs], np.int64)
        ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        before = np.cumsum(sent_len) - sent_len  # terms in all earlier sentences
        has = counts > 0
        shift = row_start[has] + headers[has] - before[ptr[:-1][has]]
        self._sentence_start = np.repeat(shift, counts[has]) + before
        self._sentence_len = sent_len
        self._row_sentences = ptr
        self._words = words

        # The postings are made block by block (whole documents, about `block_rows`
        # chunks each), so the temporary arrays stay the size of one block: built at
        # once, they peaked at 2.1 GB for 100k chunks and took the 1M-chunk benchmark
        # (benchmarks/query.py) past 24 GB. Each block's postings are made twice
        # (pass 1 counts, pass 2 places), so the final arrays are allocated once.
        # Blocks end on document boundaries, so each (word, document) pair of the
        # document weights falls in one block.
        cuts, size = [0], 0
        for d, n in enumerate(doc_rows.tolist()):
            size += n
            if size >= block_rows:
                cuts, size = [*cuts, d + 1], 0
        if cuts[-1] != len(docs):
            cuts.append(len(docs))
        first_row = np.concatenate([[0], np.cumsum(doc_rows)]).astype(np.int64)
        blocks = [(int(first_row[a]), int(first_row[b])) for a, b in itertools.pairwise(cuts)]

        def tokens_of(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
            """(term ids, block-local row of each) of rows r0:r1."""
            t0 = int(row_start[r0]) if r0 < n_rows else len(words)
            t1 = int(row_start[r1]) if r1 < n_rows else len(words)
            local = np.repeat(np.arange(r1 - r0, dtype=np.int64), lengths[r0:r1])
            return words[t0:t1], local

        def pair_keys(w: np.ndarray, local: np.ndarray) -> np.ndarray:
            same = local[1:] == local[:-1]
            return (w[:-1].astype(np.int64) << 32 | w[1:].astype(np.int64))[same]

        # Word pairs are terms too, numbered after the words. They are derived here
        # from the stored word ids (neighbours within one chunk), never stored: a
        # vocabulary of pair strings would take hundreds of MB at 100k chunks.
        n_words = len(self.vocab)
        keys = np.zeros(0, np.int64)
        for r0, r1 in blocks:
            keys = np.union1d(keys, pair_keys(*tokens_of(r0, r1)))
        self._pair_keys = keys
        n_terms = max(n_words + len(keys), 1)

        def postings(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            """(term, row, term frequency) of rows r0:r1, by term, then row."""
            w, local = tokens_of(r0, r1)
            pids = np.searchsorted(keys, pair_keys(w, local))
            terms = np.concatenate([w.astype(np.int64), n_words + pids])
            rows = np.concatenate([local, local[1:][local[1:] == local[:-1]]])
            span = max(r1 - r0, 1)
            pairs, tf = np.unique(terms * span + rows, return_counts=True)
            t, r = np.divmod(pairs, span)
            return t, r + r0, tf

        # Pass 1: document frequency of each term, and each (word, document) pair's
        # frequency for the document weights (doc_terms.py).
        df = np.zeros(n_terms, dtype=np.int64)
        named: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for r0, r1 in blocks:
            t, r, tf = postings(r0, r1)
            if not len(t):
                continue
            df += np.bincount(t, minlength=n_terms)
            w = t < n_words  # the postings of words come first
            doc = self._row_doc[r[w]].astype(np.int64)
            key = t[w] * max(len(docs), 1) + doc
            starts = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
            named.append((t[w][starts], doc[starts], np.add.reduceat(tf[w], starts)))
        # BM25, Lucene variant (as bm25s' "lucene"): idf = ln(1 + (N - df + .5)/(df + .5)),
        # tf part = tf / (tf + k1 * (1 - b + b * len / avg_len)).
        idf = np.log1p((n_rows - df + 0.5) / (df + 0.5))
        boost = np.ones(n_terms, dtype=np.float64)
        boost[n_words:] = BIGRAM_WEIGHT
        avg = float(lengths.mean()) if n_rows and lengths.sum() else 1.0
        indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)

        # Pass 2: each block's weights into their places in the term-major (CSC)
        # arrays; blocks come in row order, so each term's rows stay sorted.
        self._post_rows = np.zeros(int(indptr[-1]), dtype=np.int32)
        self._post_weights = np.zeros(int(indptr[-1]), dtype=np.float32)
        fill = indptr[:-1].copy()
        for r0, r1 in blocks:
            t, r, tf = postings(r0, r1)
            run = np.flatnonzero(np.concatenate([[True], t[1:] != t[:-1]]))
            rank = np.arange(len(t)) - np.repeat(run, np.diff(np.append(run, len(t))))
            at = fill[t] + rank
            norm = K1 * (1.0 - B + B * lengths[r] / avg)
            self._post_rows[at] = r
            self._post_weights[at] = boost[t] * idf[t] * tf / (tf + norm)
            fill += np.bincount(t, minlength=n_terms)
        self._indptr = indptr
        self._idf = idf[:n_words]
        # Named postings: blocks in document order, each by word then document; a
        # stable sort by word keeps the documents of a word in order.
        nw, nd, ntf = (_cat([p[i] for p in named], np.int64) for i in range(3))
        order = np.argsort(nw, kind="stable")
        self._named = DocumentWeights.build(
            nw[order],
            nd[order],
            ntf[order],
            np.asarray([len(d.tokens) for d in docs], dtype=np.int64),
            n_words,
        )
        self.dirty = False

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
        names = list(self.docs)
        docs = [self.docs[n] for n in names]
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}.npz")
        arrays = {
            "version": np.asarray([INDEX_VERSION]),
            "vocab": np.asarray(vocab, dtype=str),
            "doc_ids": np.asarray(names, dtype=str),
            "doc_counts": np.asarray([len(d.indexes) for d in docs], dtype=np.int64),
            **{
                f: _cat([getattr(d, f) for d in docs], dt)
                for f, dt in zip(_FIELDS, _DTYPES, strict=True)
            },
        }
        # Named explicitly, so the arrays cannot be taken for this flag; none holds objects.
        np.savez(tmp, allow_pickle=False, **arrays)
        os.replace(tmp, path)
        self.unsaved = False

    @classmethod
    def load(cls, path: Path) -> LexicalIndex | None:
        """The index saved at `path`, or None when missing, unreadable or outdated."""
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["version"][0]) != INDEX_VERSION:
                    return None
                vocab = {str(t): i for i, t in enumerate(z["vocab"].tolist())}
                names = [str(n) for n in z["doc_ids"].tolist()]
                counts = z["doc_counts"].tolist()
                a = {f: z[f].astype(dt) for f, dt in zip(_FIELDS, _DTYPES, strict=True)}
        except (OSError, ValueError, KeyError, IndexError, EOFError):
            return None
        if (
            sum(counts) != len(a["indexes"])
            or int(a["lengths"].sum()) != len(a["tokens"])
            or int(a["sentence_counts"].sum()) != len(a["sentences"])
        ):
            return None
        docs: dict[str, _Doc] = {}
        row = sent = pos = 0
        for name, n in zip(names, counts, strict=True):
            rows = slice(row, row + n)
            n_sent = int(a["sentence_counts"][rows].sum())
            n_tok = int(a["lengths"][rows].sum())
            docs[name] = _Doc(
                indexes=a["indexes"][rows],
                lengths=a["lengths"][rows],
                headers=a["headers"][rows],
                sentence_counts=a["sentence_counts"][rows],
                sentences=a["sentences"][sent : sent + n_sent],
                tokens=a["tokens"][pos : pos + n_tok],
            )
            row, sent, pos = row + n, sent + n_sent, pos + n_tok
        return cls(vocab=vocab, docs=docs, dirty=True, unsaved=False)
