"""rag.answering.figures: the figure normalization table, rounding, and computed figures."""

from __future__ import annotations

import pytest

from rag.answering.figures import (
    MAX_OPERANDS,
    Figure,
    computed_from,
    figures_in,
    same_figure,
    text_scale,
)

# (text, the scale its chunk declares, [(figure as written, value, kind, tolerance)])
NORMALIZATION = [
    # thousands separators and decimals
    ("sales of 82,959 units", 1.0, [("82,959", 82959, "number", 0.5)]),
    ("a dose of 3.25 ml", 1.0, [("3.25", 3.25, "number", 0.005)]),
    ("up .5 today", 1.0, [(".5", 0.5, "number", 0.05)]),
    ("16,162,945 shares", 1.0, [("16,162,945", 16162945, "number", 0.5)]),
    (
        "15\u202f338 and 12.5\u00a0%",
        1.0,
        [("15\u202f338", 15338, "number", 0.5), ("12.5\u00a0%", 12.5, "percent", 0.05)],
    ),
    # currency before or after, with or without a space
    ("$1.26 per share", 1.0, [("$1.26", 1.26, "currency", 0.005)]),
    ("Products $ 63,355", 1.0, [("$ 63,355", 63355, "currency", 0.5)]),
    ("€3.2bn and £40", 1.0, [("€3.2bn", 3.2e9, "currency", 0.05e9), ("£40", 40, "currency", 0.5)]),
    ("USD 5 and 7 USD", 1.0, [("USD 5", 5, "currency", 0.5), ("7 USD", 7, "currency", 0.5)]),
    # percent in its spellings; percentage points and basis points
    (
        "12.5% or 12.5 % or 12.5 percent",
        1.0,
        [(t, 12.5, "percent", 0.05) for t in ("12.5%", "12.5 %", "12.5 percent")],
    ),
    ("7 per cent", 1.0, [("7 per cent", 7, "percent", 0.5)]),
    (
        "up 2.1 pp, 2.1 percentage points",
        1.0,
        [("2.1 pp", 2.1, "percent", 0.05), ("2.1 percentage points", 2.1, "percent", 0.05)],
    ),
    ("50 basis points", 1.0, [("50 basis points", 0.5, "percent", 0.005)]),
    ("a rate of 0.25%", 1.0, [("0.25%", 0.25, "percent", 0.005)]),
    # scale words, and the scale a table declares for its bare amounts
    ("$15.3 billion", 1.0, [("$15.3 billion", 15.3e9, "currency", 0.05e9)]),
    ("15 billion", 1.0, [("15 billion", 15e9, "number", 0.5e9)]),
    (
        "2 thousand, 3 trillion",
        1.0,
        [("2 thousand", 2e3, "number", 500), ("3 trillion", 3e12, "number", 0.5e12)],
    ),
    (
        "$10k, €5M, £2B, $5m, 4 mn",
        1.0,
        [
            ("$10k", 1e4, "currency", 500),
            ("€5M", 5e6, "currency", 5e5),
            ("£2B", 2e9, "currency", 5e8),
            ("$5m", 5e6, "currency", 5e5),
            ("4 mn", 4e6, "number", 5e5),
        ],
    ),
    (
        "| Total net sales | 82,959 | 81,434 |",
        1e6,
        [("82,959", 82959e6, "number", 0.5e6), ("81,434", 81434e6, "number", 0.5e6)],
    ),
    ("approximately $15 billion", 1.0, [("$15 billion", 15e9, "currency", 0.5e9)]),
    ("Total net sales 82,959", 1e6, [("82,959", 82959e6, "number", 0.5e6)]),
    ("$1.5 billion in a table in millions", 1e6, [("$1.5 billion", 1.5e9, "currency", 0.05e9)]),
    ("a margin of 43.3 % in a table in millions", 1e6, [("43.3 %", 43.3, "percent", 0.05)]),
    # signs: minus, unicode minus, en dash, plus, accounting parentheses
    (
        "-5 and −5 and – 5 and +5",
        1.0,
        [
            ("-5", -5, "number", 0.5),
            ("−5", -5, "number", 0.5),
            ("5", 5, "number", 0.5),
            ("+5", 5, "number", 0.5),
        ],
    ),
    (
        "| net | (1,577) | $(10) |",
        1.0,
        [("(1,577)", -1577, "number", 0.5), ("$(10)", -10, "currency", 0.5)],
    ),
    ("(3)% and (45%)", 1.0, [("(3)%", -3, "percent", 0.5), ("(45%)", -45, "percent", 0.5)]),
    (
        "a change of \u20135 in 2021\u20132022",
        1.0,
        [("\u20135", -5, "number", 0.5), ("2021", 2021, "year", 0), ("2022", 2022, "year", 0)],
    ),
    ("decreased by 5", 1.0, [("5", 5, "number", 0.5)]),  # a sign in words is not read
    ("(n = 45 patients)", 1.0, [("45", 45, "number", 0.5)]),  # an aside's bracket
    # ranges: two figures, the first in the second's unit
    ("10-12", 1.0, [("10", 10, "number", 0.5), ("12", 12, "number", 0.5)]),
    ("10-12%", 1.0, [("10", 10, "percent", 0.5), ("12%", 12, "percent", 0.5)]),
    ("3.80% - 4.95%", 1.0, [("3.80%", 3.8, "percent", 0.005), ("4.95%", 4.95, "percent", 0.005)]),
    (
        "$1.2 to $1.5 billion",
        1.0,
        [("$1.2", 1.2e9, "currency", 0.05e9), ("$1.5 billion", 1.5e9, "currency", 0.05e9)],
    ),
    # years and dates
    ("in 2023 and 1999", 1.0, [("2023", 2023, "year", 0), ("1999", 1999, "year", 0)]),
    ("Smith et al. (2020)", 1.0, [("2020", 2020, "year", 0)]),
    ("2024 - 2044", 1.0, [("2024", 2024, "year", 0), ("2044", 2044, "year", 0)]),
    (
        "2,023 and 2023.5 and 2150",
        1.0,
        [
            ("2,023", 2023, "number", 0.5),
            ("2023.5", 2023.5, "number", 0.05),
            ("2150", 2150, "number", 0.5),
        ],
    ),
    ("March 31, 2023", 1.0, [("March 31, 2023", 20230331, "date", 0)]),
    ("June 25,\n2022", 1.0, [("June 25,\n2022", 20220625, "date", 0)]),
    ("Mar. 31 2023", 1.0, [("Mar. 31 2023", 20230331, "date", 0)]),
    ("31 March 2023", 1.0, [("31 March 2023", 20230331, "date", 0)]),
    ("2023-03-31", 1.0, [("2023-03-31", 20230331, "date", 0)]),
    ("3/31/2023", 1.0, [("3/31/2023", 20230331, "date", 0)]),
    ("in March 2023", 1.0, [("March 2023", 20230300, "date", 0)]),
    ("on March 31 and", 1.0, [("March 31", 331, "date", 0)]),
    ("Q1 2023", 1.0, [("2023", 2023, "year", 0)]),
    # not figures: citations, names and codes, naming words, list numbers, words
    ("Sales rose [2] and [1, 3-4].", 1.0, []),
    ("COVID-19, HIV-1, SARS-CoV-2, H1N1, 10-Q, 10-K, Q3, FY2023, CD4", 1.0, []),
    ("the 3rd time, a 5-year plan, 10mg, 5m away, 1/2 of it at 10:30", 1.0, []),
    ("in 2M NaCl (Figure 5B and 1B)", 1.0, []),
    ("Item 2, Note 5, Part 1, Level 3, Phase 3, Type 2, Table 4, page 12, No. 7", 1.0, []),
    ("1. Weakness\n2) Lower\n - 3. Cost\n(4) Mix and sales(1)", 1.0, []),
    ("approximately twelve, about a million", 1.0, []),
]


