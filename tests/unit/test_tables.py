"""Tables as Markdown, and running headers and footers dropped with offsets exact.

Real pages: ../shared/data/sec-10-q/docs/2022 Q3 AAPL.pdf page 4 (the condensed
statements of operations: four figure columns under two-line headings), and
tracemonkey.pdf, a text paper whose code listing once came out as a table. Then
`layout.find_tables` on hand-made words, no PDF needed.
"""

from __future__ import annotations

import dataclasses

import pytest

from rag import split
from rag.core.models import LoadedDocument
from rag.core.settings import DEFAULT_READ
from rag.ingest import layout
from rag.ingest.layout import Word
from rag.ingest.loaders import load_path
from tests.fixtures.documents import check_blocks
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.paths import SAMPLES, SHARED, need

TABLES = dataclasses.replace(DEFAULT_READ, tables=True)

AAPL = SHARED / "sec-10-q" / "docs" / "2022 Q3 AAPL.pdf"
HEADINGS = [
    "Three Months Ended June 25, 2022",
    "Three Months Ended June 26, 2021",
    "Nine Months Ended June 25, 2022",
    "Nine Months Ended June 26, 2021",
]
RUNNING = "Apple Inc. | Q3 2022 Form 10-Q"


@pytest.fixture(scope="module")
def aapl() -> LoadedDocument:
    return load_path(need(AAPL), options=TABLES)  # tables are a setting, off by default


def _groups(text: str) -> list[str]:
    """The Markdown table groups of a page text (blank-line separated, starting with '|')."""
    return [p for p in text.split("\n\n") if p.startswith("| ")]


def test_statement_of_operations_is_a_markdown_table(aapl: LoadedDocument) -> None:
    text = aapl.texts[3]
    groups = _groups(text)
    assert len(groups) >= 2
    header = groups[0].split("\n")[0]
    cells = [c.strip() for c in header.strip("|").split("|")]
    assert cells[1:] == HEADINGS
    assert "STATEMENTS OF OPERATIONS" in cells[0]
    rows = "\n".join(groups)
    assert "| Total net sales | 82,959 | 81,434 | 304,182 | 282,457 |" in rows
    assert "| Products | $63,355 | $63,948 | $245,241 | $232,309 |" in rows
    assert "| Other income/(expense), net | (10) | 243 | (97) | 796 |" in rows
    assert "| Net income | $19,442 | $21,744 | $79,082 | $74,129 |" in rows
    # Text around the table keeps its own lines.
    assert text.startswith("PART I") and "Item 1. Financial Statements" in text


def test_long_table_is_split_in_groups_with_the_header_repeated(aapl: LoadedDocument) -> None:
    groups = _groups(aapl.texts[3])
    heads = {tuple(g.split("\n")[:2]) for g in groups}
    assert len(heads) == 1  # every group repeats the header and the rule
    (head,) = heads
    assert head[1] == "|---|---|---|---|---|"
    body = [row for g in groups for row in g.split("\n")[2:]]
    assert len(body) > 15
    assert all(len(g) <= layout.GROUP_CHARS + len(head[0]) + 200 for g in groups)
    # Each group is a block of its own: no chunk mixes table rows with other text, but
    # the first starts at the title or sentence that introduces the table.
    page4 = [aapl.text_of(b) for b in aapl.blocks if b.page == 4]
    assert all(any(t.endswith(g) for t in page4) for g in groups)
    assert set(groups[1:]) <= set(page4)


def test_running_lines_are_dropped_into_the_context(aapl: LoadedDocument) -> None:
    check_blocks(aapl)
    assert RUNNING in aapl.context
    for n, text in enumerate(aapl.texts, 1):
        assert RUNNING not in text, f"page {n}"
    chunks = split(aapl, HashEmbedder().token_spans, chunk_tokens=200, overlap=20)
    assert chunks and all(c.context == aapl.context for c in chunks)
    for c in chunks:  # a chunk's text is exactly its page text between start and end
        assert c.text == aapl.texts[(c.page or 1) - 1][c.start : c.end]


def test_text_pages_have_no_tables() -> None:
    """tracemonkey.pdf page 6 has a numbered code listing beside prose: no table."""
    doc = load_path(need(SAMPLES / "tracemonkey.pdf"), options=TABLES)
    for n, text in enumerate(doc.texts, 1):
        assert "|---|" not in text, f"page {n}"


# --- layout.find_tables on hand-made words --------------------------------------------------


def _line(top: float, *cells: tuple[float, str]) -> list[Word]:
    """Words at x positions on one line, 10 points high, about 5 points per character."""
    return [Word(t, x, x + 5 * len(t), top, top + 10) for x, t in cells]


