"""Find the sentence of a source that supports an answer, to highlight it for people.

For source [n], the answer's sentences that cite [n] (all of the answer if none
does) are compared with each sentence of the source's text by the content words
they share (stop words removed, case folded). The best sentence wins if it shares
at least two words (one for very short claims): a highlight that is a guess is worse
than none.

Left out: embedding similarity (the words an answer copies from its source are a
strong enough signal here, and this runs for every source on every page render),
stemming, and highlighting more than one sentence.
"""

from __future__ import annotations

import re

from .query import STOP_WORDS

# A sentence ends at . ! or ? (with any closing quotes or brackets) followed by space
# and a capital, a digit or an opening quote, so "4.1", "e.g. this" and "3.5 mg" stay
# whole; a paragraph break, a Markdown heading's line or the end of the text also
# ends one.
_SENTENCE = re.compile(
    r"\S.*?(?:[.!?][\"')\]]*(?=\s+[\"'(\[]?[A-Z0-9]|\s*$)|(?=\n\s*\n|\n {0,3}#{1,6}\s)|$)",
    re.DOTALL,
)
_WORD = re.compile(r"\w+", re.UNICODE)
_CITES = re.compile(r"\[(\d{1,3}(?:\s*,\s*\d{1,3})*)\]")  # [1], [2][3], [1, 2]
_TRAILING_CITES = re.compile(r"([.!?])((?:\s*\[\d{1,3}(?:\s*,\s*\d{1,3})*\])+)")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of `text`, in order (DocChat's one sentence splitter:
    the highlighted support and the extractive quotes agree on what a sentence is)."""
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]


def _content_words(text: str) -> set[str]:
    words = {w.lower() for w in _WORD.findall(_CITES.sub(" ", text))}
    return {w for w in words if w not in STOP_WORDS and (len(w) > 2 or w.isdigit())}


def claims_for(answer: str, n: int) -> str:
    """The sentences of `answer` that cite source `n`, or the whole answer if none does."""
    # "Cats eat fish. [1]" cites the sentence before it: move such citations inside.
    answer = _TRAILING_CITES.sub(r"\2\1", answer)
    cited = [answer[s:e] for s, e in sentence_spans(answer) if n in _cited(answer[s:e])]
    return " ".join(cited) if cited else answer


def _cited(sentence: str) -> set[int]:
    return {int(x) for m in _CITES.finditer(sentence) for x in m.group(1).split(",")}


def supporting_span(answer: str, n: int, text: str) -> tuple[int, int] | None:
    """The span of the sentence of `text` (source `n`) that best supports `answer`."""
    claim = _content_words(claims_for(answer, n))
    if not claim:
        return None
    needed = 1 if len(claim) <= 2 else 2
    best: tuple[int, int, tuple[int, int]] | None = None  # (shared, -other words, span)
    for start, end in sentence_spans(text):
        words = _content_words(text[start:end])
        shared = len(claim & words)
        # Shared words first; among equals, the sentence with less else in it.
        key = (shared, -len(words - claim), (start, end))
        if shared >= needed and (best is None or key[:2] > best[:2]):
            best = key
    return best[2] if best else None
