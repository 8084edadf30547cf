"""Figures in text, normalized, and whether a claim's figure is a source's or one step from two.

`figures_in` reads the numbers, percentages, amounts of money, years and dates of a text
into `Figure`s with a normalized value and the tolerance of their rounding:
- thousands separators (",", thin spaces) and decimals; currency before or after ($, US$,
  €, £, ¥, USD, EUR, GBP, JPY; "$ 63,355" as PDFs print it); signs "-", "+", "−", an
  en dash that is not a range's, and accounting parentheses "(1,577)", "$(1,577)", "(3)%";
- scale words (thousand, million, billion, trillion, bn, mn; k, m, M, B glued to the
  digits of an amount of money: "$5m", "€3k"; alone "5m" is metres, "2M" a molarity, "5B"
  a figure's panel) and a text's declared scale ("(in millions, except per share
  amounts)", `text_scale`) for its bare amounts;
- "%", "percent", "per cent"; "pp" and "percentage points" are kind percent too (a
  difference of two percentages is written in their unit), basis points are 1/100 of one;
- years (1900-2100, written plainly) and dates ("March 31, 2023", "Mar. 31 2023",
  "31 March 2023", "March 2023" (day 0), "March 31" (year 0), "2023-03-31", "3/31/2023"
  read month first), valued yyyymmdd;
- ranges: "10-12%" and "$1.2 to $1.5 billion" are two figures, the first taking the
  second's percent or scale word.
Not figures (they would raise false alarms): citations "[2]", numbers glued to letters
or joined to them by a hyphen ("Q3", "10-Q", "COVID-19", "HIV-1", "3rd", "5-year", "10mg"),
numbers after "Item", "Note", "Part", "Level", "Phase", "Type" and the like, list
numbers ("1." or "1)" starting a line, "(2) Lower volume"), fractions and times ("1/2",
"10:30"). Words like "approximately" are not read: the claim's rounding says how close.

`same_figure`: a source's figure is a claim's as written (the source rounds to it);
`computed_from`: one operation on two source figures gives it.

Left out: numbers in words ("twelve", "a million"), decimal commas ("15,3"), two-digit
years ("3/31/23"), "Q1 2023" as a date (its year is read), years glued to letters
("FY2023"), units other than currency and percent ("5 mg" is the number 5), signs in
words ("decreased by 5" is 5), and chains of operations.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

from rag.core.text import CITATION

FigureKind = Literal["number", "percent", "currency", "year", "date"]


@dataclass(frozen=True)
class Figure:
    text: str  # as written: "$15.3 billion", "(1,577)", "12.5 %", "March 31, 2023"
    start: int  # in the text it was read from
    end: int
    value: float  # normalized: scale applied, a percent in percent ("12.5 %": 12.5), a date
    # as yyyymmdd (day 0: a month; year 0: no year), a year as the year; negative when
    # written with a minus or in accounting parentheses
    kind: FigureKind
    tolerance: float  # half a unit of the last written digit, in value's units
    scale: float = 1.0  # the factor applied to the written digits: a scale word's or the
    # text's; 1.0 for an amount is "none known"
    signed: bool = False  # written with an explicit sign: "-5", "+5", "(5)"
    currency: str = ""  # "USD", "EUR", "GBP", "JPY" for kind currency


_MONTHS = "January February March April May June July August September October November December"
_MONTH = {m: i for i, m in enumerate(_MONTHS.split(), 1)}
_MONTH |= {m[:3]: i for m, i in _MONTH.items()} | {"Sept": 9}
_MON = r"(?:" + "|".join(sorted(_MONTH, key=len, reverse=True)) + r")\b\.?"
_DAY = r"(?:3[01]|[12]\d|0?[1-9])(?:st|nd|rd|th)?"
_YR = r"(?:19\d\d|20\d\d|2100)"
_CURRENCIES = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12, "bn": 1e9}
_SCALES |= {"mn": 1e6, "k": 1e3, "K": 1e3, "m": 1e6, "M": 1e6, "B": 1e9}

# One pass, leftmost first: a citation (skipped), a date, or a number with its trimmings.
# The lookahead lets the engine skip the other positions at once: 0.42 -> 0.07 ms for a
# 700-character SEC 10-Q table chunk.
_TOKEN = re.compile(
    rf"""(?=[\[(+\-\u2212\u2013$€£¥.\dADEFGJMNOSU])
    (?:(?P<cite>{CITATION.pattern})
    |(?P<mdy>\b(?P<m1>{_MON})\s+(?P<d1>{_DAY})(?:,\s*|\s+)(?P<y1>{_YR})\b)
    |(?P<dmy>\b(?P<d2>{_DAY})\s+(?P<m2>{_MON}),?\s+(?P<y2>{_YR})\b)
    |(?P<my>\b(?P<m3>{_MON}),?\s+(?P<y3>{_YR})\b)
    |(?P<md>\b(?P<m4>{_MON})\s+(?P<d4>{_DAY})\b(?![.,]?\d))
    |(?P<iso>\b(?P<y5>{_YR})-(?P<m5>0[1-9]|1[0-2])-(?P<d5>0[1-9]|[12]\d|3[01])\b)
    |(?P<us>\b(?P<m6>1[0-2]|0?[1-9])/(?P<d6>3[01]|[12]\d|0?[1-9])/(?P<y6>{_YR})\b)
    |(?P<open>\()?(?P<sign>[-+\u2212\u2013])?
     (?:(?P<cur>US\$|[$€£¥]|(?:USD|EUR|GBP|JPY)(?=\s?[\d(\-\u2212]))\s?)?
     (?P<sign2>[-\u2212])?(?P<open2>\()?
     (?P<num>\d{{1,3}}(?:[,\u202f\u2009]\d{{3}})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
     (?:\s?(?P<word>(?i:thousand|million|billion|trillion|bn|mn))\b
        |(?P<letter>[kKMBm])(?![A-Za-z0-9]))?
     (?P<close>\))?(?(word)|(?:\s?(?P<word2>(?i:thousand|million|billion|trillion|bn|mn))\b)?)
     (?P<pct>\s?(?:%|(?i:per\s?cent|percentage\s+points?|pp|basis\s+points?|bps)\b))?
     (?P<close2>\))?
     (?:\s?(?P<code>USD|EUR|GBP|JPY)\b)?)""",
    re.VERBOSE,
)
# The groups of each date form: (month, day, year); "" where the form has none.
_DATES = {"mdy": ("m1", "d1", "y1"), "dmy": ("m2", "d2", "y2"), "my": ("m3", "", "y3")}
_DATES |= {"md": ("m4", "d4", ""), "iso": ("m5", "d5", "y5"), "us": ("m6", "d6", "y6")}
# Words after which a number names a thing ("Item 2", "Level 3", "Type 2"), not a figure.
_NAMING = re.compile(
    r"(?i)(?:\b(?:items?|notes?|parts?|sections?|fig(?:ure)?s?\.?|tables?|chapters?|articles?"
    r"|exhibits?|pages?|pp?\.|nos?\.|steps?|phases?|levels?|tiers?|stages?|grades?|types?"
    r"|versions?|rules?|schedules?|appendix|lines?)\s*|#\s*)$"
)
_BULLETS = re.compile(r"[ \t>*\-•]*")  # what may stand before a list number on its line
_RANGE = re.compile(r"\s*(?:[-\u2013]|to)\s*")
_DECLARED = re.compile(
    r"(?i)\bin\s+(?:\$\s*|US\$\s*|USD\s+|U\.S\.\s+dollars\s+)?(thousands|millions|billions)\b"
    r"|\(\s*(?:\$\s*)?(thousands|millions|billions)\s*\)|\(\s*(?:in\s+)?\$?\s*000'?s\s*\)"
)


def text_scale(text: str) -> float:
    """The scale a text declares for its bare amounts: "(in millions)", "in thousands,
    except per share", "($ in billions)", "(000s)"; 1.0 if none. The first one counts:
    a chunk rarely holds two tables of different scales."""
    m = _DECLARED.search(text)
    return 1.0 if m is None else _SCALES[(m.group(1) or m.group(2) or "thousands").lower()[:-1]]


@dataclass(frozen=True)
class _Read:
    """A figure before its value is final (a range's second figure may lend it a unit)."""

    start: int
    end: int
    digits: float  # the written number, sign included
    places: int  # decimals written
    kind: FigureKind
    mult: float = 1.0  # the scale word's factor
    pct: str = ""  # the percent word as written
    signed: bool = False
    currency: str = ""


def figures_in(text: str, *, scale: float = 1.0) -> list[Figure]:
    """Every figure in `text`, in order; `scale` applies to its bare amounts (1e6 for a
    table "in millions"). Cached: a source is read once for all of an answer's sentences."""
    return list(_figures(text, scale))


@lru_cache(maxsize=512)
def _figures(text: str, scale: float) -> tuple[Figure, ...]:
    reads = [r for m in _TOKEN.finditer(text) if (r := _read(text, m)) is not None]
    for i in range(len(reads) - 1):
        a, b = reads[i], reads[i + 1]
        # "10-12%", "$1.2 to $1.5 billion": the first is written in the second's unit.
        lend = a.kind in _AMOUNTS and a.mult == 1.0 and (b.pct or b.mult != 1.0)
        if lend and _RANGE.fullmatch(text, a.end, b.start):
            kind = "percent" if b.pct else a.kind
            reads[i] = replace(a, kind=kind, mult=b.mult, pct=b.pct)
    return tuple(_figure(text, r, scale) for r in reads)


def _read(text: str, m: re.Match[str]) -> _Read | None:
    g = m.groupdict()
    if g["cite"]:
        return None
    for form, (mo, d, y) in _DATES.items():
        if g[form]:
            day = int(re.sub(r"\D", "", g[d])) if d else 0
            month = int(g[mo]) if g[mo].isdigit() else _MONTH[g[mo].rstrip(".")]
            year = int(g[y]) if y else 0
            return _Read(m.start(), m.end(), year * 10000 + month * 100 + day, 0, "date")
    start, end, num = m.start(), m.end(), g["num"]
    sign = g["sign"] or g["sign2"] or ""
    if g["open"] and not (g["close"] or g["close2"]):  # "(5 patients": prose, not a negative
        start = m.start("sign") if g["sign"] else m.start("cur") if g["cur"] else m.start("num")
    before = text[start - 1] if start else " "
    if g["sign"] and start == m.start("sign") and before.isdigit():
        sign, start = "", m.start("cur") if g["cur"] else m.start("num")  # "10-12": a range
        before = text[start - 1]
    if before.isalnum() or before in "._/:":
        return None  # inside a name or code ("Q3", "A1", "v2.1", "1/2", "10:30")
    if before in "-\u2013\u2212" and start >= 2 and text[start - 2].isalpha():
        return None  # "COVID-19", "SARS-CoV-2"
    if g["letter"] and not (g["cur"] or g["code"]):
        return None  # a unit or a name without a currency: "5m" (metres), "2M", "Figure 5B"
    sign = "" if sign == "\u2013" and before not in " \t\n|(" else sign
    parens = bool((g["open"] or g["open2"]) and (g["close"] or g["close2"]))
    if not parens and (g["close"] or g["close2"]):
        end = m.start("close" if g["close"] else "close2")  # "(n = 45)": an aside's end
    after = text[end : end + 2] + "  "
    if after[0].isalnum() or after[0] in "/:" or (after[0] in "-\u2013" and after[1].isalpha()):
        return None  # "3rd", "10mg", "1/2", "10-Q", "5-year"
    word = (g["word"] or g["word2"] or "").lower() or g["letter"]
    plain = not (g["cur"] or g["code"] or g["pct"] or word or sign)
    if plain and num.isdigit():
        if _NAMING.search(text[max(0, start - 14) : start]):
            return None  # "Item 2", "Level 3"
        if len(num) == 4 and 1900 <= int(num) <= 2100:  # in parentheses too: "Smith (2020)"
            return _Read(m.start("num"), m.end("num"), float(num), 0, "year")
        if parens and int(num) < 100 and text[end : end + 2].strip()[:1].isalpha():
            return None  # "(2) Lower volume": an enumeration
        line = text[text.rfind("\n", 0, start) + 1 : start]
        if not parens and after[0] in ".)" and after[1].isspace() and _BULLETS.fullmatch(line):
            return None  # "1. " or "1) " starting a line
    digits = float(re.sub(r"[^\d.]", "", num))
    value = -digits if parens or sign in ("-", "\u2212", "\u2013") else digits
    places = len(num) - num.index(".") - 1 if "." in num else 0
    cur = g["cur"] or g["code"] or ""
    kind: FigureKind = "percent" if g["pct"] else "currency" if cur else "number"
    mult, pct = _SCALES[word] if word else 1.0, (g["pct"] or "").strip()
    return _Read(
        start, end, value, places, kind, mult, pct, bool(sign or parens), _CURRENCIES.get(cur, cur)
    )


def _figure(text: str, r: _Read, scale: float) -> Figure:
    unit = 0.5 * 10.0**-r.places
    if r.kind in ("year", "date"):
        factor, unit = 1.0, 0.0
    elif r.kind == "percent":  # basis points are hundredths of a percentage point
        factor = 0.01 if r.pct[:1].lower() == "b" else 1.0
    else:
        factor = r.mult if r.mult != 1.0 else scale
    own = factor if r.kind in _AMOUNTS else 1.0
    text = text[r.start : r.end]
    return Figure(
        text, r.start, r.end, r.digits * factor, r.kind, unit * factor, own, r.signed, r.currency
    )


def _close(claim: float, source: float, tolerance: float) -> bool:
    # The slack is for float noise only: 15.35 stands on the edge of "15.3" and "15.4".
    return abs(claim - source) <= tolerance + 1e-9 * max(1.0, abs(claim), abs(source))


def _written(f: Figure) -> float:
    return abs(f.value) / f.scale


def same_figure(claim: Figure, source: Figure, *, any_scale: bool = False) -> bool:
    """Whether `source` is `claim`'s figure as written: the source rounds to the claim
    (within `claim.tolerance`: "$15.3 billion" is 15,338 in millions, not 15,380; "15.338"
    is not "15.3"), their kinds agree, and when both are signed, so do their signs.

    Amounts and plain numbers agree (tables leave out "$"). A claim without a scale word
    may be a source's written digits ("$1.26 per share" in a table "in millions, except
    per share amounts"; "82,959" copied from it). `any_scale`: a source amount of no
    known scale (scale 1.0: its chunk lost the table's "(in millions)") may be in
    thousands, millions or billions, up to the claim's scale word ("$82.96 billion" is
    its 82,959); a scale error then passes. A percent agrees with a ratio below 1 (65.9 %
    and 0.659). Years and dates are exact; a month ("March 2023") is any of its days, a
    year any date in it, a date without a year that day of any year.
    """
    ck, sk = claim.kind, source.kind
    if ck in ("year", "date") or sk in ("year", "date"):
        return _same_time(claim, source)
    if claim.signed and source.signed and (claim.value < 0) != (source.value < 0):
        return False
    c, s, tol = abs(claim.value), abs(source.value), claim.tolerance
    if ck == "percent" or sk == "percent":
        if ck == sk:
            return _close(c, s, tol)
        if ck == "percent" and sk == "number" and 0 < _written(source) < 1:
            return _close(c, 100 * _written(source), tol)
        return ck == "number" and claim.scale == 1.0 and 0 < c < 1 and _close(100 * c, s, 100 * tol)
    if claim.currency and source.currency and claim.currency != source.currency:
        return False
    if _close(c, s, tol) or (claim.scale == 1.0 and _close(c, _written(source), tol)):
        return True
    unknown = any_scale and source.scale == 1.0
    guesses = [g for g in (1e3, 1e6, 1e9) if g <= claim.scale] if unknown else []
    return any(_close(c, s * g, tol) for g in guesses)


def _same_time(claim: Figure, source: Figure) -> bool:
    c, s = int(claim.value), int(source.value)
    if claim.kind == "year":
        if source.kind == "number":  # a year among a table's figures, read as an integer
            return source.tolerance == 0.5 * source.scale and _written(source) == c
        return s // 10000 == c if source.kind == "date" else source.kind == "year" and s == c
    if claim.kind == "number":  # "2000 cases" in a source is read as a year
        return source.kind == "year" and claim.value == source.value
    if claim.kind != "date" or source.kind != "date":
        return False
    if c % 100 == 0:  # a month: any of its days
        return s // 100 == c // 100
    return s % 10000 == c if c < 10000 else s == c  # no year: that day of any year


# Source figures an operation may take. Pairs grow with the square of this, and each is a
# chance that an unrelated pair lands within a claim's rounding (a wrong figure passed as
# computed): 200 holds all of an answer's five sources (a 700-character SEC 10-Q chunk has
# 21 figures at the 90th percentile, 62 at most). The lookups bisect: time is no bound.
MAX_OPERANDS = 200
# Measured on SEC 10-Q chunks with one digit of a source figure changed (3,000 claims):
# with 1, 2 and 5 chunks as sources, 0.6, 1.0 and 1.4 % of the changed figures still pass
# as computed (5, 7 and 12 % without the next three rules; 1.3-2.6 % equal another figure
# of the sources anyway). The price: 42-58 % of figures computed from random pairs of the
# same chunks are found, mostly missing where the sources are dense.
# A claim rounded coarser than this is not computed from amounts ("12 %" is +-4 %: some
# pair of any table gives it); in percentage points, from the few percents, up to 5 %.
_MAX_RELATIVE = (0.01, 0.05)
_MIN_PART = 0.1  # a + b, a - b: b at least this share of the result ("374 - 1" is a typo)
# Look elsewhere: the claim moved by these many tolerances must not be reachable too;
# if it is, the sources are dense enough that any value is, and a hit says nothing.
_SHIFTS = (4.0, -4.0, 8.0, -8.0, 12.0, -12.0)
_AMOUNTS = ("number", "currency")


def computed_from(claim: Figure, sources: Sequence[Figure]) -> str | None:
    """One operation on two source figures that gives `claim` within its rounding, as
    people read it: "a + b", "a - b", "a / b" (a ratio, or as a percentage: "1,577 /
    2,394" for 65.9 %), "(b - a) / a" (a percentage change); on percentages also a - b
    and a + b (percentage points). None when none does, when the claim is a source's
    figure itself, a year or a date, or too coarse to tell (`_MAX_RELATIVE`).
    Magnitudes only, as `same_figure`; no chains of operations.
    """
    c, tol = abs(claim.value), claim.tolerance
    if claim.kind not in ("number", "currency", "percent") or c == 0 or tol > _MAX_RELATIVE[1] * c:
        return None
    if any(same_figure(claim, s) for s in sources):
        return None
    tries = _tries(claim, sources[:MAX_OPERANDS])
    found = _reach(tries, c, tol)
    if found is None or any(_reach(tries, c + k * tol, tol) for k in _SHIFTS):
        return None
    return found


@dataclass(frozen=True)
class _Op:
    """An operation a o b, searched as: for each a, the intervals b must fall in."""

    bounds: Callable[[float, float, float], tuple[tuple[float, float], ...]]
    show: str  # with {a} and {b}


def _sum(a: float, lo: float, hi: float) -> tuple[tuple[float, float], ...]:
    low = _MIN_PART * lo
    return ((max(lo - a, low), hi - a),) if a >= low else ()


def _change(a: float, lo: float, hi: float) -> tuple[tuple[float, float], ...]:
    return (a * (1 + lo / 100), a * (1 + hi / 100)), (a * (1 - hi / 100), a * (1 - lo / 100))


_SUM = _Op(_sum, "{a} + {b}")
_DIFFERENCE = _Op(lambda a, lo, hi: ((max(a - hi, _MIN_PART * lo), a - lo),), "{a} - {b}")
_RATIO = _Op(lambda a, lo, hi: ((a / hi, a / lo),), "{a} / {b}")
_SHARE = _Op(lambda a, lo, hi: ((100 * a / hi, 100 * a / lo),) if hi <= 100 else (), "{a} / {b}")
_CHANGE = _Op(_change, "({b} - {a}) / {a}")
# (operands as (value, figure) sorted by value, the operation, the unit of the claim's value)
_Try = tuple[list[tuple[float, Figure]], _Op, float]


def _tries(claim: Figure, pool: Sequence[Figure]) -> list[_Try]:
    """The operations that may give a claim of its kind, with their operands' values."""
    other = claim.currency
    amounts = [f for f in pool if f.kind in _AMOUNTS and f.currency in ("", other or f.currency)]
    percents = [f for f in pool if f.kind == "percent"]
    coarse = claim.tolerance > _MAX_RELATIVE[0] * abs(claim.value)
    if claim.kind == "percent":
        tries = [] if coarse else [(_values(amounts), op, 1.0) for op in (_SHARE, _CHANGE)]
        return tries + [(_values(percents), op, 1.0) for op in (_DIFFERENCE, _SUM, _CHANGE)]
    tries = []  # a sum or a difference is of amounts written in one scale
    for scale in () if coarse else sorted({f.scale for f in amounts}):
        group = [f for f in amounts if f.scale == scale]
        if claim.scale == 1.0 or scale == 1.0:  # in written digits ("817"; "82,959" of no scale)
            tries += [(_values(group, True), op, claim.scale) for op in (_DIFFERENCE, _SUM)]
        else:
            tries += [(_values(group), op, 1.0) for op in (_DIFFERENCE, _SUM)]
    if claim.kind == "number" and claim.scale == 1.0:
        tries.append((_values(amounts), _RATIO, 1.0))
    return tries


def _values(figures: list[Figure], written: bool = False) -> list[tuple[float, Figure]]:
    pairs = [(_written(f) if written else abs(f.value), f) for f in figures]
    return sorted((p for p in pairs if p[0] != 0), key=lambda p: p[0])


def _reach(tries: list[_Try], c: float, tol: float) -> str | None:
    """The first operation whose result lies within `tol` of `c`, shown, or None."""
    for operands, op, unit in tries:
        lo, hi = (c - tol * (1 + 1e-9)) / unit, (c + tol * (1 + 1e-9)) / unit
        if lo <= 0:
            continue
        keys = [v for v, _ in operands]
        for i, (a, fa) in enumerate(operands):
            for blo, bhi in op.bounds(a, lo, hi):
                k = bisect.bisect_left(keys, blo)
                if k == i:
                    k += 1  # not the same figure twice
                if k < len(keys) and keys[k] <= bhi:
                    return op.show.format(a=_shown(fa), b=_shown(operands[k][1]))
    return None


_TRIM = re.compile(r"^[(+\-\u2212\u2013]*(?:US\$|[$€£¥]|USD|EUR|GBP|JPY)?\s*[(\-\u2212]?|[)\s]+$")


def _shown(f: Figure) -> str:
    """An operand as written, without its sign, parentheses or currency: "1,577", "12.5 %"."""
    return re.sub(r"\s*(?:USD|EUR|GBP|JPY)$", "", _TRIM.sub("", f.text).replace(")", ""))
