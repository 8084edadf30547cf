"""SEC 10-Q: 20 quarterly filings (PDF) of five companies and 195 questions by
financial analysts, each naming its source filings by shell patterns (`*2023 Q2 AAPL*`,
`*MSFT*`) and with a written answer.

`load_sec_10q` reads `qna_data.csv` and the PDFs in `docs/`; `run_sec_10q` indexes the
filings as one upload in a throw-away data dir with the given settings and asks every
question (`evaluate_corpus` in evaluation/runs.py); `read_sec_10q` gives a slice of it.
Scored:
- `doc_hit@5`: a chunk of a file matching one of the question's `Source Docs` patterns
  among the top 5 hits;
- `figure_in_context@4000`: the answer's figures (`answer_figures`: its numbers with
  thousands separators or a decimal point, so no years) are what must reach the prompt;
  a question counts when one of them appears verbatim in a chunk taken while the ranked
  chunks stay within 4,000 characters. 127 of the 195 answers have figures; the others
  count for `doc_hit@5` only.
A filing the loaders reject is reported (`files_indexed`, `rejected`), not an error:
how many real filings load is one of the measures.

The data is not shipped: `python -m rag eval sec-10-q --data PATH` names it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from pathlib import Path

from rag.components.embeddings import Embedder
from rag.core.errors import DatasetError
from rag.core.settings import Settings
from rag.core.text import figures
from rag.evaluation.measures import EvalQuestion, EvalReport, name_matches
from rag.evaluation.runs import Article, EvalProgress, evaluate_corpus

NAME = "SEC-10-Q"  # in messages, and (lower case) the collection of the throw-away index


def answer_figures(answer: str) -> tuple[str, ...]:
    """The figures of an answer (`text.figures`: 82,959 or 25.3, never a year), in order
    of first appearance, each once. On the 195 answers this gives figures for 127."""
    return tuple(dict.fromkeys(figures(answer)))


def source_globs(field: str) -> tuple[str, ...]:
    """The shell patterns of a `Source Docs` cell: comma-separated, spaces trimmed."""
    return tuple(g.strip() for g in field.split(",") if g.strip())


def load_sec_10q(path: Path) -> tuple[list[Article], list[EvalQuestion]]:
    """The filings (PDF bytes, sorted by file name) and questions of the SEC 10-Q set."""
    root = Path(path)
    try:
        # The CSV starts with a UTF-8 byte order mark: "utf-8-sig" drops it.
        table = (root / "qna_data.csv").read_text(encoding="utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(table)))
        files = sorted((root / "docs").glob("*.pdf"))
        articles = [Article(name=f.name, data=f.read_bytes()) for f in files]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DatasetError(f"Cannot read SEC 10-Q from {path}: {type(e).__name__}") from None
    try:
        questions = [
            EvalQuestion(
                question=r["Question"],
                figures=answer_figures(r["Answer"]),
                source_globs=source_globs(r["Source Docs"]),
            )
            for r in rows
        ]
    except (KeyError, AttributeError):
        raise DatasetError(f"{path}: qna_data.csv lacks its columns.") from None
    if not articles or not questions:
        raise DatasetError(f"{path}: no filings with questions found.")
    return articles, questions


def slice_sec_10q(
    articles: list[Article], questions: list[EvalQuestion], files: int
) -> tuple[list[Article], list[EvalQuestion]]:
    """The first `files` filings and the questions whose sources are all among them."""
    kept = articles[:files]
    names = {a.name for a in kept}

    def inside(q: EvalQuestion) -> bool:
        wanted = {a.name for a in articles if name_matches(q.source_globs, a.name)}
        return bool(wanted) and wanted <= names

    return kept, [q for q in questions if inside(q)]


def read_sec_10q(
    path: Path, files: int | None = None
) -> tuple[list[Article], list[EvalQuestion]]:
    """The dataset, or its first `files` filings and the questions they answer."""
    docs, questions = load_sec_10q(path)
    if files is not None:
        docs, questions = slice_sec_10q(docs, questions, files)
    return docs, questions


def run_sec_10q(
    path: Path,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    files: int | None = None,
    baselines: bool = True,
    progress: EvalProgress | None = None,
    without: Collection[str] = (),
) -> EvalReport:
    """Index the SEC 10-Q filings with `settings` in a temporary data dir, ask every
    question.

    `files` limits the run to the first N filings (by name) and the questions whose
    source filings are all among them, for tests. With `baselines`, the same index is
    also searched dense-only and BM25-only, reported under `"baselines"`. `without`
    names retrieval adjustments (retrieval/adjustments.py) to switch off in the default
    search.
    """
    docs, questions = read_sec_10q(path, files)
    return evaluate_corpus(
        NAME,
        docs,
        questions,
        settings,
        embedder=embedder,
        baselines=baselines,
        allow_rejected=True,
        progress=progress,
        without=without,
    )
