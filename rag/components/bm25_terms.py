"""Text as BM25 sees it: chunks to terms, and a document's terms as vocabulary ids.

Terms: lowercase words, English stop words (`text.BM25_STOP_WORDS`) removed,
Snowball-stemmed (PyStemmer) so "infections" finds "infected"; figures dropped.
Sentences (for the best-sentence score) are `text.sentence_spans`'. Each chunk is
indexed with its document's name and section (`chunk_header`). `TermIds` is what an
index keeps of a document: the term ids of its chunks and sentences, from which
`bm25_build.py` weighs them and `bm25_file.py` saves them. A change of the terms
here needs a new `bm25_file.INDEX_VERSION`, so older index files are rebuilt.

Left out: word pairs (derived from neighbouring ids when the index is built),
phrase and fuzzy matching, languages other than English.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import Stemmer

from rag.core.models import Chunk
from rag.core.text import BM25_STOP_WORDS, FIGURE, sentence_spans

_WORD_RE = re.compile(r"[^\W_]+", re.UNICODE)
_STEMMER = Stemmer.Stemmer("english")
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


def chunk_terms(chunk: Chunk) -> tuple[list[str], list[list[str]]]:
    """(header terms, terms of each sentence of the text)."""
    sentences = [tokenize(chunk.text[s:e]) for s, e in sentence_spans(chunk.text)]
    return tokenize(chunk_header(chunk)), [t for t in sentences if t]


@dataclass
class TermIds:
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


FIELDS = ("indexes", "lengths", "headers", "sentence_counts", "sentences", "tokens")
DTYPES = (np.int32, np.int64, np.int32, np.int32, np.int32, np.int32)


def term_ids(chunks: Iterable[Chunk], vocab: dict[str, int]) -> TermIds:
    """The chunks' terms as ids of `vocab`, which takes each new term."""
    cols: tuple[list[int], ...] = ([], [], [], [], [], [])
    indexes, lengths, headers, counts, sentences, ids = cols
    for c in chunks:
        header, sents = chunk_terms(c)
        indexes.append(c.index)
        headers.append(len(header))
        counts.append(len(sents))
        sentences.extend(len(t) for t in sents)
        lengths.append(len(header) + sum(len(t) for t in sents))
        for t in itertools.chain(header, *sents):
            ids.append(vocab.setdefault(t, len(vocab)))
    return TermIds(*(np.asarray(col, dtype=dt) for col, dt in zip(cols, DTYPES, strict=True)))


def concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """`parts` end to end as `dtype` (an empty array of it when there are none)."""
    return np.concatenate(parts).astype(dtype, copy=False) if parts else np.zeros(0, dtype)
