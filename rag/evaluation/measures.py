"""Retrieval measures: how often the answer reaches the prompt, and how fast.

`EvalQuestion` says what counts as finding a question's answer; `score_question`
scores one question's ranked hits, `summarize` a run's questions into an `EvalReport`.
Asking the questions is runs.py's; where they come from, `question_set.py` (a user's
CSV or JSONL file) or a dataset of rag/datasets/.

The measures, per question, on the ranked hits of the app's own search:
- `answer_in_context@N`: the answer lies wholly inside ONE chunk among the ranked
  chunks taken in order while their text stays within N characters, i.e. what a
  prompt of that size would show the model. It does not depend on chunk size, so
  chunking choices compare honestly. (A span is covered when the chunk's character
  range contains it; an answer text when the chunk's text contains it, ignoring case
  and whitespace; a chunk id when that chunk is retrieved.)
  With `figures` (numbers of the answer), one of them verbatim in a chunk covers it:
  `figure_in_context@N`.
- `doc_hit@5`: a chunk of the right document (or one `source_globs` match) in the top 5.
- `mrr@10`: 1 / rank of the first chunk that covers the answer (0 past rank 10).
- search time per question (clean, embed, search, fuse), p50 and p95.

Left out: judging generated answers (that needs an LLM and is a different question),
and reading question files (question_set.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

import numpy as np

from rag.core.models import Hit

BUDGETS = (4000, 2000)


@dataclass(frozen=True)
class EvalQuestion:
    """A question and what counts as finding its answer (at least one of the fields)."""

    question: str
    answer: str = ""  # expected answer text, verbatim from the document
    source: str = ""  # expected document: file name (with or without extension) or doc id
    chunk_id: str = ""  # an expected chunk, `doc_id:index`
    doc_id: str = ""  # the document the span refers to (COVID-QA)
    start: int | None = None  # answer span in that document's text
    end: int | None = None
    figures: tuple[str, ...] = ()  # any of these, verbatim in a chunk, covers the answer
    source_globs: tuple[str, ...] = ()  # shell patterns over file names (SEC 10-Q)

    @property
    def has_answer(self) -> bool:
        return bool(self.chunk_id or self.answer or self.start is not None or self.figures)

    @property
    def has_source(self) -> bool:
        return bool(self.source or self.doc_id or self.source_globs)


@dataclass(frozen=True)
class QuestionResult:
    question: EvalQuestion
    answer_rank: int | None  # 1-based rank of the first chunk covering the answer
    doc_rank: int | None  # 1-based rank of the first chunk of the right document
    in_context: dict[int, bool]  # budget -> answer inside one chunk within it
    search_ms: float
    top: tuple[str, ...]  # file names of the top 3 hits, for reading misses

    def to_dict(self) -> dict[str, object]:
        return {
            "question": self.question.question,
            "answer": self.question.answer,
            "source": self.question.source,
            "answer_rank": self.answer_rank,
            "doc_rank": self.doc_rank,
            **{f"in_context@{b}": v for b, v in self.in_context.items()},
            "search_ms": round(self.search_ms, 2),
            "top": list(self.top),
        }


@dataclass(frozen=True)
class EvalReport:
    """The figures of one evaluation run; `to_dict` gives the documented JSON keys."""

    answer_in_context_4000: float | None
    answer_in_context_2000: float | None
    doc_hit_5: float | None
    mrr_10: float | None
    search_ms_p50: float
    search_ms_p95: float
    questions: int
    chunks: int
    documents: int
    settings: dict[str, object]
    results: tuple[QuestionResult, ...] = ()
    index_seconds: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)
    answer_kind: str = "answer"  # "figure" when every answer is a set of figures
    with_answer: int = 0  # questions scored for the answer (the n of *_in_context)
    with_source: int = 0  # questions scored for the document (the n of doc_hit@5)

    def measures(self) -> dict[str, float | None]:
        """The quality figures by their documented names."""
        k = self.answer_kind
        return {
            f"{k}_in_context@4000": self.answer_in_context_4000,
            f"{k}_in_context@2000": self.answer_in_context_2000,
            "doc_hit@5": self.doc_hit_5,
            "mrr@10": self.mrr_10,
        }

    def to_dict(self, *, with_results: bool = False) -> dict[str, object]:
        d: dict[str, object] = {
            **self.measures(),
            "search_ms_p50": round(self.search_ms_p50, 2),
            "search_ms_p95": round(self.search_ms_p95, 2),
            "questions": self.questions,
            "questions_with_answer": self.with_answer,
            "questions_with_source": self.with_source,
            "chunks": self.chunks,
            "documents": self.documents,
            "index_seconds": round(self.index_seconds, 1),
            "settings": self.settings,
            **self.extra,
        }
        if with_results:
            d["results"] = [r.to_dict() for r in self.results]
        return d

    @property
    def misses(self) -> list[QuestionResult]:
        """Questions whose answer did not make it into 4,000 characters of context."""
        return [r for r in self.results if r.question.has_answer and not r.in_context[4000]]


# -- scoring ---------------------------------------------------------------------------


def _norm(text: str) -> str:
    return " ".join(text.casefold().split())


def name_matches(globs: Sequence[str], file_name: str) -> bool:
    """Whether a file name matches one of the shell patterns (ignoring case)."""
    name = file_name.casefold()
    return any(fnmatchcase(name, g.casefold()) for g in globs)


def _source_matches(q: EvalQuestion, hit: Hit) -> bool:
    c = hit.chunk
    if q.doc_id:
        return c.doc_id == q.doc_id
    if q.source_globs:
        return name_matches(q.source_globs, c.file)
    want = q.source.strip().casefold()
    name = c.file.casefold()
    return want in (name, name.rsplit(".", 1)[0], c.doc_id) or (
        len(want) >= 6 and c.doc_id.startswith(want)
    )


def _covers(q: EvalQuestion, hit: Hit) -> bool:
    c = hit.chunk
    if q.chunk_id:
        return c.id == q.chunk_id
    if q.start is not None and q.end is not None:
        return c.doc_id == q.doc_id and c.start <= q.start and q.end <= c.end
    if q.figures:
        return any(f in c.text for f in q.figures)
    return bool(q.answer) and _norm(q.answer) in _norm(c.text)


def score_question(
    q: EvalQuestion, hits: Sequence[Hit], search_ms: float, budgets: Sequence[int] = BUDGETS
) -> QuestionResult:
    """The measures of one question from its ranked hits."""
    answer_rank = doc_rank = None
    in_context = dict.fromkeys(budgets, False)
    used = 0
    for rank, h in enumerate(hits, start=1):
        used += len(h.chunk.text)
        covers = q.has_answer and _covers(q, h)
        if covers and answer_rank is None:
            answer_rank = rank
        if covers:
            for b in budgets:
                if used <= b:
                    in_context[b] = True
        if doc_rank is None and q.has_source and _source_matches(q, h):
            doc_rank = rank
    return QuestionResult(
        question=q,
        answer_rank=answer_rank,
        doc_rank=doc_rank,
        in_context=in_context,
        search_ms=search_ms,
        top=tuple(h.chunk.file for h in hits[:3]),
    )


def summarize(
    results: Sequence[QuestionResult],
    *,
    chunks: int,
    documents: int,
    settings: dict[str, object],
    index_seconds: float = 0.0,
) -> EvalReport:
    answered = [r for r in results if r.question.has_answer]
    figures_only = bool(answered) and all(r.question.figures for r in answered)
    sourced = [r for r in results if r.question.has_source]

    def share(rs: Sequence[QuestionResult], ok: Callable[[QuestionResult], bool]) -> float | None:
        return round(sum(map(ok, rs)) / len(rs), 4) if rs else None

    ms = np.asarray([r.search_ms for r in results] or [0.0])
    mrr = (
        round(
            sum(1.0 / r.answer_rank for r in answered if r.answer_rank and r.answer_rank <= 10)
            / len(answered),
            4,
        )
        if answered
        else None
    )
    return EvalReport(
        answer_in_context_4000=share(answered, lambda r: r.in_context[4000]),
        answer_in_context_2000=share(answered, lambda r: r.in_context[2000]),
        doc_hit_5=share(sourced, lambda r: r.doc_rank is not None and r.doc_rank <= 5),
        mrr_10=mrr,
        search_ms_p50=float(np.percentile(ms, 50)),
        search_ms_p95=float(np.percentile(ms, 95)),
        questions=len(results),
        chunks=chunks,
        documents=documents,
        settings=settings,
        results=tuple(results),
        index_seconds=index_seconds,
        answer_kind="figure" if figures_only else "answer",
        with_answer=len(answered),
        with_source=len(sourced),
    )
