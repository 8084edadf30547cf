"""Reporting periods: the quarter-and-year a question asks about, and the one a file's
name gives.

Quarterly reports are named by their period ("2023 Q1 AAPL.pdf", "AAPL_Q1_2023.pdf",
"msft-10q-2023q3.pdf"), and people ask about a period the same way ("in Q1 2023",
"the first quarter of 2023"). The filing itself rarely says so: Apple's first quarter of
fiscal 2023 is "the quarterly period ended December 31, 2022", and NVIDIA's fiscal year
is a year ahead of the calendar. So the name is the one place where question and
document agree, and the `periods` step (adjustments.py) favours the documents whose
name gives the period the question names (`PERIOD_WEIGHT`).

`periods(text)` finds every period written as
- a quarter then a year: "Q1 2023", "Q1 of 2023", "Q1/2023", "Q1 FY2023", "Q1 FY23",
  "Q1'23", "3Q FY23", "first quarter of 2023", "3rd quarter 2023", "first-quarter
  2023", "second fiscal quarter of fiscal year 2023";
- a year then a quarter: "2023 Q1", "2023-Q1", "2023Q1", "FY2023 Q1", "2023 3Q";
- the analysts' short form: "1Q23".
Underscores count as spaces ("AAPL_Q1_2023"), curly apostrophes and dashes as their
ASCII forms.

A question that asks for the latest period ("in its most recent 10-Q", `asks_latest`)
names, of each series of documents, the one of the newest period (`latest`): a series
is two or more documents whose names are the same but for the period ("2023 Q1
AAPL.pdf" and "2023 Q3 AAPL.pdf"), so each company's newest filing is named, not only
the newest one overall.

Left out: a quarter without its year ("in Q1": which year is a guess), so ranges and
lists give their last quarter only ("Q1-Q4 2023", "Q1 and Q2 2023": Q4, Q2); half
years and months ("H1 2023", "June 2023"); years outside 2000-2099; and dates inside
the text ("April 1, 2023": which quarter that ends depends on the company's fiscal
year). "Latest" is read from ordinary words, so in a collection that holds a series
"the latest treatment" favours the series' newest file too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Period:
    """A fiscal quarter: the year as written (2023) and the quarter (1 to 4)."""

    year: int
    quarter: int


_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_ORDINAL.update({"1st": 1, "2nd": 2, "3rd": 3, "4th": 4})
# Typographic punctuation read as its ASCII twin: a curly apostrophe as ', dashes as -.
_FOLD = str.maketrans({"_": " ", "\u2019": "'", "\u2013": "-", "\u2014": "-"})
_Q = r"(?:q(?P<{0}>[1-4])|(?P<{0}n>[1-4])q)"  # Q1, or the analysts' 1Q
_ORD = r"(?P<{0}o>first|second|third|fourth|1st|2nd|3rd|4th)[\s-]+(?:fiscal\s+)?quarter"
# A four-digit year, maybe after "fiscal (year)" or "FY"; or two digits after FY or '.
_YEAR = r"(?:(?:fiscal\s+(?:year\s+)?|fy\s*)?(?P<{0}>20\d\d)|(?:fy\s*|')(?P<{0}2>\d\d))"
# One pattern, so that each period is its leftmost match: run one after another,
# "2022 Q4 2023 ..." paired Q4 with the later year.
_PERIOD = re.compile(
    r"(?<![a-z0-9])(?:"
    # Q1 2023, Q1 of 2023, Q1/2023, first quarter of fiscal 2023, Q1'23, 3Q FY23
    + r"(?:" + _Q.format("a") + "|" + _ORD.format("a") + r")"
    + r"[\s,/-]*(?:of\s+(?:the\s+)?)?" + _YEAR.format("ay")
    # 2023 Q1, 2023-Q1, 2023Q1, FY2023 Q1, 2023 3Q
    + r"|" + _YEAR.format("by") + r"[\s/-]*" + _Q.format("b")
    # 1Q23 (two digits only when they follow at once: not "1q 20 items")
    + r"|(?P<cn>[1-4])q(?P<cy2>\d\d)"
    + r")(?![a-z0-9])"
)  # fmt: skip
_LATEST = re.compile(r"\b(?:latest|most\s+recent|newest)\b", re.IGNORECASE)


def _period(m: re.Match[str]) -> Period:
    g = {k: v for k, v in m.groupdict().items() if v}
    quarter = next(
        int(g[k]) if not k.endswith("o") else _ORDINAL[g[k]]
        for k in ("a", "an", "ao", "b", "bn", "cn")
        if k in g
    )
    four = g.get("ay") or g.get("by")
    two = g.get("ay2") or g.get("by2") or g.get("cy2")
    return Period(int(four) if four else 2000 + int(two or 0), quarter)


# Every search that names a period reads every document's name: 8.6 ms at 1,000
# documents, against a search of about 25 ms. Names repeat from search to search.
@functools.lru_cache(maxsize=8192)
def _found(text: str) -> tuple[frozenset[Period], str]:
    """(the periods written in `text`, the text without them, lower case)."""
    low = text.lower().translate(_FOLD)
    return frozenset(_period(m) for m in _PERIOD.finditer(low)), _PERIOD.sub(" ", low)


def periods(text: str) -> frozenset[Period]:
    """Every quarter-and-year period written in `text` (a question or a file name)."""
    return _found(text)[0]


def asks_latest(text: str) -> bool:
    """Whether `text` asks for the latest period ("latest", "most recent", "newest")."""
    return _LATEST.search(text) is not None


def latest(names: Mapping[str, str]) -> frozenset[str]:
    """Of documents (id -> file name), the newest of each series: a series is two or
    more documents whose names have the same words once the period, the extension and
    any other all-digit words (a filing date) are taken out, so "2023 Q1 AAPL.pdf" and
    "AAPL 2023-Q3 2023-11-03.docx" are one. A document alone in its series, or
    whose name gives no period, is in none (nothing to be the latest of)."""
    series: dict[frozenset[str], list[tuple[Period, str]]] = {}
    for doc_id, name in names.items():
        stem = name.rsplit(".", 1)[0] if "." in name else name
        found, rest = _found(stem)
        if found:
            key = frozenset(w for w in re.findall(r"[a-z0-9]+", rest) if not w.isdigit())
            series.setdefault(key, []).append((max(found), doc_id))
    out = []
    for members in series.values():
        if len(members) > 1:
            newest = max(p for p, _ in members)
            out += [d for p, d in members if p == newest]
    return frozenset(out)
