"""A question's steps cost time in proportion to its length: `named_words` in one pass
(the same words as the quadratic version it replaced, on the datasets' questions and
texts and on edge cases), and every other step that reads the question or the answer
kept under a ceiling on long texts of the shapes that would make a regex backtrack.

A quadratic step takes seconds at 256 KB and minutes at 1 MB: the ceilings here are
loose, and a step that is not linear cannot meet them. They are in CPU time (this
process's), so that other work on the machine does not make them fail.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable

import pytest

from rag.answering.prompts import build_prompt, standalone_question_messages
from rag.answering.stream import split_sentences
from rag.answering.support import claims_for, supporting_span
from rag.components.bm25_terms import tokenize
from rag.core.doc_terms import named_words
from rag.core.text import TRAILING_CITATIONS, citations, figures, sentence_spans
from rag.retrieval.periods import asks_latest, periods
from rag.retrieval.query import clean_query, dense_query
from tests.fixtures.paths import SHARED, need

MB = 1_000_000

# -- named_words: the same words, in one pass -------------------------------------------------

_WORD_RE = re.compile(r"[\w&'-]+", re.UNICODE)
_SENTENCE_END = re.compile(r"[.!?:]\s+[\"'(\[]*$")


def named_words_before(question: str) -> list[str]:
    """`named_words` as it was: every word looked at all the text before it."""
    out = []
    for m in _WORD_RE.finditer(question):
        w, before = m.group(), question[: m.start()]
        first = not before.strip(" \t\n\"'([") or _SENTENCE_END.search(before)
        if w[:1].isupper() and (not first or any(c.isupper() for c in w[1:])):
            out.append(w)
    return out


EDGES = [
    "", "A", "a", "NVIDIA", "Has Apple cut costs? If so, why. Please list them.",
    "' Apple", "''Apple", "Hi. ''(Bob", "x. (\nBob", "x. (\n Bob", "x.\nBob", "x:Bob",
    "x: Bob", '"Bob" and Al', "a. B. C", "Dogs'(Bob", 'x. ["(Bob went', "x.\u00a0Bob",
    'x.\u2003"Bob', "x. ''Bob", "Hi.\n\n  Bob", "(Apple) AND", "x.)\nBob",
    "\u00e9. \u00c9mile Zola",
    "   \t\n(\"[Apple", "Q1 2023: AAPL's 10-Q?", "What? Why! How: When. Who",
    "e.g. Intel and AMD", "U.S.A. and the U.K.", "x. - Bob", "x. 'Bob' said",
    "IBM's\u2019 Watson", "x?\n\"Bob\"", "... Bob", "x.  \t Bob!  Carol?  dave",
]  # fmt: skip


def test_named_words_matches_the_quadratic_version_on_edge_cases() -> None:
    for text in EDGES:
        assert named_words(text) == named_words_before(text), repr(text)


def _corpus() -> list[str]:
    """The datasets' questions and answers, and the start of each COVID-QA article."""
    texts: list[str] = []
    covid = json.loads(need(SHARED / "covid-qa" / "covidQA.json").read_text(encoding="utf-8"))
    for article in covid["data"]:
        for p in article["paragraphs"]:
            texts.append(p["context"][:4000])  # the quadratic version is slow on more
            for qa in p["qas"]:
                texts += [qa["question"], *(a["text"] for a in qa["answers"])]
    table = need(SHARED / "sec-10-q" / "qna_data.csv").read_text(encoding="utf-8-sig")
    for row in csv.DictReader(table.splitlines(keepends=True)):
        texts += [row["Question"], row["Answer"]]
    return texts


def test_named_words_matches_the_quadratic_version_on_the_datasets() -> None:
    texts = _corpus()
    assert len(texts) > 3000
    differ = [t[:80] for t in texts if named_words(t) != named_words_before(t)]
    assert differ == []
    assert sum(len(named_words(t)) for t in texts) > 5000  # names were found, not none


def _timed(fn: Callable[[str], object], text: str) -> float:
    """The CPU seconds of `fn(text)`."""
    t0 = time.process_time()
    fn(text)
    return time.process_time() - t0


@pytest.mark.parametrize(
    "text",
    [
        ("Has Apple cut costs in Q1 2023? If so, why. Please list NVIDIA's. " * MB)[:MB],
        "A. " * (MB // 3),  # every word a sentence's first
        "''(" * (MB // 3),  # words of apostrophes between openers
        "x" + " " * MB + "Bob",  # one long gap
        "Apple " * (MB // 6),
    ],
    ids=["prose", "sentences", "apostrophes", "gap", "names"],
)
def test_named_words_on_1mb_is_under_a_second(text: str) -> None:
    assert len(text) >= 0.99 * MB
    seconds = _timed(named_words, text)
    assert seconds < 1.0, f"{seconds:.2f} s"


# -- every other step of a question -----------------------------------------------------------

N = 256_000
# Texts whose shapes make a backtracking regex go back over what it read.
SHAPES = {
    "prose": ("Has Apple cut costs in Q1 2023? If so, why. Please list NVIDIA [1]. " * N)[:N],
    "one word": "a" * N,
    "spaces": "a" + " " * N + "b",
    "newline spaces": ("x\n" + " " * 1000) * (N // 1002),
    "dots": "." * N,
    "closers": "a." + ")" * N + "x",
    "sentences": "A. " * (N // 3),
    "quarters": "q1 " * (N // 3),
    "quarter spaces": "q1" + " " * N,
    "ordinals": "first quarter " * (N // 14),
    "fiscal": "fiscal " * (N // 7),
    "brackets": "[1," * (N // 3),
    "open bracket": "[" + "1," * (N // 2),
    "digits": "1" * N,
    "figures": "1,000," * (N // 6),
    "hyphens": "a" + "-" * N,
    "headings": "\n#" * (N // 2),
    "citations": ". [1]" * (N // 5),
}
STEPS: dict[str, Callable[[str], object]] = {
    "named_words": named_words,
    "clean_query": clean_query,
    "dense_query": dense_query,
    "periods": periods,
    "asks_latest": asks_latest,
    "tokenize": tokenize,
    "sentence_spans": sentence_spans,
    "citations": citations,
    "figures": figures,
    "trailing citations": lambda t: TRAILING_CITATIONS.sub(r"\2\1", t),
    "claims_for": lambda t: claims_for(t, 1),
    "supporting_span": lambda t: supporting_span(t, 1, t[:20_000]),
    "split_sentences": split_sentences,
    "build_prompt": lambda t: build_prompt(t, [], history=[{"role": "user", "content": t}]),
    "standalone": lambda t: standalone_question_messages(t, [{"role": "user", "content": t}]),
}


@pytest.mark.parametrize("step", list(STEPS))
def test_each_step_of_a_question_is_linear_on_long_texts(step: str) -> None:
    """256 KB texts of every shape, each step under 1 s of CPU (a quadratic one takes
    seconds to minutes here; these take 10 to 200 ms). 1 MB questions never get this
    far: they are refused at once (max_question_chars)."""
    slow = {}
    for shape, text in SHAPES.items():
        seconds = _timed(STEPS[step], text)
        if seconds > 1.0:
            slow[shape] = round(seconds, 2)
    assert slow == {}
