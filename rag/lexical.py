"""BM25 keyword search next to the dense search: one `bm25s` index per collection.

Chroma stays the source of truth. The lexical index is derived from it and kept in
step by `Lexical.sync`, which compares the collection's ready documents with the
documents the index holds: new ones are read back from the store and tokenized,
removed ones are dropped. That covers adds, replacements, deletes, crash recovery
and writes by another process (server mode) alike. The BM25 matrix itself is
rebuilt lazily, at the first search after a change, so a bulk ingest pays for it once.

Each index lives under `<data_dir>/lexical/<collection key>/` (the key survives a
rename): the token ids of every chunk and the vocabulary, in one `.npz` written
atomically. A missing, unreadable or outdated file is rebuilt from
`Store.all_chunks()`.

Tokens: lowercase words, English stop words removed, Snowball-stemmed (PyStemmer),
so "infections" finds "infected". BM25 parameters are bm25s' Lucene variant.

Left out: phrase and fuzzy matching, languages other than English, sharing one
index between processes (each keeps its own copy next to its data dir).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

from .models import Chunk
from .store import Store

# Bump when tokenization or the file layout changes: older files are then rebuilt.
INDEX_VERSION = "bm25-v2"
_FILE = "lexical.npz"

_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMER = Stemmer.Stemmer("english")
# bm25s' English list plus question words: they say what kind of answer is wanted,
# which the dense side understands, but as keywords they only add noise.
_QUESTION_WORDS = "what which who whom whose when where why how does did do can could would should"
STOP_WORDS = frozenset(bm25s.stopwords.STOPWORDS_EN) | frozenset(_QUESTION_WORDS.split())
K1 = 1.2
B = 0.75
# Neighbouring words ("hiv 1") are terms too, worth this much of a single word.
# COVID-QA questions reuse phrases of their answer sentence ("main cause of HIV-1
# infection"); pairs reward that. At 0.4 they added about 2 points of
# answer_in_context@4000; at 1.0 they add nothing.
BIGRAM_WEIGHT = 0.4
_TERMS: dict[str, str] = {}  # word -> its stem, "" for a stop word (a cache)
_TERMS_MAX = 1_000_000


def _term(word: str) -> str:
    term = _TERMS.get(word)
    if term is None:
        if len(_TERMS) > _TERMS_MAX:
            _TERMS.clear()
        term = _TERMS[word] = "" if word in STOP_WORDS else _STEMMER.stemWord(word)
    return term


def tokenize(text: str) -> list[str]:
    """The words of `text` as BM25 sees them, in order (repeats kept)."""
    return [t for w in _WORD_RE.findall(text.lower()) if (t := _term(w))]


def lexical_text(chunk: Chunk) -> str:
    """What is indexed for a chunk: its text, with the section heading it sits under."""
    return f"{chunk.section}\n{chunk.text}" if chunk.section else chunk.text


@dataclass
class _Doc:
    indexes: np.ndarray  # Chunk.index of each chunk, int32
    lengths: np.ndarray  # number of terms of each chunk, int64
    tokens: np.ndarray  # the term ids of all its chunks, one after another, int32


_EMPTY_I32 = np.zeros(0, np.int32)


@dataclass
class LexicalIndex:
    """BM25 over the chunks of one collection, held in memory.

    Term ids per chunk are kept, so a change only re-runs the (vectorized) BM25
    weighting, never the tokenizer: about a second at 100k chunks.
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
    _pair_keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # sorted
    _row_doc: np.ndarray = field(default_factory=lambda: _EMPTY_I32)
    _doc_names: list[str] = field(default_factory=list)
    _row_ids: list[str] = field(default_factory=list)  # chunk id of each row
    _rows: dict[str, int] = field(default_factory=dict)  # chunk id -> row

    # -- changes -------------------------------------------------------------------

    def add(self, doc_id: str, chunks: Iterable[Chunk]) -> None:
        indexes, lengths, ids = [], [], []
        vocab = self.vocab
        for c in chunks:
            found = [vocab.setdefault(t, len(vocab)) for t in tokenize(lexical_text(c))]
            indexes.append(c.index)
            lengths.append(len(found))
            ids.extend(found)
        self.docs[doc_id] = _Doc(
            np.asarray(indexes, dtype=np.int32),
            np.asarray(lengths, dtype=np.int64),
            np.asarray(ids, dtype=np.int32),
        )
        self.dirty = self.unsaved = True

    def remove(self, doc_id: str) -> None:
        if self.docs.pop(doc_id, None) is not None:
            self.dirty = self.unsaved = True

    @property
    def chunk_count(self) -> int:
        return sum(len(d.indexes) for d in self.docs.values())

    # -- search ----------------------------------------------------------------------

    def _build(self) -> None:
        names = list(self.docs)
        docs = [self.docs[n] for n in names]
        self._doc_names = names
        self._row_ids = [f"{n}:{i}" for n in names for i in self.docs[n].indexes.tolist()]
        self._rows = {cid: r for r, cid in enumerate(self._row_ids)}
        n_rows = len(self._row_ids)
        self._row_doc = np.repeat(
            np.arange(len(docs), dtype=np.int32),
            np.asarray([len(d.indexes) for d in docs], dtype=np.int64),
        )
        lengths = np.concatenate([d.lengths for d in docs]) if docs else np.zeros(0, np.int64)
        words = np.concatenate([d.tokens for d in docs]) if docs else _EMPTY_I32
        rows = np.repeat(np.arange(n_rows, dtype=np.int64), lengths)
        # Word pairs are terms too, numbered after the words. They are derived here
        # from the stored word ids (neighbours within one chunk), never stored: a
        # vocabulary of pair strings would take hundreds of MB at 100k chunks.
        n_words = len(self.vocab)
        same = rows[1:] == rows[:-1]
        keys = (words[:-1].astype(np.int64) << 32 | words[1:].astype(np.int64))[same]
        self._pair_keys, pair_ids = np.unique(keys, return_inverse=True)
        terms = np.concatenate([words.astype(np.int64), n_words + pair_ids.astype(np.int64)])
        rows = np.concatenate([rows, rows[1:][same]])
        n_terms = max(n_words + len(self._pair_keys), 1)
        boost = np.ones(n_terms, dtype=np.float64)
        boost[n_words:] = BIGRAM_WEIGHT
        # Term frequency of each (term, row) pair; sorting by term gives the CSC order.
        pairs, tf = np.unique(terms * n_rows + rows, return_counts=True)
        pair_terms, pair_rows = np.divmod(pairs, max(n_rows, 1))
        df = np.bincount(pair_terms, minlength=n_terms)
        # BM25, Lucene variant (as bm25s' "lucene"): idf = ln(1 + (N - df + .5)/(df + .5)),
        # tf part = tf / (tf + k1 * (1 - b + b * len / avg_len)).
        idf = np.log1p((n_rows - df + 0.5) / (df + 0.5))
        avg = float(lengths.mean()) if n_rows and lengths.sum() else 1.0
        norm = K1 * (1.0 - B + B * lengths[pair_rows] / avg)
        weight = boost[pair_terms] * idf[pair_terms] * tf / (tf + norm)
        self._post_weights = weight.astype(np.float32)
        self._post_rows = pair_rows.astype(np.int32)
        self._indptr = np.concatenate([[0], np.cumsum(df)]).astype(np.int64)
        self.dirty = False

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every chunk (row order of the last build) for `query`."""
        if self.dirty:
            self._build()
        n_rows = len(self._row_ids)
        words = [self.vocab.get(t, -1) for t in tokenize(query)]
        ids = {w for w in words if w >= 0}
        if self._pair_keys.size:
            keys = np.asarray(
                [a << 32 | b for a, b in itertools.pairwise(words) if a >= 0 and b >= 0],
                dtype=np.int64,
            )
            at = np.searchsorted(self._pair_keys, keys)
            found = at < len(self._pair_keys)
            found[found] = self._pair_keys[at[found]] == keys[found]
            ids.update((len(self.vocab) + at[found]).tolist())
        ids = sorted(ids)
        if not ids or not n_rows:
            return np.zeros(n_rows, np.float32)
        parts = [slice(self._indptr[t], self._indptr[t + 1]) for t in ids]
        rows = np.concatenate([self._post_rows[p] for p in parts])
        weights = np.concatenate([self._post_weights[p] for p in parts])
        return np.bincount(rows, weights=weights, minlength=n_rows).astype(np.float32)

    def search(
        self, query: str, k: int, *, doc_ids: Sequence[str] | None = None
    ) -> LexicalResult:
        """The `k` best chunks with a positive score, and every chunk's score."""
        s = self.scores(query)
        if doc_ids and len(s):
            wanted = set(doc_ids)
            allowed = [n for n, name in enumerate(self._doc_names) if name in wanted]
            s = np.where(np.isin(self._row_doc, allowed), s, np.float32(0.0))
        top: list[tuple[str, float]] = []
        if len(s) and k > 0:
            k = min(k, len(s))
            rows = np.argpartition(-s, k - 1)[:k]
            rows = rows[np.argsort(-s[rows], kind="stable")]
            top = [(self._row_ids[r], float(s[r])) for r in rows.tolist() if s[r] > 0]
        return LexicalResult(top=top, scores=s, rows=self._rows)

    # -- persistence -----------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to `path` atomically (a reader sees the old or the new file)."""
        names = list(self.docs)
        docs = [self.docs[n] for n in names]
        vocab = sorted(self.vocab, key=self.vocab.__getitem__)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}.npz")
        np.savez(
            tmp,
            version=np.asarray([INDEX_VERSION]),
            vocab=np.asarray(vocab, dtype=str),
            doc_ids=np.asarray(names, dtype=str),
            doc_counts=np.asarray([len(d.indexes) for d in docs], dtype=np.int64),
            indexes=np.concatenate([d.indexes for d in docs]) if docs else _EMPTY_I32,
            lengths=np.concatenate([d.lengths for d in docs]) if docs else np.zeros(0, np.int64),
            tokens=np.concatenate([d.tokens for d in docs]) if docs else _EMPTY_I32,
        )
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
                indexes = z["indexes"].astype(np.int32)
                lengths = z["lengths"].astype(np.int64)
                tokens = z["tokens"].astype(np.int32)
        except (OSError, ValueError, KeyError, IndexError, EOFError):
            return None
        if sum(counts) != len(indexes) or int(lengths.sum()) != len(tokens):
            return None
        docs: dict[str, _Doc] = {}
        row = pos = 0
        for name, n in zip(names, counts, strict=True):
            used = int(lengths[row : row + n].sum())
            part = slice(row, row + n)
            docs[name] = _Doc(indexes[part], lengths[part], tokens[pos : pos + used])
            row, pos = row + n, pos + used
        return cls(vocab=vocab, docs=docs, dirty=True, unsaved=False)


