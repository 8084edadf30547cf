"""DocChat's text rules, one of each: chat messages, citations, sentences, stop words.

Every stage that reads a citation, splits a sentence or drops a stop word uses the
helpers here, so the prompt, the highlighted support, the extractive quotes and
the keyword index agree on what a citation, a sentence and a stop word are.

Left out: languages other than English, abbreviations beyond what the sentence
rule below covers (e.g. "Dr. Smith" ends a sentence), nested or named citations.
"""

from __future__ import annotations

import re

import bm25s

# One chat message as the openai client takes it: {"role": ..., "content": ...}.
Message = dict[str, str]

# ---- citations ------------------------------------------------------------------------

# A citation is a bracket of source numbers: [1], [1, 2], [1-3] (a range), and any
# number of them in a row ([1][2]). En dashes count as range dashes (models write them).
_NUMBER = r"\d{1,3}(?:\s*[-\u2013]\s*\d{1,3})?"
CITATION = re.compile(rf"\[({_NUMBER}(?:\s*,\s*{_NUMBER})*)\]")
# Citations right after a sentence's end ("Cats eat fish. [1]").
TRAILING_CITATIONS = re.compile(rf"([.!?])((?:\s*{CITATION.pattern})+)")
_ITEM = re.compile(r"(\d+)(?:\s*[-\u2013]\s*(\d+))?")
_MAX_RANGE = 50  # a longer "range" is a typo or a year span, not a list of sources


def citations(text: str) -> list[int]:
    """Every source number cited in `text`, in order of appearance (repeats kept)."""
    out: list[int] = []
    for m in CITATION.finditer(text):
        for r in _ITEM.finditer(m.group(1)):
            lo = int(r.group(1))
            hi = int(r.group(2) or lo)
            out.extend(range(lo, hi + 1) if lo <= hi < lo + _MAX_RANGE else (lo,))
    return out


def cited_numbers(text: str, n_sources: int) -> tuple[int, ...]:
    """Source numbers cited in `text`, in order of first use, ignoring out-of-range ones."""
    return tuple(dict.fromkeys(n for n in citations(text) if 1 <= n <= n_sources))


# ---- sentences ------------------------------------------------------------------------

# A sentence ends at . ! or ? (with any closing quotes or brackets) followed by space
# and a capital, a digit or an opening quote, so "4.1", "e.g. this" and "3.5 mg" stay
# whole; a paragraph break, a Markdown heading's line or the end of the text also
# ends one.
_SENTENCE = re.compile(
    r"\S.*?(?:[.!?][\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9]|\s*$)|(?=\n\s*\n|\n {0,3}#{1,6}\s)|$)",
    re.DOTALL,
)


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, in order (DocChat's one sentence splitter:
    the highlighted support, the extractive quotes and BM25's best-sentence score agree
    on what a sentence is)."""
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]


# ---- stop words -----------------------------------------------------------------------

# Common English function words, for cleaning questions and comparing an answer with
# its sources. Negations and intent-bearing question words are deliberately absent:
# "not", "no", "nor", "never", "without", "how", "why", ...
STOP_WORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for
    from further had has have having he her here hers herself him himself his i if in
    into is it its itself just me more most my myself of off on once only or other our
    ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very
    was we were what whats what's which while whom will with would you your yours
    yourself yourselves let lets let's ok okay um uh like really maybe know tell explain
    describe give show find mean means
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# Words a question uses to say what kind of answer it wants. The dense side reads
# them; as BM25 keywords they only add noise.
QUESTION_WORDS = frozenset(
    "what which who whom whose when where why how does did do can could would should".split()  # noqa: SIM905
)

# BM25's stop words are bm25s' short English list plus the question words, not
# STOP_WORDS: the index keeps "no", "not", pronouns and the like, and the COVID-QA
# figures in docs/ (and every saved index, see bm25_file.INDEX_VERSION) were
# measured with this list.
BM25_STOP_WORDS = frozenset(bm25s.stopwords.STOPWORDS_EN) | QUESTION_WORDS


# A figure: a number with thousands separators (82,959) or a decimal point (25.3),
# as reports print amounts. Plain integers (years, counts, "HIV-1") are not figures.
FIGURE = re.compile(
    r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\d,])|(?<![\d.,])\d+\.\d+(?![\d.])"
)


def figures(text: str) -> list[str]:
    """The figures in `text`, in order, as written ("82,959", "25.3")."""
    return FIGURE.findall(text)
