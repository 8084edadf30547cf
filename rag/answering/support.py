"""Find the sentence of a source that supports an answer, to highlight it for people.

Sentences, citations and stop words are `rag.core.text`'s.

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

from rag.core.text import CITATION, STOP_WORDS, TRAILING_CITATIONS, citations, sentence_spans

_WORD = re.compile(r"\w+", re.UNICODE)


def _content_words(text: str) -> set[str]:
    words = {w.lower() for w in _WORD.findall(CITATION.sub(" ", text))}
    return {w for w in words if w not in STOP_WORDS and (len(w) > 2 or w.isdigit())}


def claims_for(answer: str, n: int) -> str:
    """The sentences of `answer` that cite source `n`, or the whole answer if none does."""
    # "Cats eat fish. [1]" cites the sentence before it: move such citations inside.
    answer = TRAILING_CITATIONS.sub(r"\2\1", answer)
    cited = [answer[s:e] for s, e in sentence_spans(answer) if n in citations(answer[s:e])]
    return " ".join(cited) if cited else answer


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
