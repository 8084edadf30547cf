"""Reporting periods in questions and file names, and the search that favours them."""

from __future__ import annotations

import pytest

from rag import DocChat
from rag.periods import Period, asks_latest, latest, periods

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
        "What did the Q1 FY23 filing say?",
        "Q1'23 results",
        "In the first quarter of 2023, what was R&D?",
        "the first fiscal quarter of fiscal year 2023",
        "1Q23 margins",
    ],
)
def test_a_quarter_and_its_year_are_found_in_every_usual_form(text: str) -> None:
    assert periods(text) == Q1_2023


@pytest.mark.parametrize(
    "text",
    [
        "Q1 results",  # no year: which Q1 is a guess
        "COVID-19 cases in 2019",
        "HQ1 2023 campus",
        "the 10-Q for the period ended April 1, 2023",
        "notes.txt",
    ],
)
def test_text_without_a_full_period_names_none(text: str) -> None:
    assert periods(text) == frozenset()


def test_two_periods_are_both_found() -> None:
    assert periods("Compare Q2 2023 with 2022 Q3.") == {Period(2023, 2), Period(2022, 3)}


def test_latest_is_asked_in_so_many_words() -> None:
    assert asks_latest("What did Apple report in its most recent 10-Q?")
    assert asks_latest("In the latest quarter, ...")
    assert not asks_latest("How did revenue change over the quarters?")


def test_the_latest_of_each_series_is_its_newest_period() -> None:
    names = {
        "a1": "2023 Q1 AAPL.pdf",
        "a3": "AAPL 2023-Q3.pdf",  # the same series, named another way
        "n2": "2023 Q2 NVDA.pdf",
        "n0": "2022 Q3 NVDA.pdf",
        "x": "notes.txt",  # no period: in no series
    }
    assert latest(names) == {"a3", "n2"}
    assert latest({"x": "notes.txt"}) == frozenset()


# The same table in two quarters' filings, as a company files it quarter after quarter:
# the words are the same, only the figures differ.
Q1 = b"Revenue for the quarter was $1,250 million. Operating income was $310 million.\n"
Q2 = b"Revenue for the quarter was $1,420 million. Operating income was $365 million.\n"
OTHER = b"The board met twice. Employees number 5,000 across three sites in Ohio.\n"


def test_search_favours_the_document_of_the_period_the_question_names(app: DocChat) -> None:
    q1 = app.ingest("2023 Q1 ACME.txt", Q1)
    q2 = app.ingest("2023 Q2 ACME.txt", Q2)
    app.ingest("ACME board.txt", OTHER)
    for question, wanted in [
        ("What was ACME's revenue in Q1 2023?", q1.doc_id),
        ("What was ACME's revenue in the second quarter of 2023?", q2.doc_id),
        ("What was ACME's revenue in the most recent quarter?", q2.doc_id),
    ]:
        _, hits = app.search(question, hybrid=True, top_k=3, min_score=-1)
        assert hits[0].chunk.doc_id == wanted, question
    # A period that no file name gives changes nothing; nor is dense-only search touched.
    _, plain = app.search("What was ACME's revenue?", hybrid=True, top_k=3, min_score=-1)
    _, other = app.search("What was ACME's revenue in Q4 2021?", hybrid=True, top_k=3, min_score=-1)
    assert [h.chunk.id for h in other] == [h.chunk.id for h in plain]
    _, dense = app.search("What was ACME's revenue in Q1 2023?", hybrid=False, min_score=-1)
    assert all(h.score == h.dense_score and h.lexical_score is None for h in dense)


def test_search_within_chosen_documents_keeps_to_them(app: DocChat) -> None:
    app.ingest("2023 Q1 ACME.txt", Q1)
    q2 = app.ingest("2023 Q2 ACME.txt", Q2)
    _, hits = app.search(
        "What was ACME's revenue in Q1 2023?", hybrid=True, doc_ids=[q2.doc_id], min_score=-1
    )
    assert hits and {h.chunk.doc_id for h in hits} == {q2.doc_id}
