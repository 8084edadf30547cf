"""The claim check (`rag.answering.claims`): each verdict and how it is decided, the
sentences it reads (citations after a sentence, list items, quotes, table rows; headings
and fragments skipped), figures normalized across the answer and a table, names, and
an extractive answer passing by construction. The embedder is the fake `HashEmbedder`
(words hashed): the real model's figures are the benchmark's (`python -m rag eval claims`).
"""

from __future__ import annotations

import pytest

from rag.answering.claims import check_claims
from rag.answering.stream import extractive_answer
from rag.core.models import Chunk, Claim, Hit, Source
from tests.fixtures.fakes import HashEmbedder

TABLE = """Apple Inc.
CONDENSED CONSOLIDATED STATEMENTS OF OPERATIONS (Unaudited)
(In millions, except per share amounts)
Three Months Ended
July 1, 2023 June 25, 2022
Net sales $ 81,797 $ 82,959
Cost of sales 45,384 47,074
Gross margin 36,413 35,885
Change in net sales (1)%
"""
CATS = "Cats sleep sixteen hours a day. Cats eat fish and mice. Pfizer makes vaccines in Belgium."
FLU = (
    "The outbreak began in March 2020. A total of 1,577 patients were admitted, of whom "
    "2,394 had been tested. The mortality rate was 12.5 percent in the first wave."
)


def sources(*texts: str, context: str = "") -> list[Source]:
    out = []
    for n, text in enumerate(texts, start=1):
        chunk = Chunk(doc_id=f"doc{n}", file=f"file{n}.txt", index=0, text=text, start=0,
                      end=len(text), context=context)  # fmt: skip
        out.append(Source(n=n, hit=Hit(chunk=chunk, score=1.0)))
    return out


def check(text: str, *texts: str, question: str = "", embedder: bool = True) -> list[Claim]:
    fake = HashEmbedder() if embedder else None
    return list(check_claims(text, sources(*texts), embedder=fake, question=question))


def one(text: str, *texts: str, **kw: object) -> Claim:
    claims = check(text, *texts, **kw)  # type: ignore[arg-type]
    assert len(claims) == 1, claims
    return claims[0]


def test_a_sentence_its_source_says_is_supported_with_the_evidence_span() -> None:
    text = "Cats eat fish and mice. [2] Dogs bark at strangers [1]."
    claims = check(text, "Dogs bark at strangers all night.", CATS)
    assert [c.verdict for c in claims] == ["supported", "supported"]
    cats, dogs = claims
    assert cats.citations == (2,) and cats.source == 2 and cats.sentence == text[:27]
    assert (cats.start, cats.end) == (0, 27)  # the trailing "[2]" belongs to the sentence
    assert cats.span is not None and CATS[cats.span[0] : cats.span[1]] == "Cats eat fish and mice"
    assert dogs.citations == (1,) and text[dogs.start : dogs.end] == "Dogs bark at strangers [1]."
    assert all(c.sure and c.reason == "" for c in claims)


def test_a_figure_no_cited_source_has_is_not_found_with_a_short_reason() -> None:
    c = one("The mortality rate was 12.4 % in the first wave [1].", FLU)
    assert (c.verdict, c.by, c.reason, c.sure) == (
        "not_found",
        "figures",
        "12.4 % not in [1]",
        True,
    )
    assert one("The mortality rate was 12.5 % in the first wave [1].", FLU).verdict == "supported"
    # The right figure, the wrong source: not found in what the sentence cites.
    wrong = one("The mortality rate was 12.5 % in the first wave [2].", FLU, CATS)
    assert (wrong.verdict, wrong.reason) == ("not_found", "12.5 % not in [2]")


@pytest.mark.parametrize(
    ("claim", "verdict"),
    [
        ("Net sales were $81,797 million in the quarter [1].", "supported"),
        ("Net sales were $81.8 billion in the quarter [1].", "supported"),  # 81,797 in millions
        ("Net sales were $82 billion in the quarter [1].", "supported"),  # as rounded
        ("Net sales were $81.9 billion in the quarter [1].", "not_found"),  # rounds otherwise
        ("Net sales were $81,797 thousand in the quarter [1].", "not_found"),  # the scale
        ("Net sales were $81,796 million in the quarter [1].", "not_found"),  # a digit
        ("Net sales fell 1 % in the quarter [1].", "supported"),  # "(1)%": a decrease
        ("Net sales increased 1 % in the quarter [1].", "not_found"),  # the sign, in words
        ("Net sales decreased from 81,797 to 82,959 [1].", "not_found"),  # at odds with itself
        ("Net sales were $81,797 million for the quarter ended July 1, 2023 [1].", "supported"),
        ("Net sales were $81,797 million for the quarter ended July 2, 2023 [1].", "not_found"),
    ],
)
def test_figures_are_normalized_and_checked_against_the_table(claim: str, verdict: str) -> None:
    c = one(claim, TABLE)
    assert c.verdict == verdict, c
    if verdict == "supported":
        assert c.by == "figures" and c.span is not None
        row = TABLE[c.span[0] : c.span[1]]  # the evidence: the row that holds the figure
        assert row.startswith(("Net sales $ 81,797", "Change in net sales")), row


