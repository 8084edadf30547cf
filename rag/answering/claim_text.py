"""The text side of the claim check: an answer's claims, and each source's evidence.

`answer_sentences` splits an answer into the sentences the check decides, with the
offsets of each in the answer and the numbers it cites. Sentences and citations are
`rag.core.text`'s ("Cats eat fish. [1]" cites the sentence before: the citations are
moved inside it, which keeps every offset); besides, a list item, a quoted line
("> ... [2]") and a table row are each one claim. Not claims, so skipped: headings, a
line that only leads in to a list (it ends with ":"), a paragraph with a colon right
before quotes (their caption, as an extractive answer's), questions, a table's header row
(no figure), fragments of fewer than three words without a figure, and a sentence
about the sources themselves without a figure or a citation ("The documents do not
say when.").

`SourceText` reads one source once for all the sentences: its evidence units (its
sentences, or each line of a table: a sentence spanning two or more lines with two
or more numbers each is a table's rows), their content words, its figures (at the
scale its table declares, or failing that, another source of its document does),
and what names it (its text, the document's running header and file name).

Left out: stemming beyond plurals and shared prefixes, tables across chunks.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from rag.answering.figures import Figure, figures_in, text_scale
from rag.core.models import Source
from rag.core.text import CITATION, STOP_WORDS, TRAILING_CITATIONS, citations, sentence_spans

_HEADING = re.compile(r"\s{0,3}#{1,6}\s")
_QUOTE = re.compile(r"\s{0,3}>\s?")
_LIST = re.compile(r"\s*(?:[-*+\u2022]|\d{1,2}[.)])\s+")
_ROW = re.compile(r"\s*\|")
_RULE = re.compile(r"[\s|:\-]*-{3}[\s|:\-]*")
_MARKS = re.compile(r"\*\*|__|`|(?<!\w)[*_](?=\S)|(?<=\S)[*_](?!\w)")
_CITED = re.compile(rf"\s*{CITATION.pattern}")
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
_NUMBER = re.compile(r"\d[\d,.]*")
_SPACE_PUNCT = re.compile(r"\s+([.,;:!?)])")
# A sentence about the sources rather than from them: "The documents do not say when."
_META = re.compile(
    r"(?i)\b(?:the|these|those|provided|given|available)\s+(?:\w+\s+)?"
    r"(?:documents?|sources?|context|passages?|excerpts?|texts?|information)\b"
)
_NEGATION = re.compile(r"(?i)\b(?:not|no|cannot|none|neither|nor)\b|n't\b")
_GLUE = r"(?:[\s-]+(?i:and|of|the|for|in|&))*[\s-]+"  # between an acronym's spelled-out words
MIN_WORDS = 3  # a claim has at least this many words, or a figure


@dataclass(frozen=True)
class Sentence:
    """One claim of an answer: its place, what is compared, what it cites."""

    text: str  # as in the answer, citations included
    start: int  # its offsets in the answer
    end: int
    body: str  # without citations, Markdown marks or list marks, spaces folded
    cites: tuple[int, ...]  # the numbers it cites, each once, in order
    quote: bool = False  # a quoted line ("> ..."): meant word for word


def plain(text: str) -> str:
    """`text` as compared: citations, Markdown marks and table bars out, spaces folded."""
    text = _MARKS.sub("", _CITED.sub("", text)).replace("|", " ")
    return _SPACE_PUNCT.sub(r"\1", " ".join(text.split()))


def answer_sentences(text: str) -> list[Sentence]:
    """The claims of an answer, in order (see the module docstring for what is skipped)."""
    # "fish. [1]" becomes "fish [1].": the same length, so offsets hold for `text`.
    swapped = TRAILING_CITATIONS.sub(r"\2\1", text)
    out = []
    parts = _segments(swapped)
    for i, (start, end, kind) in enumerate(parts):
        after = parts[i + 1][2] if i + 1 < len(parts) else ""
        if kind == "text" and after == "quote" and ":" in swapped[start:end]:
            continue  # a caption of the quotes: "The most relevant sentences, quoted:"
        spans = [(start, end)] if kind != "text" else sentence_spans(swapped[start:end])
        for a, b in spans if kind != "text" else [(start + a, start + b) for a, b in spans]:
            body = plain(swapped[a:b])
            if _is_claim(body, kind, bool(CITATION.search(swapped, a, b))):
                cites = tuple(dict.fromkeys(citations(text[a:b])))
                out.append(Sentence(text[a:b], a, b, body, cites, quote=kind == "quote"))
    return out


def _segments(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of the answer's parts: "text" (sentences to split), "quote"
    or "row" (one claim each); headings, table rules and blank lines end a text part."""
    out: list[tuple[int, int, str]] = []
    part: list[int] = []  # [start, end] of the text part under way
    pos = 0
    for line in text.splitlines(keepends=True):
        s, e = pos, pos + len(line.rstrip("\r\n"))
        pos += len(line)
        body = text[s:e]
        quote, item = _QUOTE.match(body), _LIST.match(body)
        if part and (not body.strip() or quote or item or _HEADING.match(body) or _ROW.match(body)):
            out.append((part[0], part[1], "text"))
            part = []
        if not body.strip() or _HEADING.match(body) or _RULE.fullmatch(body):
            continue
        if quote:
            if body[quote.end() :].strip():
                out.append((s + quote.end(), e, "quote"))
        elif _ROW.match(body):
            out.append((s, e, "row"))
        elif item:
            part = [s + item.end(), e]
        elif part:
            part[1] = e
        else:
            part = [s, e]
    if part:
        out.append((part[0], part[1], "text"))
    return out