@pytest.mark.parametrize(("text", "scale", "expected"), NORMALIZATION)
def test_figure_normalization_table(
    text: str, scale: float, expected: list[tuple[str, float, str, float]]
) -> None:
    got = figures_in(text, scale=scale)
    assert [(f.text, f.kind) for f in got] == [(t, k) for t, _, k, _ in expected]
    for f, (written, value, _, tolerance) in zip(got, expected, strict=True):
        assert f.value == pytest.approx(value) and f.tolerance == pytest.approx(tolerance)
        assert text[f.start : f.end] == written


def test_figure_details() -> None:
    (f,) = figures_in("a loss of $(1,577) million")
    assert (f.signed, f.currency, f.scale) == (True, "USD", 1e6)
    (g,) = figures_in("82,959", scale=1e6)
    assert (g.signed, g.currency, g.scale) == (False, "", 1e6)
    assert figures_in("x") == [] and figures_in("") == []


@pytest.mark.parametrize(
    ("text", "scale"),
    [
        ("CONDENSED STATEMENTS (In millions, except per share amounts)", 1e6),
        ("(dollars in thousands)", 1e3),
        ("($ in billions)", 1e9),
        ("Amounts (000s)", 1e3),
        ("(Millions)", 1e6),
        ("We grew by 5 percent.", 1.0),
    ],
)
def test_text_scale(text: str, scale: float) -> None:
    assert text_scale(text) == scale


