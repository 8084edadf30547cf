"""A lexical index's term ids saved as one `.npz` file, written atomically.

The file holds the vocabulary and each document's `bm25_terms.TermIds`, end to end,
with each document's mark (what the store said of the document when its terms were
read: lexical.py compares them), so the terms and what they were read from are one
file that a reader sees whole. The BM25 weights are not saved (rebuilt at the first
search after a load). A missing,
unreadable, inconsistent or outdated file (another `INDEX_VERSION`) loads as None,
and lexical.py then rebuilds the index from the store.

Left out: sharing one file between processes (each keeps its own), partial writes.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.components.bm25_terms import DTYPES, FIELDS, TermIds, concat

# Bump when tokenization or the file layout changes: older files are then rebuilt.
# v3: sentences split by text.sentence_spans; v5: no figures; v6: each document's mark.
INDEX_VERSION = "bm25-v6"


@dataclass(frozen=True)
class SavedTerms:
    """What one file holds: the vocabulary, and term ids and marks by document."""

    vocab: dict[str, int]
    docs: dict[str, TermIds]
    marks: dict[str, str]


def save_terms(path: Path, saved: SavedTerms) -> None:
    """Write the term ids to `path` atomically (a reader sees the old or the new file)."""
    vocab, docs = saved.vocab, saved.docs
    names = list(docs)
    parts = [docs[n] for n in names]
    words = sorted(vocab, key=vocab.__getitem__)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}.{threading.get_ident()}.npz")
    arrays = {
        "version": np.asarray([INDEX_VERSION]),
        "vocab": np.asarray(words, dtype=str),
        "doc_ids": np.asarray(names, dtype=str),
        "marks": np.asarray([saved.marks.get(n, "") for n in names], dtype=str),
        "doc_counts": np.asarray([len(d.indexes) for d in parts], dtype=np.int64),
        **{
            f: concat([getattr(d, f) for d in parts], dt)
            for f, dt in zip(FIELDS, DTYPES, strict=True)
        },
    }
    # Named explicitly, so the arrays cannot be taken for this flag; none holds objects.
    np.savez(tmp, allow_pickle=False, **arrays)
    os.replace(tmp, path)


def load_terms(path: Path) -> SavedTerms | None:
    """What `save_terms` wrote at `path`, or None when missing, unreadable or outdated."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["version"][0]) != INDEX_VERSION:
                return None
            vocab = {str(t): i for i, t in enumerate(z["vocab"].tolist())}
            names = [str(n) for n in z["doc_ids"].tolist()]
            marks = [str(m) for m in z["marks"].tolist()]
            counts = z["doc_counts"].tolist()
            a = {f: z[f].astype(dt) for f, dt in zip(FIELDS, DTYPES, strict=True)}
    except (OSError, ValueError, KeyError, IndexError, EOFError):
        return None
    if (
        len(marks) != len(names)
        or sum(counts) != len(a["indexes"])
        or int(a["lengths"].sum()) != len(a["tokens"])
        or int(a["sentence_counts"].sum()) != len(a["sentences"])
    ):
        return None
    docs: dict[str, TermIds] = {}
    row = sent = pos = 0
    for name, n in zip(names, counts, strict=True):
        rows = slice(row, row + n)
        n_sent = int(a["sentence_counts"][rows].sum())
        n_tok = int(a["lengths"][rows].sum())
        docs[name] = TermIds(
            indexes=a["indexes"][rows],
            lengths=a["lengths"][rows],
            headers=a["headers"][rows],
            sentence_counts=a["sentence_counts"][rows],
            sentences=a["sentences"][sent : sent + n_sent],
            tokens=a["tokens"][pos : pos + n_tok],
        )
        row, sent, pos = row + n, sent + n_sent, pos + n_tok
    return SavedTerms(vocab, docs, dict(zip(names, marks, strict=True)))