def _is_claim(body: str, kind: str, cited: bool) -> bool:
    if not body or body.endswith((":", "?")):
        return False
    has_figure = bool(figures_in(body))
    if kind == "row":
        return has_figure  # a header row names columns, it claims nothing
    if len(body.split()) < MIN_WORDS and not has_figure:
        return False
    meta = _META.search(body) and _NEGATION.search(body)
    return not (meta and not has_figure and not cited)


def content_words(text: str) -> frozenset[str]:
    """The words that carry meaning, each cut to a stem: lower case, stop words out,
    plurals and possessives dropped, the first 6 letters kept ("increased" and
    "increase" agree)."""
    out = set()
    for m in _WORD.finditer(text):
        w = m.group().lower().replace("\u2019", "'")
        w = w[:-2] if w.endswith("'s") else w
        if len(w) < 3 or w in STOP_WORDS:
            continue
        if w.endswith("ies") and len(w) > 4:
            w = w[:-3] + "y"
        elif w.endswith("s") and not w.endswith("ss") and len(w) > 3:
            w = w[:-1]
        out.add(w[:6])
    return frozenset(out)


class SourceText:
    """One source as the check reads it (see the module docstring)."""

    def __init__(self, source: Source, scale: float, known: bool) -> None:
        chunk = source.chunk
        self.n = source.n
        self.doc_id = chunk.doc_id
        self.text = chunk.text
        self.scale = scale
        self.known_scale = known  # declared by the chunk or another of its document's
        self.times: list[Figure] = []  # the years and dates of its document's sources
        # What names the source: the chunk, its document's running header, its file.
        self.about = " ".join((chunk.text, chunk.context, chunk.file.rsplit(".", 1)[0]))

    @cached_property
    def units(self) -> list[tuple[int, int]]:
        """Its evidence units: sentences, or a table's lines."""
        out = []
        for s, e in sentence_spans(self.text):
            lines, pos = [], s
            for line in self.text[s:e].split("\n"):
                if line.strip():
                    lines.append((pos, pos + len(line)))
                pos += len(line) + 1
            rows = sum(1 for a, b in lines if len(_NUMBER.findall(self.text, a, b)) >= 2)
            out.extend(lines if len(lines) > 1 and rows >= 2 else [(s, e)])
        return out

    @cached_property
    def words(self) -> list[frozenset[str]]:
        return [content_words(self.text[a:b]) for a, b in self.units]

    @cached_property
    def figures(self) -> list[Figure]:
        return figures_in(self.text, scale=self.scale)

    @cached_property
    def own_times(self) -> list[Figure]:
        """Its years and dates, with those of its running header and file name."""
        return [f for f in figures_in(self.about) if f.kind in ("year", "date")]

    @cached_property
    def _folded(self) -> tuple[str, list[int]]:
        """The text as `plain` makes it, and where each of its characters was."""
        keep: list[int] = []
        out: list[str] = []
        cut = [(m.start(), m.end()) for m in _CITED.finditer(self.text)]
        k = 0
        space = False
        for i, ch in enumerate(self.text):
            while k < len(cut) and cut[k][1] <= i:
                k += 1
            if k < len(cut) and cut[k][0] <= i:
                continue
            if ch.isspace():
                space = bool(out)
                continue
            if space and ch not in ".,;:!?)":
                out.append(" ")
                keep.append(i)
            space = False
            out.append(ch)
            keep.append(i)
        return "".join(out), keep

    def near(self, words: frozenset[str], k: int = 3) -> set[int]:
        """The `k` units sharing most of `words` (ties: the first): where a small count or
        a computed figure's operands must be. 3: a sentence and its neighbours, or a row
        and the header rows."""
        shares = [len(words & w) for w in self.words]
        return set(sorted(range(len(shares)), key=lambda i: -shares[i])[:k])

    def find(self, body: str) -> tuple[int, int] | None:
        """The span of `body` (a `plain` sentence) in the text, word for word, or None."""
        needle = body.rstrip(".!?;") if len(body) > 1 else body
        folded, keep = self._folded
        if len(needle) < 12:
            return None
        i = folded.find(needle)
        if i < 0 and len(folded.lower()) == len(folded):  # "Its ..." quoting "... its ..."
            i = folded.lower().find(needle.lower())
        return (keep[i], keep[i + len(needle) - 1] + 1) if i >= 0 else None

    @cached_property
    def _starts(self) -> list[int]:
        return [a for a, _ in self.units]

    def unit_at(self, pos: int) -> int:
        """The index of the evidence unit holding character `pos` (the nearest before)."""
        return max(bisect.bisect_right(self._starts, pos) - 1, 0)

    def names(self, name: str) -> bool:
        """Whether the source names `name` (case aside; a plural's stem will do), or
        spells out an acronym ("R&D": "research and development")."""
        stem = name[:-1] if name.endswith("s") and len(name) > 3 else name
        if re.search(rf"(?<!\w){re.escape(stem)}", self.about, re.IGNORECASE):
            return True
        letters = [c for c in name if c.isalpha()]
        # Two letters spell out too much by chance ("MT": "made to"), but "R&D".
        enough = len(letters) >= 3 or (len(letters) == 2 and "&" in name)
        if not (enough and len(letters) <= 6 and all(c.isupper() for c in letters)):
            return False
        # Each letter a word's, or the last ones a capitals' word ("DCAI": "Data Center
        # and AI").
        for cut in range(len(letters), 1, -1):
            words = [rf"(?i:{c})\w*" for c in letters[:cut]]
            if cut < len(letters):
                words.append("".join(letters[cut:]) + r"\b")
            if re.search(r"\b" + _GLUE.join(words), self.about):
                return True
        return False


def read_sources(sources: Sequence[Source]) -> dict[int, SourceText]:
    """Each source read for the check, by number.

    A chunk that declares no scale for its bare amounts takes the one another source of
    its document declares (a table cut in two keeps "(in millions)" in its first chunk
    only); and a source's years and dates are its document's (those of every source
    from that document): a table's columns are headed by dates a chunk further up.
    """
    declared: dict[str, float] = {}
    for s in sources:
        scale = text_scale(s.chunk.text)
        if scale != 1.0:
            declared.setdefault(s.chunk.doc_id, scale)
    out = {}
    for s in sources:
        own = text_scale(s.chunk.text)
        scale = own if own != 1.0 else declared.get(s.chunk.doc_id, 1.0)
        out[s.n] = SourceText(s, scale, own != 1.0 or s.chunk.doc_id in declared)
    for p in out.values():
        p.times = [f for q in out.values() if q.doc_id == p.doc_id for f in q.own_times]
    return out