def _one(text: str, scale: float = 1.0) -> Figure:
    (f,) = figures_in(text, scale=scale)
    return f


# (claim, source, the source chunk's scale, same figure?)
SAME = [
    # rounding: the source rounds to the claim as written
    ("$15.3 billion", "15,338", 1e6, True),
    ("$15.3 billion", "15,380", 1e6, False),
    ("15 billion", "15,380", 1e6, True),
    ("15 billion", "15,580", 1e6, False),
    ("12.5%", "12.46 percent", 1.0, True),
    ("12.5%", "12.4 percent", 1.0, False),
    ("12.5 %", "12.5 percent", 1.0, True),
    ("15.338", "15.3", 1.0, False),  # more precise than the source
    ("15.30", "15.3", 1.0, True),
    ("$82,959 million", "82,959", 1e6, True),
    ("$82.96 billion", "82,959", 1e6, True),
    ("$83.0 billion", "82,959", 1e6, True),
    ("$82,959 billion", "82,959", 1e6, False),  # the scale, against a declared one
    ("$82,359 million", "82,959", 1e6, False),  # a digit
    # a claim without a scale word may be the digits a table wrote
    ("$1.26 per share", "1.26", 1e6, True),
    ("82,959", "82,959", 1e6, True),
    ("1.26", "1.25", 1e6, False),
    ("$82,959 million", "82,959", 1.0, False),  # a source of no known scale: see below
    # signs: accounting negatives either way, opposite explicit signs never
    ("(1,577)", "1,577", 1.0, True),
    ("1,577", "(1,577)", 1.0, True),
    ("-5%", "(5)%", 1.0, True),
    ("+5%", "(5)%", 1.0, False),
    ("−5", "-5", 1.0, True),
    # kinds
    ("$5 million", "5,000,000", 1.0, True),
    ("€5 million", "$5 million", 1.0, False),
    ("5%", "5", 1.0, False),
    ("65.9%", "0.659", 1.0, True),
    ("0.659", "65.9%", 1.0, True),
    ("50 basis points", "0.5%", 1.0, True),
    ("2.1 pp", "2.1 %", 1.0, True),
    ("2023", "2023", 1e6, True),
    ("2023", "2023%", 1.0, False),
    ("2023", "March 31, 2023", 1.0, True),
    ("2022", "March 31, 2023", 1.0, False),
    ("March 31, 2023", "2023-03-31", 1.0, True),
    ("March 2023", "March 31, 2023", 1.0, True),
    ("March 31, 2023", "March 2023", 1.0, False),
    ("March 31", "March 31, 2023", 1.0, True),
    ("April 2023", "March 31, 2023", 1.0, False),
    ("2000 cases", "2,000", 1.0, True),
]


