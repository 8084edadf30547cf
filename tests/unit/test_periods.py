"""Reporting periods in questions and file names.

The search that favours them (it needs an index) is in tests/integration/test_periods.py."""

from __future__ import annotations

import pytest

from rag.retrieval.periods import Period, asks_latest, latest, periods

Q1_2023 = frozenset({Period(2023, 1)})


@pytest.mark.parametrize(
    "text",
    [
        "2023 Q1 AAPL.pdf",
        "AAPL_Q1_2023.pdf",
        "aapl-10q-2023q1.pdf",
        "FY2023 Q1 report.pdf",
        "In Q1 2023, how did revenue change?",
        "in Q1 of 2023",
        "Q1/2023",
        "Q1\u20132023",  # an en dash
        "What did the Q1 FY23 filing say?",
        "Q1'23 results",
        "Q1\u201923 results",  # a curly apostrophe
        "In the first quarter of 2023, what was R&D?",
        "first-quarter 2023 sales",
        "1st quarter 2023",
        "the first fiscal quarter of fiscal year 2023",
        "1Q23 margins",
        "1Q FY23",
        "2023 1Q",
    ],
)
def test_a_quarter_and_its_year_are_found_in_every_usual_form(text: str) -> None:
    assert periods(text) == Q1_2023


@pytest.mark.parametrize(
    "text",
    [
        "Q1 results",  # no year: which Q1 is a guess
        "COVID-19 cases in 2019",
        "H1N1 in 2009",
        "HQ1 2023 campus",
        "version v2023.1",
        "I have 1q 20 items",
        "the 10-Q for the period ended April 1, 2023",
        "notes.txt",
    ],
)
def test_text_without_a_full_period_names_none(text: str) -> None:
    assert periods(text) == frozenset()


def test_each_quarter_takes_its_own_year() -> None:
    assert periods("Compare Q2 2023 with 2022 Q3.") == {Period(2023, 2), Period(2022, 3)}
    assert periods("2022 Q4 2023 Q1 comparison") == {Period(2022, 4), Period(2023, 1)}
    # A filing date after the period is not a second period, nor does it take the Q4.
    assert periods("10-Q 2022 Q4 2023-02-03.pdf") == {Period(2022, 4)}


def test_latest_is_asked_in_so_many_words() -> None:
    assert asks_latest("What did Apple report in its most recent 10-Q?")
    assert asks_latest("In the latest quarter, ...")
    assert not asks_latest("How did revenue change over the quarters?")


def test_the_latest_of_each_series_is_its_newest_period() -> None:
    names = {
        "a1": "2023 Q1 AAPL.pdf",
        "a3": "AAPL 2023-Q3 2023-11-03.docx",  # the same series, named another way
        "n2": "2023 Q2 NVDA.pdf",
        "n0": "2022 Q3 NVDA.pdf",
        "m": "Minutes 2019 Q2.pdf",  # alone in its series: the latest of nothing
        "x": "notes.txt",  # no period: in no series
    }
    assert latest(names) == {"a3", "n2"}
    assert latest({"x": "notes.txt", "m": "Minutes 2019 Q2.pdf"}) == frozenset()
