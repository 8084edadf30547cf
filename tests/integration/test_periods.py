"""Reporting periods in questions and file names, and the search that favours them."""

from __future__ import annotations

import pytest

from rag import DocChat
from rag.retrieval import search as retrieval
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


# The same table in two quarters' filings, as a company files it quarter after quarter:
# the words are the same, only the figures differ.
Q1 = b"Revenue for the quarter was $1,250 million. Operating income was $310 million.\n"
Q2 = b"Revenue for the quarter was $1,420 million. Operating income was $365 million.\n"
OTHER = b"The board met twice. Employees number 5,000 across three sites in Ohio.\n"


def test_search_favours_the_document_of_the_period_the_question_names(
    app: DocChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    q1 = app.ingest("2023 Q1 ACME.txt", Q1)
    q2 = app.ingest("2023 Q2 ACME.txt", Q2)
    app.ingest("ACME board.txt", OTHER)
    asked = [
        ("What was ACME's revenue in Q1 2023?", q1.doc_id),
        ("What was ACME's revenue in the second quarter of 2023?", q2.doc_id),
        ("What was ACME's revenue in the most recent quarter?", q2.doc_id),
    ]
    for question, wanted in asked:
        _, hits = app.search(question, hybrid=True, top_k=3, min_score=-1)
        assert hits[0].chunk.doc_id == wanted, question

    def ids(question: str, **kw: object) -> list[str]:
        _, hits = app.search(question, top_k=3, min_score=-1, **kw)  # type: ignore[arg-type]
        return [h.chunk.id for h in hits]

    # What each search gives with the periods left out: a period that no file name
    # gives, and dense-only and BM25-only search, are not changed by them.
    unchanged = [
        ("What was ACME's revenue in Q4 2021?", {"hybrid": True}),
        ("What was ACME's revenue in Q1 2023?", {"hybrid": False}),
        ("What was ACME's revenue in Q1 2023?", {"hybrid": True, "dense_weight": 0.0}),
        ("What was ACME's revenue in Q1 2023?", {"hybrid": True, "dense_weight": 1.0}),
    ]
    before = [ids(q, **kw) for q, kw in unchanged]
    monkeypatch.setattr(retrieval, "period_documents", lambda *a: frozenset())
    assert [ids(q, **kw) for q, kw in unchanged] == before
    # Without them, the words alone do not find the quarter asked about ("2023 Q1"
    # in a file name is a BM25 term; "second quarter" and "most recent" are not).
    for question, wanted in asked[1:]:
        _, hits = app.search(question, hybrid=True, top_k=3, min_score=-1)
        assert hits[0].chunk.doc_id != wanted, question


def test_a_period_every_document_has_tells_none_apart(app: DocChat) -> None:
    app.ingest("2023 Q1 ACME.txt", Q1)
    app.ingest("2023 Q1 ACME board.txt", OTHER)
    name = app.collection(None).name
    assert retrieval.period_documents(app.store, name, "revenue in Q1 2023?", None) == set()


def test_search_within_chosen_documents_keeps_to_them(app: DocChat) -> None:
    q1 = app.ingest("2023 Q1 ACME.txt", Q1)
    q2 = app.ingest("2023 Q2 ACME.txt", Q2)
    app.ingest("2023 Q3 ACME.txt", OTHER)
    chosen = [q1.doc_id, q2.doc_id]
    name = app.collection(None).name
    question = "What was ACME's revenue in Q1 2023?"
    assert retrieval.period_documents(app.store, name, question, chosen) == {q1.doc_id}
    _, hits = app.search(question, hybrid=True, doc_ids=chosen, min_score=-1)
    assert hits[0].chunk.doc_id == q1.doc_id
    assert {h.chunk.doc_id for h in hits} <= set(chosen)
