"""Which questions are about a whole document (`rag.answering.whole`): summaries and
"list every X" requests are recognised; normal factual questions, including the real
COVID-QA and SEC 10-Q questions, are not. And which document a question names.
"""

from __future__ import annotations

import csv
import json

import pytest

from rag.answering.whole import WholeRequest, named_document, plural, whole_document_request
from tests.fixtures.paths import SHARED, need

SUMMARIES = [
    "Summarize",
    "summarize it",
    "Summarise this report.",
    "Please summarize the document",
    "Can you summarize this paper for me?",
    "Give me a summary",
    "A short summary, please",
    "TL;DR",
    "tldr?",
    "Give me an overview of the document",
    "Could you give me a quick overview?",
    "What is this document about?",
    "What's it about?",
    "What is the paper about?",
    "Key points?",
    "What are the key points of this report?",
    "the main takeaways of the document",
    "Summarize tracemonkey.pdf",
    "Summarize the whole document in 5 bullet points",
    "What does this document cover?",
    "Tell me what this document is about",
    "Summarize this document.",  # the Summarize button's question (services/chats.py)
]
LISTS = [
    ("List every risk it names", "risks"),
    ("list all the risks in the document", "risks"),
    ("List all companies mentioned in the report", "companies"),
    ("Every risk the document mentions", "risks"),
    ("What are all the dates mentioned in the document?", "dates"),
    ("Name every person the report mentions", "people"),
    ("list all risk factors", "risk factors"),
    ("Enumerate each of the products in this filing", "products"),
]
NORMAL = [
    "What was the revenue in Q3?",
    "Which risks affect margins?",
    "Summarize the risk factors to Apple's business",  # a topic, not the document
    "What is summarized?",
    "List this out separately for each reported period.",
    "What is the document's date?",
    "Who wrote the report?",
    "What are the risks?",
    "What is the overview of the risk management process?",
    "How does the report summarize revenue?",
    "list the risks",
    "What is it?",
    "Is there a summary table of revenues?",
    "What are all the risks of smoking?",
    "List all of them",
    "",
]


@pytest.mark.parametrize("question", SUMMARIES)
def test_summary_requests_are_recognised(question: str) -> None:
    assert whole_document_request(question) == WholeRequest("summary")


@pytest.mark.parametrize(("question", "topic"), LISTS)
def test_list_requests_give_their_topic_in_the_plural(question: str, topic: str) -> None:
    assert whole_document_request(question) == WholeRequest("list", topic)


@pytest.mark.parametrize("question", NORMAL)
def test_normal_questions_are_not_whole_document_requests(question: str) -> None:
    assert whole_document_request(question) is None


def test_plural() -> None:
    assert [plural(w) for w in ("risk", "company", "tax", "risks", "person", "class")] == [
        "risks", "companies", "taxes", "risks", "people", "classes",
    ]  # fmt: skip


def test_the_datasets_questions_almost_never_trigger() -> None:
    """The false positives over all 1,575 real questions (docs/summaries.md gives them)."""
    covid = json.loads(need(SHARED / "covid-qa" / "covidQA.json").read_text(encoding="utf-8"))
    questions = [q["question"] for a in covid["data"] for p in a["paragraphs"] for q in p["qas"]]
    table = need(SHARED / "sec-10-q" / "qna_data.csv").read_text(encoding="utf-8-sig")
    questions += [r["Question"] for r in csv.DictReader(table.splitlines())]
    assert len(questions) == 1575
    triggered = [q for q in questions if whole_document_request(q)]
    # The one is a real whole-document request, so no false positive at all.
    assert triggered == ["What is the summary of this report?"]


def test_a_document_named_by_the_question() -> None:
    docs = [("a1", "2023 Q1 AAPL.pdf"), ("a2", "2023 Q1 MSFT.pdf"), ("t", "tracemonkey.pdf")]
    assert named_document("Summarize tracemonkey.pdf", docs) == "t"
    assert named_document("summarize the tracemonkey paper", docs) == "t"
    assert named_document("Summarize the 2023 Q1 AAPL filing", docs) == "a1"
    assert named_document("Summarize it", docs) is None
    same = [("x", "notes.md"), ("y", "notes.txt")]
    assert named_document("Summarize notes", same) is None  # two equally good: none
