"""A page's layout from its words: lines, tables as Markdown, running headers.

`pdfium.page_words` gives the words of a PDF page with their boxes; this module
groups them into lines (words whose boxes overlap vertically, left to right) and
finds tables: runs of lines whose cells (words separated by wide gaps) line
up in columns and carry figures. A table is written as Markdown (one header row
built from the column headings above the figures, one line per row, cells in
reading order), in groups of rows with the header repeated, so that every chunk of
a long table still says what its columns are.

Left out: ruled tables without figures, multi-column page layouts on pages that
hold a table (lines are read across the whole page width there), cells that wrap
onto several lines (each line is a row).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from statistics import median

# A figure cell: digits with separators, signs, brackets, currency, a percent, or a dash
# for "none". Years in column headings are figures too but sit above the first row.
_FIGURE = re.compile(r"^[\$€£(]*[-–—]?[\d][\d,.]*\)?%?\)?$|^[-–—]+$|^\$?\(?[\d.,]+\)?%$")
_YEAR = re.compile(r"^(19|20)\d\d$")
_CURRENCY = frozenset("$€£")
# Rows of a table group: about one chunk of 200 MiniLM tokens of figures (they cost
# a token every 2-3 characters).
GROUP_CHARS = 600
MIN_ROWS = 3  # fewer figure rows than this is a line of text with numbers, not a table


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    x1: float
    top: float  # distance from the page's top edge, in points
    bottom: float


@dataclass(frozen=True)
class Line:
    words: tuple[Word, ...]

    @property
    def top(self) -> float:
        return min(w.top for w in self.words)

    @property
    def bottom(self) -> float:
        return max(w.bottom for w in self.words)

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def lines_of(words: list[Word]) -> list[Line]:
    """Words grouped into lines (vertical overlap of their middles), top to bottom."""
    rows: list[list[Word]] = []
    spans: list[tuple[float, float]] = []
    for w in sorted(words, key=lambda w: (w.top + w.bottom) / 2):
        mid = (w.top + w.bottom) / 2
        if rows and spans[-1][0] <= mid <= spans[-1][1]:
            rows[-1].append(w)
            lo, hi = spans[-1]
            spans[-1] = (min(lo, w.top), max(hi, w.bottom))
        else:
            rows.append([w])
            spans.append((w.top, w.bottom))
    return [Line(tuple(sorted(r, key=lambda w: w.x0))) for r in rows]


def _cells(line: Line, gap: float) -> list[Word]:
    """A line's cells: its words joined where the gap between them is narrow."""
    cells: list[Word] = []
    for w in line.words:
        prev = cells[-1] if cells else None
        # Closing brackets and percent signs belong to the figure before them, currency
        # signs to the one after them, however wide the gap.
        closer = w.text in (")", "%", ")%")
        if prev is not None and (
            closer or prev.text in _CURRENCY or (w.x0 - prev.x1 < gap and w.text not in _CURRENCY)
        ):
            joiner = "" if closer or prev.text in _CURRENCY else " "
            cells[-1] = Word(prev.text + joiner + w.text, prev.x0, w.x1, prev.top, prev.bottom)
        else:
            cells.append(w)
    return cells


def _is_figure(text: str) -> bool:
    return bool(_FIGURE.match(text.replace(" ", "")))


@dataclass(frozen=True)
class Table:
    first: int  # index of its first line (the first heading line, if any)
    last: int  # index of its last line, inclusive
    markdown: tuple[str, ...]  # groups of rows, each a Markdown table with the header


def find_tables(lines: list[Line]) -> list[Table]:
    """Tables among the lines of a page (none when no run of figure rows is found)."""
    if not lines:
        return []
    heights = [w.bottom - w.top for line in lines for w in line.words]
    gap = 1.2 * median(heights) if heights else 10.0
    cells = [_cells(line, gap) for line in lines]
    # A row of figures: a label (or none) and then only figures. Prose beside a code
    # listing ("... the path and | 1 | for (var i = 2; ...") has text after its numbers.
    figure_row = [
        len(c) >= 2
        and all(_is_figure(x.text) for x in c[1:])
        and (not _is_figure(c[0].text) or len(c) >= 3)
        for c in cells
    ]
    tables: list[Table] = []
    i = 0
    while i < len(lines):
        if not figure_row[i]:
            i += 1
            continue
        j = i
        last = i
        # Extend over figure rows and label-only rows between them (a run of at most 2).
        while j + 1 < len(lines):
            if figure_row[j + 1]:
                j += 1
                last = j
            elif j + 1 - last <= 2 and len(cells[j + 1]) == 1 and j + 2 < len(lines):
                j += 1
            else:
                break
        rows = [k for k in range(i, last + 1) if figure_row[k]]
        if len(rows) >= MIN_ROWS:
            table = _build(lines, cells, i, last, figure_row)
            if table is not None:
                tables.append(table)
                i = last + 1
                continue
        i = last + 1
    return tables


