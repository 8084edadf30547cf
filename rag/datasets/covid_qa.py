"""COVID-QA: 98 scientific articles and 1,380 questions, each with the answer's
character span in its article (SQuAD v1 JSON, one article per entry).

`load_covid_qa` reads the file (`read_covid_qa`: its first N articles and their
questions); `run_covid_qa` indexes every article as one text document (named by its
title) in a throw-away data dir with the given settings and asks every question
(`evaluate_corpus` in evaluation/runs.py). The file is not shipped:
`python -m rag eval covid-qa --data PATH` names it.

Left out: the dataset's other answers per question (the first is scored), and
questions whose answer text is nowhere in their article (dropped).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from pathlib import Path

from rag.components.embeddings import Embedder
from rag.core.errors import DatasetError
from rag.core.settings import Settings
from rag.evaluation.measures import EvalQuestion, EvalReport
from rag.evaluation.runs import Article, EvalProgress, evaluate_corpus

NAME = "COVID-QA"  # in messages, and (lower case) the collection of the throw-away index


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


def read_covid_qa(
    path: Path, articles: int | None = None
) -> tuple[list[Article], list[EvalQuestion]]:
    """The dataset, or its first `articles` articles and their questions (for tests and
    quick runs)."""
    docs, questions = load_covid_qa(path)
    if articles is not None:
        docs = docs[:articles]
        keep = {hashlib.sha256(a.text.encode("utf-8")).hexdigest() for a in docs}
        questions = [q for q in questions if q.doc_id in keep]
    return docs, questions


def run_covid_qa(
    path: Path,
    settings: Settings,
    *,
    embedder: Embedder | None = None,
    articles: int | None = None,
    baselines: bool = True,
    progress: EvalProgress | None = None,
    without: Collection[str] = (),
) -> EvalReport:
    """Index COVID-QA with `settings` in a temporary data dir, ask every question.

    `articles` limits the run to the first N articles (and their questions), for
    tests. With `baselines`, the same index is also searched dense-only and
    BM25-only, reported under `"baselines"`. `without` names retrieval adjustments
    (retrieval/adjustments.py) to switch off in the default search.
    """
    docs, questions = read_covid_qa(path, articles)
    return evaluate_corpus(
        NAME,
        docs,
        questions,
        settings,
        embedder=embedder,
        baselines=baselines,
        progress=progress,
        without=without,
    )
