"""The figures step of the claim check: is each figure of a sentence in its sources?

`check_figures` looks up every figure of a sentence (figures.py reads them) in the
sources it cites:
- a figure a source writes (`same_figure`) is found; a small whole count ("7 days")
  only near the sentence's words (the three units sharing most of them), or spelled out
  there ("two"): small counts are in every text;
- else one operation on two of the source's figures may give it (`computed_from`),
  first on the figures the sentence itself names ("rose 12.2 % from 12,755 to 14,316"),
  then on those of the units nearest the sentence, never on all of a table's figures
  (some pair lands on almost any value);
- a year or a date the sources do not write is found when another source of the same
  document has it, or a table's header splits it ("March 31," over "2022 2023"); it is
  missing when the sources date their facts as precisely (they do, and not so);
  otherwise it cannot be checked (a table's dates head its columns, often in the chunk
  before): the sentence is left to its other figures and words, unsure;
- an amount with a scale word whose digits a source writes without a known scale
  ("$82,959 million" and a table's "82,959" whose "(in millions)" is in another chunk)
  is found, unsure;
- a figure whose direction word says the other way from its source is missing
  ("increased 6 %" where the source has "(6)%", or only "decreased" beside it), as is a
  sentence at odds with itself ("decreased from 1,637 to 3,788").

Left out: the direction of a figure only a comparison of two columns shows
("decreased to 20,766" beside a prior period's 19,516), a sign written on one side
only ("(362)" and "362": accounting writes either).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import pairwise

from rag.answering.claim_text import SourceText, content_words
from rag.answering.figures import Figure, computed_from, figures_in, same_figure

# A count this small ("3 patients") is too common to back a sentence on its own.
_SMALL = 10
# Words that give a figure a direction: up, or down.
_WAY = re.compile(
    r"(?i)\b(?:(?P<up>increas\w*|ris(?:e|es|en|ing)|rose|gr[eo]w\w*|higher|gain\w*|up|more|"
    r"greater|improv\w*|expand\w*|climb\w*)|(?P<down>decreas\w*|declin\w*|f[ae]ll\w*|"
    r"drop\w*|lower|down|loss\w*|fewer|less|reduc\w*|shr[iau]nk\w*|contract\w*))\b"
)
_NUMBER_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


@dataclass
class FigureCheck:
    """What the figures of one sentence say."""

    missing: str = ""  # the first figure not found, as written ("12.4 %", "increased 6 %")
    telling: bool = False  # a figure found that backs the sentence on its own
    source: int = 0  # where most of the found figures are: the source, and its unit
    span: tuple[int, int] | None = None
    operation: str = ""  # a computed figure's operation: "1,577 / 2,394"
    unsure: bool = False  # a figure's scale or date could not be checked
    unchecked: str = ""  # the first such figure, as written


def tells(f: Figure) -> bool:
    """Whether a figure found in a source backs a sentence on its own: not a year or a
    date (every filing has them), not a small whole count."""
    if f.kind in ("year", "date"):
        return False
    return not (abs(f.value) < _SMALL and f.value == int(f.value) and f.kind == "number")


def check_figures(body: str, pool: list[SourceText]) -> FigureCheck:
    """Each figure of the sentence `body` looked up in the sources `pool` (the module
    docstring says how); stops at the first one missing."""
    out = FigureCheck()
    figures = figures_in(body)
    odd = _from_to(body, figures)
    if odd:
        out.missing = odd
        return out
    words = content_words(body)
    best: dict[tuple[int, int], int] = {}  # (source n, unit) -> telling figures found there
    for f in figures:
        hits = [(p, g) for p in pool for g in p.figures if same_figure(f, g)]
        if not tells(f) and f.kind == "number":
            hits = [(p, g) for p, g in hits if p.unit_at(g.start) in p.near(words)]
            if not hits and _spelled(f, pool, words):
                continue
        if not hits and f.kind in ("year", "date"):
            known = _time(f, pool)
            if known is None:
                out.missing = f.text
                return out
            if not known:
                out.unsure, out.unchecked = True, out.unchecked or f.text
            continue
        if not hits and f.scale != 1.0:
            hits = [(p, g) for p in pool if not p.known_scale for g in p.figures
                    if _same_digits(f, g)]  # fmt: skip
            if hits:
                out.unsure, out.unchecked = True, out.unchecked or f.text
        way = _direction(body, f.start, f.end)
        if hits and way and all(_opposed(way[1], p, g) for p, g in hits):
            out.missing = f"{way[0]} {f.text}"  # "increased 6 %" where the source has "(6)%"
            return out
        for p, g in hits:
            key = (p.n, p.unit_at(g.start))
            best[key] = best.get(key, 0) + tells(f)
        out.telling = out.telling or (bool(hits) and tells(f))
        if not hits:
            found = _computed(f, figures, pool, words, out)
            if found is None:
                out.missing = f.text
                return out
            best[found] = best.get(found, 0) + 1
    if best:
        (n, unit), _ = max(best.items(), key=lambda kv: (kv[1], -kv[0][0]))
        out.source, out.span = n, next(p for p in pool if p.n == n).units[unit]
    return out


def _time(f: Figure, pool: list[SourceText]) -> bool | None:
    """A year or a date no cited source writes so: True when its document has it, or a
    table's header splits it; None (missing) when the sources date their facts as
    precisely; False (unsure) when they do not."""
    times = [g for p in pool for g in p.times]
    if any(same_figure(f, g) for g in times):
        return True
    year, day = divmod(int(f.value), 10000)
    if f.kind == "date" and year and day % 100:
        same_day = any(int(g.value) % 10000 == day for g in times if g.kind == "date")
        if same_day and any(
            int(g.value) // 10000 == year if g.kind == "date" else int(g.value) == year
            for g in times
        ):
            return True
    if any(_dated(f, g) for p in pool for g in p.figures):
        return None
    return False


def _dated(claim: Figure, source: Figure) -> bool:
    """Whether a source's figure is a date as precise as the claim's (a day for a day, a
    year or a date for a year)."""
    if claim.kind == "year":
        return source.kind in ("year", "date")
    return source.kind == "date" and int(source.value) % 100 != 0 and int(source.value) > 10000


def _computed(
    f: Figure,
    figures: list[Figure],
    pool: list[SourceText],
    words: frozenset[str],
    out: FigureCheck,
) -> tuple[int, int] | None:
    """The evidence (source n, unit) of one operation that gives `f`, or None; the
    operation goes in `out`."""
    for p in pool:
        named = [g for h in figures for g in p.figures if h is not f and same_figure(h, g)]
        near = p.near(words)
        nearby = [g for g in p.figures if p.unit_at(g.start) in near]
        op = computed_from(f, named) or computed_from(f, nearby)
        if op:
            out.operation = out.operation or op
            at = p.text.find(op.strip("( ").split(" ", 1)[0])  # the first operand
            return p.n, p.unit_at(max(at, 0))
    return None


def _from_to(text: str, figures: list[Figure]) -> str | None:
    """A sentence at odds with itself: "decreased from 1,637 to 3,788". The direction word
    and the figure after "to", as the reason, or None."""
    for a, b in pairwise(figures):
        if a.kind != b.kind or a.kind not in ("number", "currency", "percent"):
            continue
        if not re.fullmatch(r"\s*(?:million|billion|thousand)?\s*to\s*", text[a.end : b.start]):
            continue
        if not re.search(r"(?i)\bfrom\s*$", text[max(0, a.start - 12) : a.start]):
            continue
        way = _direction(text, a.start, b.end)
        if way and (abs(b.value) - abs(a.value)) * way[1] < 0:
            return f"{way[0]} to {b.text}"
    return None


def _direction(text: str, start: int, end: int) -> tuple[str, int] | None:
    """The direction word nearest a figure within its clause ("increased", +1; "fell",
    -1), or None."""
    lo = max(text.rfind(c, 0, start) for c in ",;:(") + 1
    ends = [i for i in (text.find(c, end) for c in ",;:)") if i >= 0]
    hi = min(ends) if ends else len(text)
    found = [(abs(m.start() - start), m.group(), 1 if m["up"] else -1)
             for m in _WAY.finditer(text, max(lo, start - 50), min(hi, end + 30))]  # fmt: skip
    return min(found)[1:] if found else None


def _opposed(way: int, p: SourceText, g: Figure) -> bool:
    """Whether the source says the other way for its figure `g`: written negative (an
    accounting "(6)%") when the claim says up; written plain in a row that writes other
    percentages negative when the claim says down; or its sentence or row has only words
    of the other direction."""
    if way > 0 and g.signed and g.value < 0:
        return True
    a, b = p.units[p.unit_at(g.start)]
    if way < 0 and g.kind == "percent" and not g.signed:
        row = [h for h in p.figures if a <= h.start < b and h.kind == "percent"]
        if any(h.signed and h.value < 0 for h in row):
            return True
    ways = {1 if m["up"] else -1 for m in _WAY.finditer(p.text, a, b)}
    return ways == {-way}


def _spelled(f: Figure, pool: list[SourceText], words: frozenset[str]) -> bool:
    """Whether a small count is written in words near the sentence's words: "two"."""
    if not 0 <= f.value < len(_NUMBER_WORDS) or f.value != int(f.value):
        return False
    word = re.compile(rf"(?i)\b{_NUMBER_WORDS[int(f.value)]}\b")
    return any(word.search(p.text, *p.units[i]) for p in pool for i in p.near(words))


def _same_digits(claim: Figure, source: Figure) -> bool:
    """A claim with a scale word and the same digits in a source of no known scale."""
    if claim.kind not in ("number", "currency") or source.kind not in ("number", "currency"):
        return False
    if source.scale != 1.0:
        return False
    written = abs(claim.value) / claim.scale
    return abs(written - abs(source.value)) <= claim.tolerance / claim.scale + 1e-9
