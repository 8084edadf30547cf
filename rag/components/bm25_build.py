"""The BM25 matrix of a collection's chunks, built from their stored term ids.

`BM25Matrix` holds the term ids of each document (`bm25_terms.TermIds`) and, once
`_build` has run, the weights: term-major (CSC) postings of every word and every pair
of neighbouring words, each word's idf, where each chunk's sentences sit in its
terms, and the per-document weights of naming words (`doc_terms.DocumentWeights`).
The build is vectorized with numpy over the stored ids (0.3 s at 10k chunks, 7 s at
100k), so a change never re-runs the tokenizer, and goes block by block to bound its
memory. Scoring is bm25s' Lucene BM25 (k1 1.2, b 0.75), computed here (bm25s' own
index builder loops over chunks in Python: 25 s per rebuild at 100k chunks, and it
cannot add or drop a document); scores were checked equal to bm25s' on a 10k-chunk
corpus.

Left out: searching the matrix (`bm25.LexicalIndex`), saving it (only the term ids
are saved: `bm25_file.py`; the matrix is rebuilt after a load).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from rag.components.bm25_terms import TermIds, concat
from rag.core.doc_terms import DocumentWeights

K1 = 1.2
B = 0.75
# Neighbouring words ("hiv 1") are terms too, worth this much of a single word.
# COVID-QA questions reuse phrases of their answer sentence ("main cause of HIV-1
# infection"); pairs reward that. At 0.4 they added about 2 points of
# answer_in_context@4000; at 1.0 they add nothing.
BIGRAM_WEIGHT = 0.4
# Chunks per block of the BM25 build (`BM25Matrix._build`). Its temporary arrays
# take about 25 MB per 1,000 chunks of a block (measured at 100k chunks: build peak
# 1.57 GB with blocks of 50k, 0.71 GB with 10k, 2.1 GB built at once); smaller
# blocks cost more passes of Python overhead (blocks of 1 chunk: 2x the time). With
# 10k, a build takes 1.2 to 1.3x the one-shot build's time (16.6 vs 13.8 s at 100k).
BUILD_BLOCK_ROWS = 10_000

_EMPTY_I32 = np.zeros(0, np.int32)
_EMPTY_I64 = np.zeros(0, np.int64)


@dataclass
class BM25Matrix:
    """The term ids of a collection's chunks, and the BM25 weights built from them.

    `dirty` says the weights are out of date (a document was added or removed since
    the last `_build`); `unsaved`, that the term ids differ from the saved file.
    """

    vocab: dict[str, int] = field(default_factory=dict)
    docs: dict[str, TermIds] = field(default_factory=dict)
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

    def _build(self, block_rows: int = BUILD_BLOCK_ROWS) -> None:
        """The weights, from the term ids (blocks of about `block_rows` chunks)."""
        names = list(self.docs)
        docs = [self.docs[n] for n in names]
        self._doc_names = names
        self._row_ids = [f"{n}:{i}" for n in names for i in self.docs[n].indexes.tolist()]
        self._rows = {cid: r for r, cid in enumerate(self._row_ids)}
        n_rows = len(self._row_ids)
        doc_rows = np.asarray([len(d.indexes) for d in docs], dtype=np.int64)
        self._row_doc = np.repeat(np.arange(len(docs), dtype=np.int32), doc_rows)
        lengths = concat([d.lengths for d in docs], np.int64)
        words = concat([d.tokens for d in docs], np.int32)
        row_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)

        # Sentences: where each starts in `words` and how many terms it has; row r
        # has sentences ptr[r]:ptr[r+1], the first one right after the row's header.
        sent_len = concat([d.sentences for d in docs], np.int64)
        counts = concat([d.sentence_counts for d in docs], np.int64)
        headers = concat([d.headers for d in docs], np.int64)
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
        nw, nd, ntf = (concat([p[i] for p in named], np.int64) for i in range(3))
        order = np.argsort(nw, kind="stable")
        self._named = DocumentWeights.build(
            nw[order],
            nd[order],
            ntf[order],
            np.asarray([len(d.tokens) for d in docs], dtype=np.int64),
            n_words,
        )
        self.dirty = False