@dataclass(frozen=True)
class LexicalResult:
    """A lexical search: the best chunks, and a score for any chunk id."""

    top: list[tuple[str, float]]  # (chunk id, BM25 score), best first
    scores: np.ndarray
    rows: dict[str, int]

    def score(self, chunk_id: str) -> float:
        r = self.rows.get(chunk_id)
        return float(self.scores[r]) if r is not None and r < len(self.scores) else 0.0


class Lexical:
    """The lexical indexes of all collections of one store, kept in step with it."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        self._indexes: dict[str, LexicalIndex] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, key: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(key, threading.Lock())

    def _path(self, key: str) -> Path:
        return self.root / key / _FILE

    def sync(self, collection: str) -> LexicalIndex:
        """The collection's index, updated to the store's ready documents."""
        return self._sync(collection)[1]

    def _sync(self, collection: str) -> tuple[str, LexicalIndex]:
        key = self.store.collection_key(collection)
        ready = {d.doc_id for d in self.store.documents(collection)}
        with self._lock(key):
            index = self._indexes.get(key)
            if index is None:
                index = LexicalIndex.load(self._path(key)) or LexicalIndex()
                self._indexes[key] = index
            for doc_id in set(index.docs) - ready:
                index.remove(doc_id)
            for doc_id in sorted(ready - set(index.docs)):
                index.add(doc_id, self.store.chunks_of(collection, doc_id))
            return key, index

    def search(
        self, collection: str, query: str, k: int, *, doc_ids: Sequence[str] | None = None
    ) -> LexicalResult:
        key, index = self._sync(collection)
        with self._lock(key):
            result = index.search(query, k, doc_ids=doc_ids)
            if index.unsaved:
                index.save(self._path(key))
            return result

    def drop(self, key: str) -> None:
        """Forget a deleted collection's index (by the key it had)."""
        with self._lock(key):
            self._indexes.pop(key, None)
            shutil.rmtree(self.root / key, ignore_errors=True)
