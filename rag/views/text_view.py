"""A source of a document without pages: its chunk in the text around it.

The loader's text is rebuilt from the document's chunks (`page_text`: together they
cover it, with gaps as spaces), and `text_view` cuts out the chunk with a few
paragraphs around it, or, for code, a few numbered lines. `page_text` also gives the
page view the text it aligns with pdfium's characters.

Left out: rendering (the pages do it; `markdown.py` turns a `TextView` into Markdown),
pages of PDFs and images (`page_view.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rag.core.models import Chunk


@dataclass(frozen=True)
class TextView:
    """A source of a document without pages: its chunk in the text around it.

    `before + chunk + after` is a stretch of the loader's text; `sentence` is the
    supporting sentence's span in `chunk`. For code, `first_line` numbers the lines.
    """

    before: str
    chunk: str
    after: str
    sentence: tuple[int, int] | None = None
    first_line: int | None = None


AROUND_PARAGRAPHS = 2  # paragraphs shown before and after a chunk of a text document
AROUND_LINES = 6  # lines of code shown before and after a chunk of code
_AROUND_CHARS = 1500  # at most this much text each side (a paragraph can be a page)


def text_view(
    chunks: Sequence[Chunk], chunk: Chunk, sentence: tuple[int, int] | None = None
) -> TextView:
    """`chunk` in its document's text, rebuilt from the document's `chunks`."""
    text = page_text([c for c in chunks if c.page == chunk.page])
    head, tail = text[: chunk.start], text[chunk.end :]
    if chunk.line_start is not None:  # code: whole lines around, numbered
        # The last piece of `head` is the start of the chunk's first line.
        before = "\n".join(head.split("\n")[-AROUND_LINES - 1 :])
        after = "\n".join(tail.split("\n")[: AROUND_LINES + 1])
        first = chunk.line_start - before.count("\n")
        return TextView(before, chunk.text, after, sentence, max(first, 1))
    paragraphs_before = head.split("\n\n")
    before = "\n\n".join(paragraphs_before[-AROUND_PARAGRAPHS - 1 :])[-_AROUND_CHARS:]
    after = "\n\n".join(tail.split("\n\n")[: AROUND_PARAGRAPHS + 1])[:_AROUND_CHARS]
    return TextView(before, chunk.text, after, sentence)


def page_text(chunks: Sequence[Chunk]) -> str:
    """The loader's text of one page as far as its chunks cover it (gaps as spaces)."""
    size = max((c.end for c in chunks), default=0)
    out = [" "] * size
    for c in chunks:
        out[c.start : c.start + len(c.text)] = c.text
    return "".join(out)
