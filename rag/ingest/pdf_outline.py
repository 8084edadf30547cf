"""A PDF's sections: outline entries, where each starts in its page's text, the blocks.

`outline` reads the bookmarks as (title, "Part > Chapter" path) per start page, walked
without recursion (a hostile file nests them deeply). `page_blocks` cuts a page where
an outline title starting on it appears in its text (a heading-like line preferred),
and the open section carries over to the next pages. `cut_at_tables` cuts the blocks
again at the edges of the page's table groups, so no chunk mixes a table with text.

Left out: sections guessed from font sizes or numbering in files without an outline
(their pages are one block each), reading the text itself (`pdf_page.py`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

from rag.core.models import Block
from rag.ingest.blocks import block, clean_title, segments


def outline(reader: Any, n_pages: int) -> dict[int, list[tuple[str, str]]]:
    """Outline entries by 0-based start page: (title, "Part > Chapter" path), in order."""
    found: list[tuple[int, str, str]] = []
    try:
        path: list[str] = []
        stack: list[tuple[Iterator[Any], int]] = [(iter(reader.outline), 0)]
        while stack:  # nested lists follow their parent entry; walk them without recursion
            it, depth = stack[-1]
            item = next(it, None)
            if item is None:
                stack.pop()
            elif isinstance(item, list):
                stack.append((iter(item), depth + 1))
            else:
                title = clean_title(getattr(item, "title", ""))
                del path[depth:]
                path.append(title)
                page = reader.get_destination_page_number(item)
                if title and isinstance(page, int) and 0 <= page < n_pages:
                    found.append((page, title, " > ".join(t for t in path if t)[:500]))
    except Exception:  # a broken outline only costs the section names
        return {}
    by_page: dict[int, list[tuple[str, str]]] = {}
    for page, title, section in found:
        by_page.setdefault(page, []).append((title, section))
    return by_page


def page_blocks(
    text: str, page: int, entries: list[tuple[str, str]], section: str
) -> tuple[list[Block], str]:
    """Blocks of one page, cut where an outline title starting on it appears in its text."""
    cuts: list[tuple[int, str]] = [(0, section)]
    search_from = 0
    for k, (title, path) in enumerate(entries):
        # Searching is bounded: a hostile outline may put 100,000 entries on one page.
        found = _find_title(text, title, search_from) if k < 200 else None
        if found is None:
            # Position unknown: it names what is open, so the page's section stays right.
            cuts[-1] = (cuts[-1][0], path)
            continue
        pos, search_from = max(found[0], cuts[-1][0]), found[1]
        if pos == cuts[-1][0]:
            cuts[-1] = (pos, path)
        else:
            cuts.append((pos, path))
    last = cuts[-1][1]
    if not text.strip():
        return [], last
    return segments(text, cuts[1:], first=cuts[0][1], page=page), last


def cut_at_tables(text: str, blocks: list[Block], spans: list[tuple[int, int]]) -> list[Block]:
    """Blocks cut again at the edges of table groups, so no chunk mixes them with text."""
    if not spans:
        return blocks
    out: list[Block] = []
    for b in blocks:
        inner = {x for span in spans for x in span if b.start < x < b.end}
        for lo, hi in itertools.pairwise(sorted({b.start, b.end, *inner})):
            if (c := block(text, lo, hi, page=b.page, section=b.section)) is not None:
                out.append(c)
    return out


def _find_title(text: str, title: str, start: int) -> tuple[int, int] | None:
    """(block start, match end) of `title` in text[start:], preferring a heading-like line."""
    words = title.split()[:30]
    if not words:
        return None
    pattern = re.compile(r"\s+".join(map(re.escape, words)), re.IGNORECASE)
    first = None
    for k, m in enumerate(pattern.finditer(text, start)):
        line_start = text.rfind("\n", 0, m.start()) + 1
        # "1.2 Title" at a line start is the heading; the same words mid-sentence are not.
        if len(text[line_start : m.start()].strip()) <= 10:
            return (max(line_start, start), m.end())
        first = first or (m.start(), m.end())
        if k >= 50:
            break
    return first
