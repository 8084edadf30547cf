"""What the format readers share: blocks, section paths, titles, failure reasons.

A `Block` is a span of a document's text that no chunk may cross (a page, a section, a
function); the readers build them with `block` and `segments`, name sections with
`HeadingPath` and clean titles with `clean_title`.

Left out: anything specific to one format (each lives in its own module).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from rag.core.models import Block

_MAX_TITLE = 200

# A reader's result: (text, blocks, title) for one-text formats.
Parsed = tuple[str, list[Block], str]


@dataclass(frozen=True)
class Pages:
    """A paged reader's result (PDF, images): one text per page and their blocks."""

    texts: tuple[str, ...]
    blocks: tuple[Block, ...]
    title: str = ""
    warnings: tuple[str, ...] = ()
    context: str = ""  # see `LoadedDocument.context`


def reason(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply"
    if isinstance(e, MemoryError):
        return "too large to process"
    msg = " ".join(str(e).split())[:160]
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def block(text: str, start: int, end: int, **kw: Any) -> Block | None:
    """A Block over text[start:end] with surrounding whitespace trimmed; None if blank."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Block(start, end, **kw) if start < end else None


def segments(
    text: str, cuts: list[tuple[int, str]], first: str = "", page: int | None = None
) -> list[Block]:
    """Blocks between successive cut offsets; each cut starts a new section."""
    bounds = [(0, first), *cuts]
    out = []
    for k, (start, section) in enumerate(bounds):
        end = bounds[k + 1][0] if k + 1 < len(bounds) else len(text)
        if (b := block(text, start, end, page=page, section=section)) is not None:
            out.append(b)
    return out


def clean_title(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    s = str(value or "")
    if s.startswith(("þÿ", "ÿþ")):  # a UTF-16 string the PDF library left undecoded
        with contextlib.suppress(UnicodeError, ValueError):
            s = s.encode("latin-1").decode("utf-16")
    s = "".join(c if c.isprintable() else " " for c in s)
    return " ".join(s.split())[:_MAX_TITLE]


class HeadingPath:
    """Section titles like "Install > Linux" from a flat run of (level, title) headings."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> str:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, clean_title(title)))
        return " > ".join(t for _, t in self.stack if t)[:500]
