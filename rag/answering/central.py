"""An extractive summary of a whole document, without an LLM: the most central
sentences of each section, quoted in order, each with its citation.

Sections are runs of consecutive chunks with the same `Chunk.section` (a PDF's
outline, a Markdown heading). A document without them is cut by pages (PDFs: at most
`MAX_GROUPS` groups of consecutive pages) or by a fixed number of chunks. A sentence's
centrality is the cosine of its TF-IDF vector (idf over the document's sentences) with
its section's centroid: the sentence that says most of what its section says. Quoted
are whole prose sentences (not table rows, headings, cover-page capitals or fragments
cut by a chunk's edge); a section with none gets its short lines instead ("Item 3.
Defaults Upon Senior Securities: None.", a two-line note).

Why TF-IDF and not the embedding model: on this 2-core machine, embedding the 912
quotable sentences of the 80-page 2022 Q3 MSFT 10-Q with the local MiniLM (onnx-int8)
took 2.4 s, the whole TF-IDF summary 0.1 s. Which sections get a quote (the coverage)
does not depend on the scoring, only on the groups and on which sentences are
quotable, so the model's 24-fold cost buys no coverage; and TF-IDF keeps far inside
the 10 s per 100 pages on a busy machine (benchmarks/summary_coverage.py).

For a list request ("list every risk"), the sentences that name the topic's words are
quoted instead, in order, within `MAX_QUOTES`.

Left out: sentences merged or shortened (they are quoted as written), other languages'
stop words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rag.answering.stream import split_sentences
from rag.answering.summary_prompts import new_text
from rag.core.models import Chunk
from rag.core.text import STOP_WORDS

EXTRACTIVE_SUMMARY_LABEL = (
    "Extractive summary (no LLM configured): the most central sentences of each section, quoted."
)
EXTRACTIVE_LIST_LABEL = (
    "Extractive list (no LLM configured): the sentences that name {topic}, quoted."
)
MAX_GROUPS = 40  # a document without sections is cut into at most this many parts
MAX_QUOTES = 80  # a summary quotes at most this many sentences
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_WHOLE = re.compile(r"^[\"'“‘(]?[A-Z].*[.!?][\"'”’)\]]?$", re.DOTALL)


@dataclass(frozen=True)
class Group:
    """Consecutive chunks read as one section of the summary."""

    title: str  # the section's name, or "pages 3-5"
    chunks: tuple[Chunk, ...]


@dataclass(frozen=True)
class Quote:
    chunk: Chunk
    sentence: str


def groups(chunks: Sequence[Chunk]) -> list[Group]:
    """The document's sections, or its pages (or runs of chunks) when it has none."""
    if not chunks:
        return []
    if len({c.section for c in chunks if c.section}) >= 2:
        out: list[list[Chunk]] = []
        for c in chunks:
            if out and out[-1][-1].section == c.section:
                out[-1].append(c)
            else:
                out.append([c])
        return [Group(g[0].section or "Start", tuple(g)) for g in out]
    pages = [c.page for c in chunks if c.page is not None]
    if pages:
        first, last = min(pages), max(pages)
        per = math.ceil((last - first + 1) / MAX_GROUPS)
        by: dict[int, list[Chunk]] = {}
        for c in chunks:
            by.setdefault(((c.page or first) - first) // per, []).append(c)
        return [Group(_pages_label(g), tuple(g)) for _, g in sorted(by.items())]
    per = max(8, math.ceil(len(chunks) / MAX_GROUPS))
    return [
        Group(f"passages {i + 1}-{min(i + per, len(chunks))}", tuple(chunks[i : i + per]))
        for i in range(0, len(chunks), per)
    ]


def _pages_label(chunks: Sequence[Chunk]) -> str:
    first, last = chunks[0].page, chunks[-1].page
    return f"page {first}" if first == last else f"pages {first}-{last}"


def _quotable(sentence: str) -> bool:
    """A sentence worth quoting: whole prose, not a table row, a heading, a fragment that
    a chunk's edge cut, or a cover page's capitals."""
    words = sentence.split()
    if not 40 <= len(sentence) <= 600 or len(words) < 6:
        return False
    if not _WHOLE.match(sentence):  # starts with a capital, ends with . ! or ?
        return False
    letters = [ch for ch in sentence if ch.isalpha()]
    capitals = sum(ch.isupper() for ch in letters)
    return _mostly_words(sentence, 0.2) and capitals <= 0.3 * len(letters)


def _mostly_words(sentence: str, numbers: float) -> bool:
    """At most this share of the sentence's words hold digits (a table row: most)."""
    words = sentence.split()
    return sum(any(ch.isdigit() for ch in w) for w in words) <= numbers * len(words)


def _words(sentence: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(sentence)) if w not in STOP_WORDS]


