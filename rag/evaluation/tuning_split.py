"""The two halves of a dataset for tuning, and the labelled pairs of the training half
(`python -m rag eval tune`: rag/evaluation/tuning.py runs them).

`split_questions` draws the held-out documents as a tuning job draws a collection's
(`tuning_pairs.split_by_document`, seeded) and puts each question on the side of its
source documents; a question whose sources fall on both sides (an SEC question about
several filings) is dropped from both and counted. `labelled_pairs` turns a question
into a (question, passage) pair with the chunk the measures would count as holding its
answer; `bm25_search` is the BM25-only search that breaks ties between such chunks and
finds hard negatives.

Left out: the training and the figures (tuning.py), reading the datasets (rag/datasets/).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rag.core.errors import RagError
from rag.core.models import Chunk, Hit
from rag.engine import DocChat
from rag.evaluation.measures import EvalQuestion, name_matches, score_question
from rag.evaluation.runs import Article
from rag.finetune.tuning_pairs import TuningPair, split_by_document
from rag.ingest.stages import embedding_text

LABEL_K = 100  # BM25 hits looked through to choose among chunks that all hold an answer


@dataclass(frozen=True)
class QuestionSplit:
    """A dataset's questions split by their documents (file names)."""

    train_docs: frozenset[str]
    test_docs: frozenset[str]
    train: tuple[EvalQuestion, ...]
    test: tuple[EvalQuestion, ...]
    straddling: int  # questions with sources on both sides: dropped from both
    unsourced: int  # questions naming no document of the dataset: dropped

    def to_dict(self) -> dict[str, int]:
        return {
            "train_docs": len(self.train_docs),
            "test_docs": len(self.test_docs),
            "train_questions": len(self.train),
            "test_questions": len(self.test),
            "dropped_straddling": self.straddling,
            "dropped_unsourced": self.unsourced,
        }


def sources_of(q: EvalQuestion, names: Sequence[str]) -> set[str]:
    """The documents (file names) a question names: by pattern, or by name or stem."""
    if q.source_globs:
        return {n for n in names if name_matches(q.source_globs, n)}
    want = q.source.strip().casefold()
    return {n for n in names if want and want in (n.casefold(), n.rsplit(".", 1)[0].casefold())}


def split_questions(
    articles: Sequence[Article], questions: Sequence[EvalQuestion], held_out: float, seed: int = 0
) -> QuestionSplit:
    """The documents that have questions, split as a tuning job splits a collection's
    (`split_by_document`), and each question on the side of its documents."""
    names = [a.name for a in articles]
    sources = [sources_of(q, names) for q in questions]
    docs = sorted(set().union(*sources))
    split = split_by_document([TuningPair("", "", d) for d in docs], held_out, seed)
    train, test, straddling = [], [], 0
    for q, src in zip(questions, sources, strict=True):
        if src and src <= split.train_docs:
            train.append(q)
        elif src and src <= split.test_docs:
            test.append(q)
        else:
            straddling += bool(src)
    unsourced = sum(not s for s in sources)
    return QuestionSplit(split.train_docs, split.test_docs, tuple(train), tuple(test),
                         straddling, unsourced)  # fmt: skip


def bm25_search(app: DocChat, doc_ids: Sequence[str], k: int) -> Callable[[str], list[Chunk]]:
    """BM25-only search within these documents, best first (no adjustment applies)."""

    def search(question: str) -> list[Chunk]:
        try:
            _, hits = app.search(question, top_k=k, min_score=-1.0, hybrid=True,
                                 dense_weight=0.0, doc_ids=doc_ids)  # fmt: skip
        except RagError:  # e.g. a pseudo-query longer than a question may be
            return []
        return [h.chunk for h in hits]

    return search


def labelled_pairs(
    app: DocChat, questions: Sequence[EvalQuestion], chunks: Sequence[Chunk]
) -> list[TuningPair]:
    """A pair per question with a chunk of its documents (among `chunks`) that the
    measures count as holding its answer (COVID-QA: covering the answer's span; SEC
    10-Q: holding one of its figures verbatim); of several, the one BM25 ranks first."""
    by_file: dict[str, list[Chunk]] = {}
    for c in chunks:
        by_file.setdefault(c.file, []).append(c)
    names = sorted(by_file)
    out = []
    for q in questions:
        holding = [c for f in sorted(sources_of(q, names)) for c in by_file[f]
                   if score_question(q, [Hit(c, 1.0)], 0.0).answer_rank == 1]  # fmt: skip
        if not holding:
            continue
        best = holding[0]
        if len(holding) > 1:
            ids = {c.id for c in holding}
            ranked = bm25_search(app, sorted({c.doc_id for c in holding}), LABEL_K)(q.question)
            best = next((c for c in ranked if c.id in ids), best)
        out.append(TuningPair(q.question, embedding_text(best), best.doc_id, best.id))
    return out
