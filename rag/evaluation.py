"""Retrieval evaluation: how often the answer reaches the prompt, and how fast.

Two sources of questions, one scoring:
- COVID-QA (`run_covid_qa`): 98 scientific articles, 1,380 questions, each with the
  answer's character span in its article. Every article is indexed as one text
  document (named by its title) in a throw-away data dir with the current settings.
- A user's own set (`read_question_set` + `evaluate`) against an existing collection:
  CSV or JSONL rows with a question and any of: the expected answer text (verbatim
  from the document), the expected source (file name or doc id), a chunk id.

The measures, per question, on the ranked hits of the app's own search:
- `answer_in_context@N`: the answer lies wholly inside ONE chunk among the ranked
  chunks taken in order while their text stays within N characters, i.e. what a
  prompt of that size would show the model. It does not depend on chunk size, so
  chunking choices compare honestly. (A span is covered when the chunk's character
  range contains it; an answer text when the chunk's text contains it, ignoring case
  and whitespace; a chunk id when that chunk is retrieved.)
- `doc_hit@5`: a chunk of the right document among the top 5.
- `mrr@10`: 1 / rank of the first chunk that covers the answer (0 past rank 10).
- search time per question (clean, embed, search, fuse), p50 and p95.

The relevance threshold (`min_score`) is not applied here: it decides "not covered",
not ranking, and would hide ranking differences.

Left out: judging generated answers (that needs an LLM and is a different question).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .embeddings import Embedder
from .engine import DocChat
from .errors import DatasetError, RagError
from .models import Hit, IngestResult, Upload
from .settings import Settings

BUDGETS = (4000, 2000)
SEARCH_K = 30  # hits per question; more when chunks are small (see `_search_k`)
EvalProgress = Callable[[str, int, int], None]  # (stage, done, total)


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

    @property
    def has_answer(self) -> bool:
        return bool(self.chunk_id or self.answer or self.start is not None)

    @property
    def has_source(self) -> bool:
        return bool(self.source or self.doc_id)


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

    def to_dict(self, *, with_results: bool = False) -> dict[str, object]:
        d: dict[str, object] = {
            "answer_in_context@4000": self.answer_in_context_4000,
            "answer_in_context@2000": self.answer_in_context_2000,
            "doc_hit@5": self.doc_hit_5,
            "mrr@10": self.mrr_10,
            "search_ms_p50": round(self.search_ms_p50, 2),
            "search_ms_p95": round(self.search_ms_p95, 2),
            "questions": self.questions,
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


def _source_matches(q: EvalQuestion, hit: Hit) -> bool:
    c = hit.chunk
    if q.doc_id:
        return c.doc_id == q.doc_id
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
    )


def evaluate(
    app: DocChat,
    questions: Sequence[EvalQuestion],
    *,
    collection: str | None = None,
    hybrid: bool | None = None,
    dense_weight: float | None = None,
    progress: EvalProgress | None = None,
) -> EvalReport:
    """Ask every question of `collection` with the app's search; score the hits.

    `hybrid` and `dense_weight` override the settings for this run only (they need
    no re-index), so two retrieval settings can be compared on one index.
    """
    if not questions:
        raise DatasetError("The question set is empty.")
    info = app.collection(collection)
    k = _search_k(info.chunk_tokens)
    results = []
    for i, q in enumerate(questions):
        t0 = time.perf_counter()
        _, hits = app.search(
            q.question,
            collection=info.name,
            top_k=k,
            min_score=-1.0,
            hybrid=hybrid,
            dense_weight=dense_weight,
        )
        ms = (time.perf_counter() - t0) * 1000
        results.append(score_question(q, hits, ms))
        if progress and (i % 20 == 0 or i + 1 == len(questions)):
            progress("asking", i + 1, len(questions))
    s = app.settings
    used: dict[str, object] = {  # the settings that shaped these hits
        "embedding_model": app.embedder.name,
        "embedding_backend": s.embedding_backend,
        "chunk_tokens": info.chunk_tokens,
        "chunk_overlap": info.chunk_overlap,
        "hybrid": s.hybrid if hybrid is None else hybrid,
        "dense_weight": s.dense_weight if dense_weight is None else dense_weight,
    }
    return summarize(results, chunks=info.chunks, documents=info.documents, settings=used)


def _search_k(chunk_tokens: int) -> int:
    """Enough hits to fill the largest budget: a token is at least ~3 characters of
    English, and a document's last chunk may be short, so ask for twice that."""
    return max(SEARCH_K, 2 * max(BUDGETS) // (3 * max(chunk_tokens, 1)) + 1)


# -- a user's question set ------------------------------------------------------------

_Q_KEYS = ("question", "query", "q")
_A_KEYS = ("answer", "expected_answer", "answer_text")
_S_KEYS = ("source", "expected_source", "file", "document", "doc", "doc_id")


def _pick(row: dict[str, object], keys: Sequence[str]) -> str:
    lower = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
    for k in keys:
        v = lower.get(k)
        if v is not None and str(v).strip():
            return str(v).strip()
    return ""


def read_question_set(name: str, data: bytes, *, limit: int = 5000) -> list[EvalQuestion]:
    """Questions from a CSV (header row) or JSONL file.

    Columns/keys: `question` (required) and at least one of `answer` (text found
    verbatim in a document), `source` (file name or doc id; also `file`, `doc_id`),
    `chunk_id`. The retrieval set exported by fine-tuning data generation reads as is.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DatasetError(f"{name}: not UTF-8 text.") from None
    rows: list[dict[str, object]] = []
    if name.lower().endswith((".jsonl", ".json", ".ndjson")):
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                items = json.loads(stripped)
            except json.JSONDecodeError as e:
                raise DatasetError(f"{name}: invalid JSON ({e.msg}, line {e.lineno}).") from None
        else:
            items = []
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{name}: line {n} is not valid JSON ({e.msg}).") from None
        for n, item in enumerate(items, start=1):
            if not isinstance(item, dict):
                raise DatasetError(f"{name}: item {n} is not an object with a question.")
            rows.append(item)
    elif name.lower().endswith((".csv", ".tsv")):
        dialect = "excel-tab" if name.lower().endswith(".tsv") else "excel"
        reader = csv.DictReader(io.StringIO(text), dialect=dialect)
        if not reader.fieldnames or not any(
            (f or "").strip().lower() in _Q_KEYS for f in reader.fieldnames
        ):
            raise DatasetError(
                f"{name}: the first row must name the columns, one of them 'question'."
            )
        rows = [dict(r) for r in reader]
    else:
        raise DatasetError(f"{name}: use a .csv or .jsonl file.")
    out = []
    for n, row in enumerate(rows, start=1):
        q = EvalQuestion(
            question=_pick(row, _Q_KEYS),
            answer=_pick(row, _A_KEYS),
            source=_pick(row, _S_KEYS),
            chunk_id=_pick(row, ("chunk_id",)),
        )
        if not q.question:
            raise DatasetError(f"{name}: row {n} has no question.")
        if not (q.has_answer or q.has_source):
            raise DatasetError(
                f"{name}: row {n} has neither an expected answer nor an expected source."
            )
        out.append(q)
    if not out:
        raise DatasetError(f"{name}: no questions found.")
    if len(out) > limit:
        raise DatasetError(f"{name}: {len(out)} questions; at most {limit} per run.")
    return out


# -- COVID-QA -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Article:
    name: str  # unique document name: the title, plus ".txt" so it loads as text
    text: str


def load_covid_qa(path: Path) -> tuple[list[Article], list[EvalQuestion]]:
    """The articles and questions of COVID-QA (SQuAD v1 JSON, one article per entry).

    Some answer offsets in the file are off by a few characters; each is moved to
    the nearest exact occurrence of its answer text.
    """
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        entries = raw["data"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        raise DatasetError(f"Cannot read COVID-QA from {path}: {type(e).__name__}") from None
    articles: list[Article] = []
    questions: list[EvalQuestion] = []
    names: set[str] = set()
    for entry in entries:
        for para in entry.get("paragraphs", []):
            text = para["context"]
            title = " ".join(text.split("\n", 1)[0].split())[:150] or "article"
            name, k = f"{title}.txt", 2
            while name in names:  # a repeated title would replace the earlier article
                name, k = f"{title} ({k}).txt", k + 1
            names.add(name)
            articles.append(Article(name=name, text=text))
            doc_id = hashlib.sha256(text.encode("utf-8")).hexdigest()
            for qa in para.get("qas", []):
                for ans in qa.get("answers", [])[:1]:
                    start = _locate(text, ans["text"], int(ans["answer_start"]))
                    if start is None:
                        continue
                    questions.append(
                        EvalQuestion(
                            question=qa["question"],
                            answer=ans["text"],
                            source=name,
                            doc_id=doc_id,
                            start=start,
                            end=start + len(ans["text"]),
                        )
                    )
    if not articles or not questions:
        raise DatasetError(f"{path}: no articles with questions found.")
    return articles, questions


def _locate(text: str, answer: str, start: int) -> int | None:
    if text[start : start + len(answer)] == answer:
        return start
    found = [m.start() for m in re.finditer(re.escape(answer), text)]
    return min(found, key=lambda i: abs(i - start)) if found else None


def run_covid_qa(
    path: Path,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    articles: int | None = None,
    baselines: bool = True,
    progress: EvalProgress | None = None,
) -> EvalReport:
    """Index COVID-QA with `settings` in a temporary data dir, ask every question.

    `articles` limits the run to the first N articles (and their questions), for
    tests. With `baselines`, the same index is also searched dense-only and
    BM25-only, reported under `"baselines"`.
    """
    docs, questions = load_covid_qa(path)
    if articles is not None:
        docs = docs[:articles]
        keep = {hashlib.sha256(a.text.encode("utf-8")).hexdigest() for a in docs}
        questions = [q for q in questions if q.doc_id in keep]
    tmp = Path(tempfile.mkdtemp(prefix="docchat-eval-"))
    try:
        # One upload, as a user would make it; the budget is for people's uploads.
        s = settings.with_(
            data_dir=tmp, chroma_host="", collection="covid-qa", max_upload_chunks=10**9
        )
        app = DocChat(s, embedder=embedder, llm=None)
        app.embedder.embed(["warm up"])  # loading (or exporting) the model is not indexing

        def indexed(i: int, r: IngestResult) -> None:
            if r.status == "rejected":
                raise RagError(f"COVID-QA article {r.file!r} was rejected: {r.reason}")
            if progress:
                progress("indexing", i + 1, len(docs))

        t0 = time.perf_counter()
        app.ingest_many((Upload(a.name, a.text.encode("utf-8")) for a in docs), on_result=indexed)
        index_seconds = time.perf_counter() - t0
        app.search(questions[0].question)  # warm-up: first-call costs are not search time
        report = evaluate(app, questions, progress=progress)
        extra: dict[str, object] = {}
        if baselines:
            dense = evaluate(app, questions, hybrid=False)
            bm25 = evaluate(app, questions, hybrid=True, dense_weight=0.0)
            extra["baselines"] = {
                "dense": _brief(dense),
                "bm25": _brief(bm25),
            }
        return replace(report, index_seconds=index_seconds, extra=extra)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _brief(r: EvalReport) -> dict[str, object]:
    d = r.to_dict()
    keys = ("answer_in_context@4000", "answer_in_context@2000", "doc_hit@5", "mrr@10")
    return {k: d[k] for k in (*keys, "search_ms_p50", "search_ms_p95")}


__all__ = [
    "Article",
    "EvalQuestion",
    "EvalReport",
    "QuestionResult",
    "evaluate",
    "load_covid_qa",
    "read_question_set",
    "run_covid_qa",
    "score_question",
]
