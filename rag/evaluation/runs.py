"""Evaluation runs: ask questions with the app's own search and score the hits.

`evaluate` asks a set of `EvalQuestion`s of an existing collection; `corpus_index`
indexes a dataset's documents in a throw-away data dir with the given settings, and
`evaluate_corpus` asks its questions there (and compares with dense-only and BM25-only
search on the same index). The scoring is measures.py's.

The relevance threshold (`min_score`) is not applied here: it decides "not covered",
not ranking, and would hide ranking differences.

Left out: reading question files (question_set.py) and datasets (rag/datasets/).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rag.components.embeddings import Embedder
from rag.core.errors import DatasetError, RagError
from rag.core.models import IngestResult, Upload
from rag.core.settings import Settings
from rag.engine import DocChat
from rag.evaluation.measures import BUDGETS, EvalQuestion, EvalReport, score_question, summarize

SEARCH_K = 30  # hits per question; more when chunks are small (see `_search_k`)
EvalProgress = Callable[[str, int, int], None]  # (stage, done, total)


def evaluate(
    app: DocChat,
    questions: Sequence[EvalQuestion],
    *,
    collection: str | None = None,
    hybrid: bool | None = None,
    dense_weight: float | None = None,
    progress: EvalProgress | None = None,
    without: Collection[str] = (),
) -> EvalReport:
    """Ask every question of `collection` with the app's search; score the hits.

    `hybrid` and `dense_weight` override the settings for this run only (they need
    no re-index), so two retrieval settings can be compared on one index; `without`
    names retrieval adjustments (retrieval/adjustments.py) to switch off.
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
            without=without,
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
    if without:  # (only then, so that a default run's report is what it always was)
        used["without"] = sorted(without)
    return summarize(results, chunks=info.chunks, documents=info.documents, settings=used)


def _search_k(chunk_tokens: int) -> int:
    """Enough hits to fill the largest budget: a token is at least ~3 characters of
    English, and a document's last chunk may be short, so ask for twice that."""
    return max(SEARCH_K, 2 * max(BUDGETS) // (3 * max(chunk_tokens, 1)) + 1)


# -- a dataset in a throw-away index ----------------------------------------------------


@dataclass(frozen=True)
class Article:
    """A document of an evaluation dataset: a unique name (with the extension it loads
    as, e.g. ".txt" or ".pdf") and its text, or the file's bytes (`data`)."""

    name: str
    text: str = ""
    data: bytes = b""

    @property
    def content(self) -> bytes:
        """What is uploaded: the bytes, or the text as UTF-8."""
        return self.data or self.text.encode("utf-8")


@dataclass(frozen=True)
class CorpusIndex:
    """A dataset indexed in a throw-away data dir: the app on it, and how it loaded."""

    app: DocChat
    results: list[IngestResult]  # one per article, in order
    index_seconds: float

    def loaded(self) -> dict[str, object]:
        """Files, files indexed, those rejected and why, pages and pages/s."""
        done = self.results
        pages = sum(r.pages for r in done if r.status != "rejected")
        return {
            "files": len(done),
            "files_indexed": sum(r.status != "rejected" for r in done),
            "rejected": {r.file: r.reason for r in done if r.status == "rejected"},
            "pages": pages,
            "pages_per_s": round(pages / self.index_seconds, 2) if self.index_seconds else None,
        }


@contextlib.contextmanager
def corpus_index(
    name: str,
    articles: Sequence[Article],
    questions: Sequence[EvalQuestion],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    allow_rejected: bool = False,
    progress: EvalProgress | None = None,
) -> Iterator[CorpusIndex]:
    """A dataset's articles indexed with `settings` (no LLM) in a temporary data dir,
    as one upload, the model loaded and the first search made before any timing; the
    data dir is removed afterwards.

    The collection is the dataset's `name` in lower case; an article the loaders
    reject is an error (a dataset is meant to load whole) unless `allow_rejected`
    (real files: how many load is a measure).
    """
    if not articles or not questions:
        raise DatasetError(f"{name}: no articles with questions to evaluate.")
    tmp = Path(tempfile.mkdtemp(prefix="docchat-eval-"))
    try:
        # One upload, as a user would make it; the budget is for people's uploads.
        s = settings.with_(
            data_dir=tmp, chroma_host="", collection=name.lower(), max_upload_chunks=10**9
        )
        app = DocChat.open(s.without_llm(), embedder=embedder)
        app.embedder.embed(["warm up"])  # loading (or exporting) the model is not indexing

        def indexed(i: int, r: IngestResult) -> None:
            if r.status == "rejected" and not allow_rejected:
                raise RagError(f"{name} article {r.file!r} was rejected: {r.reason}")
            if progress:
                progress("indexing", i + 1, len(articles))

        t0 = time.perf_counter()
        done = app.ingest_many((Upload(a.name, a.content) for a in articles), on_result=indexed)
        index_seconds = time.perf_counter() - t0
        app.search(questions[0].question)  # warm-up: first-call costs are not search time
        try:
            yield CorpusIndex(app, done, index_seconds)
        finally:
            app.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def evaluate_corpus(
    name: str,
    articles: Sequence[Article],
    questions: Sequence[EvalQuestion],
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    baselines: bool = True,
    allow_rejected: bool = False,
    progress: EvalProgress | None = None,
    without: Collection[str] = (),
) -> EvalReport:
    """Index a dataset's articles (`corpus_index`) and ask every question there; files,
    pages and pages/s go in `extra`. With `baselines`, the same index is also searched
    dense-only and BM25-only, reported under `"baselines"` (no adjustment applies to
    those). `without` names retrieval adjustments to switch off in the default search.
    """
    with corpus_index(name, articles, questions, settings, embedder=embedder,
                      allow_rejected=allow_rejected, progress=progress) as corpus:  # fmt: skip
        app = corpus.app
        report = evaluate(app, questions, progress=progress, without=without)
        extra = corpus.loaded()
        if baselines:
            dense = evaluate(app, questions, hybrid=False)
            bm25 = evaluate(app, questions, hybrid=True, dense_weight=0.0)
            extra["baselines"] = {
                "dense": brief(dense),
                "bm25": brief(bm25),
            }
        return replace(report, index_seconds=corpus.index_seconds, extra=extra)


def brief(r: EvalReport) -> dict[str, object]:
    """A report's measures and its search times (p50, p95)."""
    d = r.to_dict()
    return {**r.measures(), **{k: d[k] for k in ("search_ms_p50", "search_ms_p95")}}