def _page(rows: list[list[Word]]) -> list[layout.Line]:
    return layout.lines_of([w for r in rows for w in r])


BALANCE = [
    _line(10, (50, "BALANCE"), (100, "SHEET")),
    _line(30, (300, "June"), (330, "2022"), (400, "June"), (430, "2021")),
    _line(50, (50, "Cash"), (300, "1,200"), (400, "1,100")),
    _line(65, (50, "Receivables"), (300, "300"), (400, "(25)")),
    _line(80, (50, "Inventory"), (300, "4,000"), (400, "3,500")),
    _line(95, (50, "Total"), (50 + 30, "assets"), (300, "5,500"), (400, "4,575")),
]


def test_find_tables_header_rows_and_title() -> None:
    lines = _page(BALANCE)
    (table,) = layout.find_tables(lines)
    assert (table.first, table.last) == (0, 5)
    (md,) = table.markdown
    rows = md.split("\n")
    assert rows[0] == "| BALANCE SHEET | June 2022 | June 2021 |"
    assert rows[1] == "|---|---|---|"
    assert rows[2:] == [
        "| Cash | 1,200 | 1,100 |",
        "| Receivables | 300 | (25) |",
        "| Inventory | 4,000 | 3,500 |",
        "| Total assets | 5,500 | 4,575 |",
    ]


def test_page_text_spans_are_the_table_groups() -> None:
    rows = [_line(0, (50, "Some"), (80, "prose"), (115, "before.")), *[
        _line(20 + r[0].top, *[(w.x0, w.text) for w in r]) for r in BALANCE
    ], _line(140, (50, "After"), (80, "the"), (100, "table."))]  # fmt: skip
    lines = _page(rows)
    tables = layout.find_tables(lines)
    text, spans = layout.page_text(lines, tables)
    assert text.startswith("Some prose before.\n") and text.endswith("\n\nAfter the table.")
    (span,) = spans
    # The group's span starts at the sentence before it, which says what the table is.
    assert text[span[0] : span[1]] == "Some prose before.\n\n" + tables[0].markdown[0]


def test_long_tables_split_by_rows_with_the_header_repeated() -> None:
    rows = [_line(30, (300, "2022"), (400, "2021"))]
    rows += [_line(50 + 15 * k, (50, f"Item{k}"), (300, f"{k},000"), (400, f"{k},500"))
             for k in range(1, 80)]  # fmt: skip
    (table,) = layout.find_tables(_page(rows))
    assert len(table.markdown) > 1
    heads = {g.split("\n")[0] for g in table.markdown}
    assert heads == {"|  | 2022 | 2021 |"}
    body = [r for g in table.markdown for r in g.split("\n")[2:]]
    assert body == [f"| Item{k} | {k},000 | {k},500 |" for k in range(1, 80)]
    assert all(len(g) <= layout.GROUP_CHARS + 40 for g in table.markdown)


@pytest.mark.parametrize(
    "rows",
    [
        # Prose with a number in it: no figure columns.
        [_line(10 * k, (50, "The"), (70, "year"), (95, "had"), (115, f"{k}"), (130, "days"))
         for k in range(6)],
        # A numbered code listing: line numbers, then code (text after the figure).
        [_line(10 * k, (50, f"{k}"), (60, "for"), (80, "(var"), (105, "i=0;")) for k in range(6)],
        # Two figure rows are not a table (fewer than MIN_ROWS).
        [_line(10, (50, "Cash"), (300, "1,200")), _line(25, (50, "Debt"), (300, "900"))],
    ],
    ids=["prose", "code-listing", "two-rows"],
)  # fmt: skip
def test_find_tables_leaves_text_alone(rows: list[list[Word]]) -> None:
    assert layout.find_tables(_page(rows)) == []


def test_running_lines_need_most_pages_and_the_page_edges() -> None:
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]  # digits do not count
    pages = [
        [f"Acme Corp | Report | {n}", f"Revenue {w}.", f"Costs {w}.", "Body line repeated",
         f"Cash {w}.", f"Debt {w}.", "Table of Contents"]
        for n, w in enumerate(words, 1)
    ]  # fmt: skip
    running = layout.running_lines(pages)
    assert layout.line_key("Acme Corp | Report | 99") in running
    assert layout.line_key("Table of Contents") in running
    kept, dropped = layout.drop_running(pages[0], running)
    assert dropped == ["Acme Corp | Report | 1", "Table of Contents"]
    assert kept == ["Revenue alpha.", "Costs alpha.", "Body line repeated", "Cash alpha.",
                    "Debt alpha."]  # fmt: skip
    assert layout.line_key("Body line repeated") not in running  # not at an edge
    assert layout.running_lines(pages[:3]) == frozenset()  # too few pages to tell
