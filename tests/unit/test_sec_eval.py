"""The SEC 10-Q evaluation's parts: figures, source patterns, the budget rule, the
shared set's loader.

Slicing a handwritten set and the `eval sec-10-q` / `eval all` commands are in
tests/integration/test_sec_eval.py."""

from __future__ import annotations

from rag import Chunk, Hit
from rag.datasets.sec_10q import answer_figures, load_sec_10q, source_globs
from rag.evaluation.measures import EvalQuestion, name_matches, score_question
from tests.fixtures.paths import SHARED, need_shared

SEC = SHARED / "sec-10-q"


def test_answer_figures_keep_separators_and_decimals_not_years() -> None:
    text = (
        "In fiscal 2023 (Q3 2022 to 2023) net sales were $82,959 million, up 25.3% "
        "from $1,234,567.5; EPS 1.26 and 1.26 again; see 10-Q Item 2, version 2.1.3."
    )
    assert answer_figures(text) == ("82,959", "25.3", "1,234,567.5", "1.26")
    assert answer_figures("Revenue grew in 2022 and 2023, by 12 percent.") == ()


def test_source_globs_match_file_names() -> None:
    globs = source_globs(" *2023 Q2 AAPL*, *MSFT* ,")
    assert globs == ("*2023 Q2 AAPL*", "*MSFT*")
    assert name_matches(globs, "2023 Q2 AAPL.pdf") and name_matches(globs, "2022 Q3 msft.pdf")
    assert not name_matches(globs, "2023 Q3 AAPL.pdf")


def _hit(file: str, text: str, index: int) -> Hit:
    c = Chunk(doc_id=file, file=file, index=index, text=text, start=0, end=len(text))
    return Hit(chunk=c, score=1.0)


def test_figure_in_context_budget_and_doc_hit_by_pattern() -> None:
    q = EvalQuestion("q?", figures=("82,959", "25.3"), source_globs=("*2023 Q3 AAPL*",))
    filler = _hit("2023 Q3 MSFT.pdf", "x" * 3000, 0)
    fits = _hit("2023 Q3 AAPL.pdf", "net sales 82,959".ljust(1000), 1)  # 4,000 in all
    r = score_question(q, [filler, fits], 1.0)
    assert r.in_context[4000] and not r.in_context[2000]
    assert (r.answer_rank, r.doc_rank) == (2, 2)
    crosses = _hit("2023 Q3 AAPL.pdf", "net sales 82,959".ljust(1001), 1)  # 4,001: not counted
    assert not score_question(q, [filler, crosses], 1.0).in_context[4000]
    near = _hit("2023 Q3 AAPL.pdf", "net sales 82,95 and 25.30", 1)  # verbatim: a substring
    assert score_question(q, [near], 1.0).in_context[4000]


def test_load_sec_10q_reads_the_shared_set() -> None:
    need_shared()
    articles, questions = load_sec_10q(SEC)
    assert len(articles) == 20 and len(questions) == 195
    assert sum(bool(q.figures) for q in questions) == 127
    assert questions[0].question.startswith("How has Apple")  # the BOM is not in the header
    assert all(any(name_matches(q.source_globs, a.name) for a in articles) for q in questions)