def _slots(cells: list[list[Word]], rows: list[int]) -> list[tuple[float, float]]:
    """Column ranges: the x-ranges of the figure cells of the rows, merged where they overlap."""
    spans = sorted(
        (c.x0, c.x1) for k in rows for c in cells[k] if _is_figure(c.text)
    )
    merged: list[list[float]] = []
    for x0, x1 in spans:
        if merged and x0 <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], x1)
        else:
            merged.append([x0, x1])
    return [(a, b) for a, b in merged]


def _slot_of(cell: Word, slots: list[tuple[float, float]]) -> int | None:
    mid = (cell.x0 + cell.x1) / 2
    best, dist = None, float("inf")
    for k, (a, b) in enumerate(slots):
        if a - 2 <= cell.x1 and cell.x0 <= b + 2:
            d = abs(mid - (a + b) / 2)
            if d < dist:
                best, dist = k, d
    return best


def _build(
    lines: list[Line], cells: list[list[Word]], first: int, last: int, figure_row: list[bool]
) -> Table | None:
    # Rows of years only ("2022 2021") are column headings, not figures.
    while first < last and all(_YEAR.match(c.text) for c in cells[first]):
        figure_row[first] = False
        first += 1
    rows = [k for k in range(first, last + 1) if figure_row[k]]
    slots = _slots(cells, rows)
    if not slots:
        return None
    left = slots[0][0]
    # Heading lines: up to 4 lines right above the first row, all of their words over
    # the figure columns (none in the label column).
    head_start = first
    height = lines[first].bottom - lines[first].top
    while head_start > 0 and first - head_start < 6:
        row = cells[head_start - 1]
        above = lines[head_start - 1]
        if (
            not row
            or figure_row[head_start - 1]
            or len(above.text) > 150
            or lines[head_start].top - above.bottom > 2.5 * height
            or not any(w.x1 > left for w in row)
            or any(w.x0 < left - 4 and w.x1 > left + 20 for w in row)  # a title or prose
        ):
            break
        head_start -= 1
    # Title lines right above the headings ("CONDENSED CONSOLIDATED BALANCE SHEETS",
    # "(In millions)"): short, not prose, close. They head the label column, so every
    # group of rows repeats what the table is.
    title_start = head_start
    while title_start > 0 and head_start - title_start < 3:
        above = lines[title_start - 1]
        text = above.text
        if (
            figure_row[title_start - 1]
            or len(text) > 120
            or text.endswith((".", ":", ";", ","))
            or lines[title_start].top - above.bottom > 4 * height
        ):
            break
        title_start -= 1
    label_heading: list[str] = [lines[k].text for k in range(title_start, head_start)]
    head_start = title_start
    headings = ["" for _ in slots]
    for k in range(head_start + len(label_heading), first):
        for c in cells[k]:
            if c.x1 < left - 2:
                label_heading.append(c.text)
                continue
            covered = [
                n for n, (a, b) in enumerate(slots) if c.x0 - 4 <= b and a <= c.x1 + 4
            ]
            for n in covered:
                headings[n] = f"{headings[n]} {c.text}".strip()
    body: list[str] = []
    for k in range(first, last + 1):
        label_parts = [c.text for c in cells[k] if c.x1 < left - 2]
        values = ["" for _ in slots]
        for c in cells[k]:
            if c.x1 < left - 2:
                continue
            slot = _slot_of(c, slots)
            if slot is None:
                label_parts.append(c.text)
            else:
                values[slot] = f"{values[slot]} {c.text}".strip()
        body.append("| " + " | ".join([" ".join(label_parts), *values]) + " |")
    header = "| " + " | ".join([" ".join(label_heading), *headings]) + " |"
    rule = "|" + "---|" * (len(slots) + 1)
    groups: list[str] = []
    group: list[str] = []
    size = len(header) + len(rule)
    for line in body:
        if group and size + len(line) > GROUP_CHARS:
            groups.append("\n".join([header, rule, *group]))
            group, size = [], len(header) + len(rule)
        group.append(line)
        size += len(line) + 1
    if group:
        groups.append("\n".join([header, rule, *group]))
    return Table(head_start, last, tuple(groups))


