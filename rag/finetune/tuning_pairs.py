"""(question, passage) pairs that teach the embedding model a collection.

Three sources, one shape (`TuningPair`: a question and the text the model embeds for
the chunk that answers it):

- `pairs_from_qa`: the fine-tuning studio's reviewed Q&A pairs (each knows its chunk);
- `read_pairs_file`: a question set with expected sources (the Evaluate page's CSV or
  JSONL: a chunk id, or an answer's text found verbatim in a chunk), or the studio's
  exported pairs;
- `pseudo_pairs`: with neither, the inverse cloze task: one sentence of a chunk is the
  query, the rest of that chunk the passage. No model writes them, so they cost nothing;
  what they are worth is measured in docs/tuning.md.

`hard_negatives` adds to each pair a chunk of ANOTHER document that BM25 ranks high for
its question (near misses teach more than the batch's random passages), and
`split_by_document` keeps a document's questions all on one side, so a held-out
question never has its passage in training.

Left out: negatives mined with the dense model itself (each would need a full embedding
pass), and de-duplicating near-identical questions.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rag.core.errors import TuningError
from rag.core.models import Chunk
from rag.core.text import sentence_spans
from rag.finetune.dataset import QAPair
from rag.ingest.stages import embedding_text

# An inverse-cloze query shorter than this many words says too little to find its chunk
# by; the passage left must keep as many.
MIN_PSEUDO_WORDS = 6


@dataclass(frozen=True)
class TuningPair:
    """A question and the passage (the chunk's embedded text) that answers it."""

    question: str
    passage: str
    doc_id: str
    chunk_id: str = ""
    negative: str = ""  # a hard negative's passage: high for BM25, of another document


@dataclass(frozen=True)
class TuningSplit:
    """Pairs split by document: no document has questions on both sides."""

    train: tuple[TuningPair, ...]
    test: tuple[TuningPair, ...]
    train_docs: frozenset[str]
    test_docs: frozenset[str]


def pairs_from_qa(pairs: Sequence[QAPair], chunks: Mapping[str, Chunk]) -> list[TuningPair]:
    """The grounded studio pairs whose chunk is still in the collection."""
    out = []
    for p in pairs:
        chunk = chunks.get(p.chunk_id)
        if chunk is not None and p.kind == "grounded" and p.question.strip():
            passage = embedding_text(chunk)
            out.append(TuningPair(p.question.strip(), passage, chunk.doc_id, chunk.id))
    return out


def read_pairs_file(data: bytes, name: str, chunks: Sequence[Chunk]) -> list[TuningPair]:
    """A question file's rows as pairs: each row's `question` with its `chunk_id`, or
    the chunk holding its `answer` verbatim (within the document `source` names, a file
    name or doc id, when given). Rows that resolve to no chunk are skipped;
    `TuningError` when none resolve."""
    rows = _rows(data, name)
    by_id = {c.id: c for c in chunks}
    out = []
    for row in rows:
        question = _pick(row, ("question", "query", "q", "prompt"))
        if not question:
            continue
        chunk = by_id.get(_pick(row, ("chunk_id",)))
        if chunk is None:
            answer = _norm(_pick(row, ("answer", "expected_answer", "answer_text")))
            source = _pick(row, ("source", "expected_source", "file", "document", "doc_id"))
            if answer:
                chunk = next((c for c in chunks if _in_source(c, source)
                              and answer in _norm(c.text)), None)  # fmt: skip
        if chunk is not None:
            out.append(TuningPair(question, embedding_text(chunk), chunk.doc_id, chunk.id))
    if not out:
        raise TuningError(
            f"{name}: no row names a chunk of this collection (a chunk_id, or an answer "
            "found verbatim in a document)."
        )
    return out


def pseudo_pairs(chunks: Sequence[Chunk], limit: int, seed: int = 0) -> list[TuningPair]:
    """Inverse cloze pairs: a sentence of a chunk as the query, the rest of the chunk
    as its passage; at most one a chunk, a seeded sample of `limit` chunks."""
    order = list(chunks)
    random.Random(seed).shuffle(order)
    out: list[TuningPair] = []
    for c in order:
        if len(out) >= limit:
            break
        spans = [(a, b) for a, b in sentence_spans(c.text)
                 if len(c.text[a:b].split()) >= MIN_PSEUDO_WORDS]  # fmt: skip
        if len(spans) < 2:
            continue
        a, b = spans[random.Random(f"{seed}:{c.id}").randrange(len(spans))]
        rest = (c.text[:a] + " " + c.text[b:]).strip()
        if len(rest.split()) < MIN_PSEUDO_WORDS:
            continue
        passage = f"{c.context}\n{rest}" if c.context else rest
        out.append(TuningPair(c.text[a:b].strip(), passage, c.doc_id, c.id))
    return out


def hard_negatives(
    pairs: Sequence[TuningPair], bm25: Callable[[str], Sequence[Chunk]]
) -> list[TuningPair]:
    """Each pair with, as its negative, BM25's best chunk of another document for its
    question (a pair keeps none when BM25 finds no other document)."""
    out = []
    for p in pairs:
        other = next((c for c in bm25(p.question) if c.doc_id != p.doc_id), None)
        out.append(p if other is None else _with_negative(p, embedding_text(other)))
    return out


def split_by_document(pairs: Sequence[TuningPair], held_out: float, seed: int = 0) -> TuningSplit:
    """`held_out` of the documents (at least one, never all) hold the test questions;
    documents, not questions, are drawn (seeded), so no passage is on both sides."""
    docs = sorted({p.doc_id for p in pairs})
    if len(docs) < 2:
        raise TuningError(
            "Tuning needs questions about at least 2 documents: the model is tested on "
            "the questions of documents it was not trained on."
        )
    random.Random(seed).shuffle(docs)
    n_test = min(len(docs) - 1, max(1, round(len(docs) * held_out)))
    test_docs = frozenset(docs[:n_test])
    return TuningSplit(
        train=tuple(p for p in pairs if p.doc_id not in test_docs),
        test=tuple(p for p in pairs if p.doc_id in test_docs),
        train_docs=frozenset(docs[n_test:]),
        test_docs=test_docs,
    )


def pairs_hash(pairs: Sequence[TuningPair]) -> str:
    """A digest of the pairs, stamped on the model they trained."""
    h = hashlib.sha256()
    for p in pairs:
        h.update(json.dumps([p.question, p.passage, p.negative]).encode("utf-8"))
    return h.hexdigest()


def _with_negative(p: TuningPair, negative: str) -> TuningPair:
    return TuningPair(p.question, p.passage, p.doc_id, p.chunk_id, negative)


def _rows(data: bytes, name: str) -> list[Mapping[str, object]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise TuningError(f"{name} is not UTF-8 text.") from None
    try:
        if name.lower().endswith((".csv", ".tsv")):
            dialect = "excel-tab" if name.lower().endswith(".tsv") else "excel"
            return list(csv.DictReader(io.StringIO(text), dialect=dialect))
        if text.lstrip().startswith("["):
            items = json.loads(text)
        else:
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
    except (csv.Error, ValueError) as e:
        raise TuningError(f"{name} cannot be read ({type(e).__name__}).") from None
    return [i for i in items if isinstance(i, Mapping)]


def _pick(row: Mapping[str, object], keys: Sequence[str]) -> str:
    lower = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    return next((str(lower[k]).strip() for k in keys if str(lower.get(k) or "").strip()), "")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _in_source(chunk: Chunk, source: str) -> bool:
    if not source:
        return True
    stem = chunk.file.rsplit(".", 1)[0]
    return source in (chunk.doc_id, chunk.file, stem)