def test_a_computed_ratio_and_a_percentage_change_show_their_operation() -> None:
    ratio = one("Of those tested, 65.9 % were admitted (1,577 of 2,394) [1].", FLU)
    assert (ratio.verdict, ratio.operation, ratio.by) == ("computed", "1,577 / 2,394", "figures")
    change = one("Admissions would have to rise 51.8 % from 1,577 to reach 2,394 [1].", FLU)
    assert change.verdict == "computed"
    assert change.operation == "(2,394 - 1,577) / 1,577"
    assert change.span is not None and "1,577" in FLU[change.span[0] : change.span[1]]


def test_a_name_no_cited_source_has_is_not_found_unless_the_question_gives_it() -> None:
    c = one("Vaccines are made by Moderna in Belgium [1].", CATS)
    assert (c.verdict, c.by, c.reason) == ("not_found", "names", "Moderna not in [1]")
    assert one("Vaccines are made by Pfizer in Belgium [1].", CATS).verdict == "supported"
    # A possessive at the start names too.
    assert one("Moderna's vaccines are made in Belgium [1].", CATS).reason == "Moderna not in [1]"
    # A 10-Q's table rarely says whose it is: the question's company cannot fail it...
    asked = one("Apple's net sales were $81,797 million [1].", TABLE.replace("Apple Inc.", ""),
                question="What were Apple's net sales?")  # fmt: skip
    assert asked.verdict == "supported"
    # ...and the document's running header names it.
    headed = check_claims("Apple's net sales were $81,797 million [1].",
                          sources(TABLE.replace("Apple Inc.", ""), context="Apple Inc. | 10-Q"),
                          embedder=None)  # fmt: skip
    assert headed[0].verdict == "supported"
    assert (
        one("Research and development (R&D) grew [1].", "Research and development grew.").verdict
        == "supported"
    )


def test_a_sentence_no_source_says_is_not_found_or_uncited() -> None:
    c = one("Penguins migrate across the southern ocean every winter [1].", CATS)
    assert (c.verdict, c.by, c.sure) == ("not_found", "words", True)
    assert c.reason == "no sentence of [1] says this"
    uncited = one("Penguins migrate across the southern ocean every winter.", CATS, FLU)
    assert (uncited.verdict, uncited.citations) == ("uncited", ())
    assert uncited.reason == "no source says this"
    # Uncited but backed by a source: supported, the evidence says which.
    backed = one("Cats eat fish and mice.", FLU, CATS)
    assert (backed.verdict, backed.source, backed.citations) == ("supported", 2, ())
    missing = one("Cats eat fish and mice [7].", CATS)
    assert (missing.verdict, missing.reason) == ("not_found", "[7] is not a source")


def test_between_the_thresholds_the_verdict_leans_and_is_not_sure() -> None:
    # Words only: the sentence shares half its content words with the best sentence.
    c = one("Cats sleep sixteen hours in warm gardens [1].", CATS, embedder=False)
    assert not c.sure and c.by == "words"
    assert c.verdict in ("supported", "not_found")
    sure = one("Cats sleep sixteen hours a day [1].", CATS, embedder=False)
    assert sure.sure and sure.verdict == "supported"


def test_headings_lead_ins_questions_and_fragments_are_not_claims() -> None:
    text = (
        "## What the documents say\n\n"
        "In short:\n"
        "- Cats eat fish and mice [1]\n"
        "- Yes.\n"
        "- **Dogs**\n\n"
        "Do cats sleep? The documents do not say how long dogs sleep.\n\n"
        "| animal | food |\n|---|---|\n| cats | 1,577 fish [2] |\n"
    )
    claims = check(text, CATS, FLU)
    assert [c.sentence for c in claims] == [
        "Cats eat fish and mice [1]",
        "| cats | 1,577 fish [2] |",
    ]
    assert [c.verdict for c in claims] == ["supported", "supported"]
    assert text[claims[0].start : claims[0].end] == claims[0].sentence


def test_all_sentences_are_embedded_in_one_call() -> None:
    fake = HashEmbedder()
    text = "Cats nap a lot [1]. Fish swim in mice [1]. Penguins fly south [1]."
    claims = check_claims(text, sources(CATS), embedder=fake)
    assert len(claims) == 3 and fake.calls == 1
    assert check_claims("", sources(CATS), embedder=fake) == ()
    assert fake.calls == 1  # nothing to embed: no call


def test_an_extractive_answer_passes_by_construction() -> None:
    texts = [
        CATS,
        "Dogs bark at strangers.\nDogs love long   walks in the park when the weather is fine.",
        FLU,
    ]
    srcs = sources(*texts)
    fake = HashEmbedder()
    answer = extractive_answer("What do cats and dogs do?", tuple(srcs), fake)
    claims = check_claims(answer, srcs, embedder=fake)
    quoted = [line for line in answer.splitlines() if line.startswith("> ")]
    assert len(claims) == len(quoted) == 3
    for c in claims:
        assert (c.verdict, c.by, c.sure) == ("supported", "quote", True)
        a, b = c.span or (0, 0)
        quote = " ".join(texts[c.source - 1][a:b].split())
        assert quote and quote in c.sentence  # the span is the quoted sentence itself