LEAD_IN_LINES = 3  # lines of text above a table that introduce it and join its first group


def page_text(lines: list[Line], tables: list[Table]) -> tuple[str, list[tuple[int, int]]]:
    """(the page as text with its tables as Markdown, the (start, end) of each table group).

    The first group's span starts at the sentence that introduces the table ("Operating
    expenses ... were as follows (dollars in millions):"): it says what the figures are,
    in words the dense model matches. Split off, the grid of figures alone lost 9
    points of SEC 10-Q figure_in_context@4000 (dense) against plain pypdf text.
    """
    parts: list[str] = []
    spans: list[tuple[int, int]] = []
    starts: list[int] = []  # where each text line written so far starts
    pos = 0
    k = 0
    by_first = {t.first: t for t in tables}
    while k < len(lines):
        table = by_first.get(k)
        if table is not None:
            lead = _lead_in(lines, k, starts)
            for n, group in enumerate(table.markdown):
                if parts:
                    parts.append("\n\n")
                    pos += 2
                spans.append((lead if n == 0 and lead is not None else pos, pos + len(group)))
                parts.append(group)
                pos += len(group)
            parts.append("\n\n")
            pos += 2
            starts = []
            k = table.last + 1
            continue
        text = lines[k].text
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")
            pos += 1
        starts.append(pos)
        parts.append(text)
        pos += len(text)
        k += 1
    return "".join(parts).rstrip("\n"), spans


def _lead_in(lines: list[Line], first: int, starts: list[int]) -> int | None:
    """Where the text introducing the table at line `first` starts, if it has one: the
    lines above it back to the previous sentence end, at most `LEAD_IN_LINES`."""
    n = min(len(starts), LEAD_IN_LINES, first)
    if n == 0:
        return None
    begin = None
    for j in range(1, n + 1):
        text = lines[first - j].text.rstrip()
        if j > 1 and text.endswith((".", "!", "?")):
            break
        begin = starts[-j]
    return begin


# --- running headers and footers -------------------------------------------------------

EDGE_LINES = 3  # lines at the top and at the bottom of a page where running lines stand
# A line counts as running when it stands at a page edge on this share of the pages
# (digits ignored: "Apple Inc. | Q3 2022 Form 10-Q | 12"). 10-Q filings repeat their
# headers on 40-100 % of the pages; body lines repeat on far fewer.
RUNNING_SHARE = 0.4
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def line_key(line: str) -> str:
    return _DIGITS.sub("#", _SPACE.sub("", line.lower()))


def _edges(lines: list[str]) -> list[int]:
    filled = [k for k, line in enumerate(lines) if line.strip()]
    return sorted(set(filled[:EDGE_LINES] + filled[-EDGE_LINES:]))


def running_lines(pages: list[list[str]]) -> frozenset[str]:
    """Keys of the lines that stand at the top or bottom of most pages."""
    if len(pages) < 4:
        return frozenset()
    counts: dict[str, int] = {}
    for lines in pages:
        for key in {line_key(lines[k]) for k in _edges(lines)}:
            counts[key] = counts.get(key, 0) + 1
    need = max(3, int(RUNNING_SHARE * len(pages) + 0.999))
    return frozenset(k for k, n in counts.items() if n >= need and k)


def drop_running(lines: list[str], running: frozenset[str]) -> tuple[list[str], list[str]]:
    """(the lines without the running ones at the page's edges, the dropped lines)."""
    if not running:
        return lines, []
    drop = {k for k in _edges(lines) if line_key(lines[k]) in running}
    return [x for k, x in enumerate(lines) if k not in drop], [lines[k] for k in sorted(drop)]
