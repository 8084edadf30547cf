"""rag.core.text: one citation parser, one sentence splitter, one stop-word list."""

from __future__ import annotations

import pytest

from rag import Chunk
from rag.answering.support import claims_for
from rag.components.bm25_terms import chunk_terms, tokenize
from rag.core.text import citations, cited_numbers, sentence_spans


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Cats eat fish [1].", [1]),
        ("Cats eat fish [1, 2].", [1, 2]),
        ("Cats eat fish [1][2].", [1, 2]),
        ("Cats eat fish [1-3].", [1, 2, 3]),
        ("Cats eat fish [1, 3-4] and [2\u20133].", [1, 3, 4, 2, 3]),
        ("In [2020] nothing; see [x] and [].", []),
    ],
)
def test_citation_forms(text: str, numbers: list[int]) -> None:
    assert citations(text) == numbers


def test_cited_numbers_first_use_and_range() -> None:
    assert cited_numbers("A [2] b [1][2] c [9]", 3) == (2, 1)
    assert cited_numbers("A [1, 2]. B [2-4].", 3) == (1, 2, 3)


def test_highlighted_sources_are_the_cited_ones() -> None:
    # The bug: "[1, 2]" highlighted sources 1 and 2 (support.py) while the answer
    # counted neither as cited (prompts.py). One parser now serves both.
    answer = "Cats eat fish [1, 2]. Dogs eat meat [3][4]. Birds eat seeds. [5-6] Mice eat [9]."
    n_sources = 7
    # A source is highlighted from its own claims when some sentence cites it, else
    # from the whole answer (what claims_for gives for a number nothing cites, e.g. 0).
    whole = claims_for(answer, 0)
    highlighted = {n for n in range(1, n_sources + 1) if claims_for(answer, n) != whole}
    assert highlighted == set(cited_numbers(answer, n_sources)) == {1, 2, 3, 4, 5, 6}


def test_lexical_sentences_keep_decimals_and_abbreviations() -> None:
    text = "The dose is 3.5 mg daily, e.g. with food. Side effects are rare."
    chunk = Chunk(doc_id="d", index=0, file="f.txt", text=text, start=0, end=len(text))
    _, sentences = chunk_terms(chunk)
    spans = [text[s:e] for s, e in sentence_spans(text)]
    assert spans == ["The dose is 3.5 mg daily, e.g. with food.", "Side effects are rare."]
    assert sentences == [tokenize(s) for s in spans]