@pytest.mark.parametrize(("claim", "source", "scale", "same"), SAME)
def test_same_figure(claim: str, source: str, scale: float, same: bool) -> None:
    assert same_figure(_one(claim), _one(source, scale)) is same


@pytest.mark.parametrize(
    ("claim", "source", "same"),
    [
        ("$82,959 million", "82,959", True),
        ("$82.96 billion", "82,959", True),
        ("$82.36 billion", "82,959", False),
        ("$82,959 thousand", "82,959", True),
        ("$82,959 million", "$82,959 billion", False),  # a source's own scale word is known
        ("$82,959 million", "82,959 (in millions)", True),
        ("$82,959 billion", "82,959 (in millions)", False),  # a declared scale holds
    ],
)
def test_same_figure_of_no_known_scale(claim: str, source: str, same: bool) -> None:
    # A chunk that lost its table's "(in millions)": the scale cannot be checked.
    figure = figures_in(source, scale=text_scale(source))[0]
    assert same_figure(_one(claim), figure, any_scale=True) is same


SERVICES = "Services net sales were 1,577 against total net sales of 2,394."


@pytest.mark.parametrize(
    ("claim", "source", "scale", "operation"),
    [
        ("65.9%", SERVICES, 1.0, "1,577 / 2,394"),  # a ratio as a percentage
        ("0.659", SERVICES, 1.0, "1,577 / 2,394"),  # a ratio
        ("51.8%", SERVICES, 1.0, "(2,394 - 1,577) / 1,577"),  # a percentage change
        ("$817 million", SERVICES, 1e6, "2,394 - 1,577"),
        ("817", SERVICES, 1e6, "2,394 - 1,577"),
        ("$3,971 million", SERVICES, 1e6, "1,577 + 2,394"),
        ("$3.97 billion", SERVICES, 1e6, "1,577 + 2,394"),
        ("$817 million", SERVICES, 1.0, "2,394 - 1,577"),  # no scale known: written digits
        ("1.2 percentage points", "margins of 44.5% and 43.3%", 1.0, "44.5% - 43.3%"),
        ("10.4%", "from $(1,250) to $(1,380)", 1.0, "(1,380 - 1,250) / 1,250"),
        ("40.0%", "sales of 400 against 1,000", 1.0, "400 / 1,000"),
    ],
)
def test_computed_from(claim: str, source: str, scale: float, operation: str) -> None:
    assert computed_from(_one(claim), figures_in(source, scale=scale)) == operation


@pytest.mark.parametrize(
    ("claim", "source"),
    [
        ("66.9%", SERVICES),  # the near miss: 65.9 % is 1,577 / 2,394, 66.9 % is nothing
        ("65.8%", SERVICES),  # 65.87 rounds to 65.9
        ("1,577", SERVICES),  # a source's figure is supported, not computed
        ("40%", "sales of 400 against 1,000"),  # too coarse to tell (+-0.5 in 40)
        ("2,018", "between 2000 and 18 and 4,036"),  # no operation on years
        ("1,578", "1,577 and 1"),  # a + b with b a sliver of the result
        ("€817 million", "net sales of $1,577 million and $2,394 million"),  # other currency
    ],
)
def test_not_computed(claim: str, source: str) -> None:
    assert computed_from(_one(claim), figures_in(source)) is None


def test_dense_sources_compute_nothing() -> None:
    # Every value near 50.0 % is some ratio of these: a hit there says nothing.
    dense = figures_in(" ".join(str(n) for n in range(100, 300)))
    assert computed_from(_one("50.0%"), dense) is None


def test_operands_are_bounded() -> None:
    filler = figures_in(" ".join(str(1900 + n % 200) for n in range(MAX_OPERANDS)))  # years
    pair = figures_in(SERVICES)
    assert computed_from(_one("65.9%"), pair + filler) == "1,577 / 2,394"
    assert computed_from(_one("65.9%"), filler + pair) is None
