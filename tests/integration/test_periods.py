"""Reporting periods in questions and file names, and the search that favours them."""

from __future__ import annotations

import pytest

from rag import DocChat
from rag.retrieval import search as retrieval

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
    switched_off = [ids(q, hybrid=True, without=["periods"]) for q, _ in asked]
    monkeypatch.setattr(retrieval, "period_documents", lambda *a: frozenset())
    assert [ids(q, **kw) for q, kw in unchanged] == before
    # `--without periods` is the search with the periods left out.
    assert [ids(q, hybrid=True) for q, _ in asked] == switched_off
    # Without them, the words alone do not find the quarter asked about ("2023 Q1"
    # in a file name is a BM25 term; "second quarter" and "most recent" are not).
    for question, wanted in asked[1:]:
        _, hits = app.search(question, hybrid=True, top_k=3, min_score=-1)
        assert hits[0].chunk.doc_id != wanted, question


def test_a_period_every_document_has_tells_none_apart(app: DocChat) -> None:
    app.ingest("2023 Q1 ACME.txt", Q1)
    app.ingest("2023 Q1 ACME board.txt", OTHER)
    name = app.collection(None).name
    store = app.services.store
    assert retrieval.period_documents(store, name, "revenue in Q1 2023?", None) == set()


def test_search_within_chosen_documents_keeps_to_them(app: DocChat) -> None:
    q1 = app.ingest("2023 Q1 ACME.txt", Q1)
    q2 = app.ingest("2023 Q2 ACME.txt", Q2)
    app.ingest("2023 Q3 ACME.txt", OTHER)
    chosen = [q1.doc_id, q2.doc_id]
    name = app.collection(None).name
    question = "What was ACME's revenue in Q1 2023?"
    assert retrieval.period_documents(app.services.store, name, question, chosen) == {q1.doc_id}
    _, hits = app.search(question, hybrid=True, doc_ids=chosen, min_score=-1)
    assert hits[0].chunk.doc_id == q1.doc_id
    assert {h.chunk.doc_id for h in hits} <= set(chosen)
