"""Reporting periods: the quarter-and-year a question asks about, and the one a file's
name gives.

Quarterly reports are named by their period ("2023 Q1 AAPL.pdf", "AAPL_Q1_2023.pdf",
"msft-10q-2023q3.pdf"), and people ask about a period the same way ("in Q1 2023",
"the first quarter of 2023"). The filing itself rarely says so: Apple's first quarter of
fiscal 2023 is "the quarterly period ended December 31, 2022", and NVIDIA's fiscal year
is a year ahead of the calendar. So the name is the one place where question and
document agree, and retrieval.py favours the documents whose name gives the period the
question names (`PERIOD_WEIGHT`).

`periods(text)` finds every period written as
- a quarter then a year: "Q1 2023", "Q1 of 2023", "Q1 FY2023", "Q1 FY23", "Q1'23",
  "first quarter of 2023", "second fiscal quarter of fiscal year 2023";
- a year then a quarter: "2023 Q1", "2023-Q1", "2023Q1", "FY2023 Q1";
- the analysts' short form: "1Q23", "1Q 2023".
Underscores count as spaces ("AAPL_Q1_2023").

A question that asks for the latest period ("in its most recent 10-Q", `asks_latest`)
names, of each series of documents, the one of the newest period (`latest`): a series
is the documents whose names are the same but for the period ("2023 Q1 AAPL.pdf" and
"2023 Q3 AAPL.pdf"), so each company's newest filing is named, not only the newest one
overall.

Left out: a quarter without its year ("in Q1": which year is a guess), half years and
months ("H1 2023", "June 2023"), and dates inside the text ("April 1, 2023": which
quarter that ends depends on the company's fiscal year).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Period:
    """A fiscal quarter: the year as written (2023) and the quarter (1 to 4)."""

    year: int
    quarter: int


_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4}
_NOT_ALNUM_BEFORE = r"(?<![a-z0-9])"
_NOT_ALNUM_AFTER = r"(?![a-z0-9])"
_QUARTER = r"(?:q(?P<q>[1-4])|(?P<ord>first|second|third|fourth)\s+(?:fiscal\s+)?quarter)"
# A four-digit year, maybe after "fiscal (year)" or "FY"; or two digits after FY or '.
_YEAR = r"(?:(?:fiscal\s+(?:year\s+)?|fy\s*)?(?P<{0}>20\d\d)|(?:fy\s*|')(?P<{0}2>\d\d))"
_PATTERNS = (
    # Q1 2023, Q1 of 2023, first quarter of fiscal 2023, Q1'23
    re.compile(
        _NOT_ALNUM_BEFORE
        + _QUARTER
        + r"[\s,-]*(?:of\s+(?:the\s+)?)?"
        + _YEAR.format("y")
        + _NOT_ALNUM_AFTER
    ),
    # 2023 Q1, 2023-Q1, 2023Q1, FY2023 Q1
    re.compile(_NOT_ALNUM_BEFORE + _YEAR.format("y") + r"[\s-]*q(?P<q>[1-4])" + _NOT_ALNUM_AFTER),
    # 1Q23, 1Q 2023
    re.compile(
        _NOT_ALNUM_BEFORE + r"(?P<q>[1-4])q\s*(?:(?P<y>20\d\d)|(?P<y2>\d\d))" + _NOT_ALNUM_AFTER
    ),
)


_LATEST = re.compile(r"\b(?:latest|most\s+recent|newest)\b", re.IGNORECASE)


def _found(text: str) -> tuple[frozenset[Period], str]:
    """(the periods written in `text`, the text without them, lower case)."""
    low = text.lower().replace("_", " ")
    out = set()
    for pattern in _PATTERNS:
        for m in pattern.finditer(low):
            g = m.groupdict()
            quarter = int(g["q"]) if g.get("q") else _ORDINAL[g["ord"]]
            year = int(g["y"]) if g.get("y") else 2000 + int(g["y2"])
            out.add(Period(year, quarter))
        low = pattern.sub(" ", low)
    return frozenset(out), low


def periods(text: str) -> frozenset[Period]:
    """Every quarter-and-year period written in `text` (a question or a file name)."""
    return _found(text)[0]


def asks_latest(text: str) -> bool:
    """Whether `text` asks for the latest period ("latest", "most recent", "newest")."""
    return _LATEST.search(text) is not None


def latest(names: Mapping[str, str]) -> frozenset[str]:
    """Of documents (id -> file name), those of the newest period in their series: the
    documents whose names are alike once the period is taken out (its letters and
    digits, so "2023 Q1 AAPL.pdf" and "AAPL 2023-Q3.pdf" are one series). A name
    without a period is in none."""
    newest: dict[str, tuple[Period, list[str]]] = {}
    for doc_id, name in names.items():
        found, rest = _found(name)
        if not found:
            continue
        series = " ".join(re.findall(r"[a-z0-9]+", rest))
        period = max(found)
        best = newest.get(series)
        if best is None or period > best[0]:
            newest[series] = (period, [doc_id])
        elif period == best[0]:
            best[1].append(doc_id)
    return frozenset(d for _, ids in newest.values() for d in ids)