def extract(
    chunks: Sequence[Chunk],
    *,
    topic: str = "",
    on_group: Callable[[int, int, Group], None] | None = None,
) -> list[tuple[Group, list[Quote]]]:
    """Each group with its quotes, in document order (groups without any are left out)."""
    parts = groups(chunks)
    candidates: list[list[Quote]] = []
    prev: Chunk | None = None
    for g in parts:
        found: list[Quote] = []
        short: list[Quote] = []  # what a section of short lines ("Item 3. None.") says
        seen: set[str] = set()  # overlapping or repeated text: each sentence once
        for c in g.chunks:
            for sentence in split_sentences(new_text(prev, c)):
                key = _key(sentence)
                if key in seen:
                    continue
                seen.add(key)
                if _quotable(sentence):
                    found.append(Quote(c, sentence))
                elif _words(sentence) and _mostly_words(sentence, 0.5):
                    short.append(Quote(c, sentence))
            prev = c
        candidates.append(found or short)
    if topic:
        return _mentions(parts, candidates, topic, on_group)
    docs = [set(_words(q.sentence)) for found in candidates for q in found]
    df = Counter(w for words in docs for w in words)
    idf = {w: math.log((1 + len(docs)) / (1 + n)) + 1.0 for w, n in df.items()}
    index = {w: i for i, w in enumerate(idf)}
    weights = np.array(list(idf.values()), dtype=np.float32)
    # Sentences per group: one, and one more per 15 candidates, within MAX_QUOTES overall.
    share = max(1, MAX_QUOTES // max(1, len(parts)))
    out = []
    quoted: set[str] = set()
    for i, (g, found) in enumerate(zip(parts, candidates, strict=True)):
        if on_group is not None:
            on_group(i + 1, len(parts), g)
        # A sentence quoted for an earlier section (boilerplate) is not quoted again,
        # unless the section says nothing else.
        fresh = [q for q in found if _key(q.sentence) not in quoted] or found[:1]
        if not fresh:
            continue
        best = _central(fresh, index, weights, min(share, 1 + len(fresh) // 15, 3))
        quoted.update(_key(q.sentence) for q in best)
        out.append((g, best))
    return _cap(out)


def _key(sentence: str) -> str:
    return " ".join(sentence.casefold().split())


def _central(found: list[Quote], index: dict[str, int], weights: np.ndarray, k: int) -> list[Quote]:
    """The `k` sentences closest to their group's TF-IDF centroid, in document order."""
    rows = np.zeros((len(found), len(index)), dtype=np.float32)
    for r, q in enumerate(found):
        for w, n in Counter(_words(q.sentence)).items():
            rows[r, index[w]] = (1 + math.log(n)) * weights[index[w]]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    rows /= np.where(norms > 0, norms, 1)
    centroid = rows.sum(axis=0)
    scores = rows @ centroid / (np.linalg.norm(centroid) or 1.0)
    best = sorted(np.argsort(-scores, kind="stable")[:k].tolist())
    return [found[b] for b in best]


def _mentions(
    parts: list[Group],
    candidates: list[list[Quote]],
    topic: str,
    on_group: Callable[[int, int, Group], None] | None,
) -> list[tuple[Group, list[Quote]]]:
    """Per group, the sentences that contain a word of the topic (its first five letters,
    so "risk" finds "risks" and "risky")."""
    stems = {w[:5] for w in _words(topic)}
    out = []
    for i, (g, found) in enumerate(zip(parts, candidates, strict=True)):
        if on_group is not None:
            on_group(i + 1, len(parts), g)
        hits = [q for q in found if stems & {w[:5] for w in _words(q.sentence)}]
        if hits:
            out.append((g, hits))
    return _cap(out)


def _cap(out: list[tuple[Group, list[Quote]]]) -> list[tuple[Group, list[Quote]]]:
    """At most MAX_QUOTES quotes: each group keeps its first, then the rest in order."""
    total = sum(len(q) for _, q in out)
    if total <= MAX_QUOTES:
        return out
    room = max(0, MAX_QUOTES - len(out))
    capped = []
    for g, quotes in out:
        extra = quotes[1 : 1 + room]
        room -= len(extra)
        capped.append((g, quotes[:1] + extra))
    return capped


def render(picked: list[tuple[Group, list[Quote]]], number: Callable[[Chunk], int],
           label: str) -> str:  # fmt: skip
    """The summary's text: the label, then each group's title and its quotes, cited."""
    lines = [label]
    for g, quotes in picked:
        lines.append(f"\n{g.title}:\n")
        lines += [f"> {q.sentence} [{number(q.chunk)}]\n>" for q in quotes]
        lines[-1] = lines[-1][:-2]
    return "\n".join(lines)
