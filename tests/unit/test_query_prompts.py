from __future__ import annotations

from rag import Chunk, Hit, build_prompt, clean_query
from rag.answering.prompts import SYSTEM_PROMPT
from rag.core.text import cited_numbers


def test_clean_query_drops_filler_keeps_meaning() -> None:
    q = "Hey, could you please tell me what the incubation period of COVID-19 is?"
    assert clean_query(q) == "incubation period COVID-19"
    assert "not" in clean_query("Why is the drug not effective without food?").split()
    assert "without" in clean_query("Why is the drug not effective without food?").split()
    assert clean_query("what is it?") == "what is it?"  # nothing left: keep the original


def hit(i: int, text: str = "some text " * 20) -> Hit:
    c = Chunk(doc_id="a" * 64, file=f"f{i}.pdf", index=i, text=text, start=0, end=len(text), page=i)
    return Hit(chunk=c, score=1.0 - i / 10)


def test_prompt_numbers_sources_and_puts_question_last() -> None:
    p = build_prompt("What?", [hit(1), hit(2)], history=[{"role": "user", "content": "Hi"}])
    assert p.messages[0]["role"] == "system"
    assert SYSTEM_PROMPT in p.messages[0]["content"]
    assert "[1] (f1.pdf, page 1)" in p.messages[0]["content"]
    assert "[2] (f2.pdf, page 2)" in p.messages[0]["content"]
    assert p.messages[-1] == {"role": "user", "content": "Question: What?"}
    assert p.messages[1] == {"role": "user", "content": "Hi"}
    assert [s.n for s in p.sources] == [1, 2]


def test_prompt_budget_leaves_out_and_reports() -> None:
    hits = [hit(i, "word " * 400) for i in range(1, 6)]
    p = build_prompt("Q", hits, budget=1500)
    assert p.left_out and len(p.sources) + len(p.left_out) == 5
    assert p.tokens <= 1500
    assert [s.n for s in p.sources] == list(range(1, len(p.sources) + 1))


def test_cited_numbers() -> None:
    assert cited_numbers("A [2] b [1][2] c [9]", 3) == (2, 1)


def test_extractive_sentences_skip_headings_keep_numbers_and_quote_once() -> None:
    from rag import Source
    from rag.answering.stream import extractive_answer, split_sentences
    from tests.fixtures.fakes import HashEmbedder

    text = "# 4.1 Dosage\n\nGive 3.5 mg per day, e.g. with food. See section 4.1 for children."
    assert split_sentences(text) == [
        "Give 3.5 mg per day, e.g. with food.",
        "See section 4.1 for children.",
    ]
    # Two overlapping chunks share a sentence: it is quoted once.
    a = Chunk(doc_id="d", file="a.md", index=0, text=text, start=0, end=len(text))
    b = Chunk(doc_id="d", file="a.md", index=1, text=text[12:], start=12, end=len(text))
    sources = (Source(n=1, hit=Hit(chunk=a, score=0.9)), Source(n=2, hit=Hit(chunk=b, score=0.8)))
    answer = extractive_answer("dose per day", sources, HashEmbedder())
    quotes = [line for line in answer.splitlines() if line.startswith("> ") and len(line) > 2]
    assert len(quotes) == len({q.rsplit(" [", 1)[0] for q in quotes}) == 2
    assert "Dosage" not in answer
