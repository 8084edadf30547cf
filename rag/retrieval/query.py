"""Clean a question before it is searched: drop filler and stop words, keep meaning.

Two forms, one per search (measured on COVID-QA, docs/retrieval.md):
- `clean_query`, for keyword search (BM25) and for showing what was searched:
  "Hey, could you please tell me what the incubation period of COVID-19 is?" becomes
  "incubation period COVID-19".
- `dense_query`, for the embedding model: only the filler phrases go ("what the
  incubation period of COVID-19 is?"); a sentence model reads whole questions better.

In `clean_query`, negations (not, no, never, without, ...) and every word that is
neither in a filler phrase below nor in `text.STOP_WORDS` are kept: domain words are
never dropped. Question words that change the intent (why, how, when, where, who,
which) are kept too.

If cleaning would leave nothing (a question made only of common words), the
original question is used as is.

Left out: spelling correction, stemming, query expansion, languages other than English.
"""

from __future__ import annotations

import re

from rag.core.text import STOP_WORDS

# Phrases people put around a question that carry no information for search.
_FILLER_PHRASES = [
    r"\b(?:hi|hello|hey)(?: there)?\b",
    r"\bthanks?(?: you)?(?: in advance)?\b",
    r"\bcould you(?: please)?\b",
    r"\bcan you(?: please)?\b",
    r"\bwould you(?: please)?\b",
    r"\bplease\b",
    r"\b(?:i (?:want|would like|wanna|need) to know|i(?:'m| am) wondering|i wonder)\b",
    r"\btell me\b",
    r"\b(?:do|does) (?:anyone|anybody) know\b",
    r"\bin (?:the|this|these) (?:document|documents|docs|paper|papers|file|files|text)\b",
    r"\baccording to (?:the|this|these) (?:document|documents|docs|paper|papers|text)\b",
    r"\bkind of\b",
    r"\bsort of\b",
    r"\bbasically\b",
    r"\bactually\b",
]
_FILLER_RE = re.compile("|".join(_FILLER_PHRASES), re.IGNORECASE)

_TOKEN_RE = re.compile(r"[\w][\w\-'.]*[\w]|[\w]", re.UNICODE)


def dense_query(question: str) -> str:
    """The question for the embedding model: filler phrases dropped, words kept.

    A sentence-embedding model was trained on natural sentences; "what is the
    incubation period" embeds closer to the answer than "incubation period".
    """
    text = " ".join(_FILLER_RE.sub(" ", question).split()).strip(" ,;:")
    return text if _TOKEN_RE.search(text) else question.strip()


def clean_query(question: str) -> str:
    """The words of `question` worth embedding, in their original order and case."""
    text = _FILLER_RE.sub(" ", question)
    words = [w for w in _TOKEN_RE.findall(text) if w.lower() not in STOP_WORDS]
    cleaned = " ".join(words).strip()
    return cleaned if cleaned else question.strip()
