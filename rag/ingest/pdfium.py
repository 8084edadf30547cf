"""pypdfium2, the second PDF engine: the one module that touches pdfium objects.

pdfium (Chrome's PDF library) repairs broken cross-reference tables, reads brotli,
ASCII85 and JBIG2 streams and legacy filter names that pypdf refuses, gives every
character with its box (for tables and layout), and renders pages to images (for
OCR). Everything leaves this module as plain values: `Word`s, numpy images, strings.

pdfium is not thread-safe; extraction runs one file at a time per worker process,
so nothing here is shared between threads.

Left out: forms, annotations, attachments; pdfium's own text-layout heuristics
beyond its character order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from .layout import Word

# pdfium inserts a space wherever glyphs are apart, also inside kerned figures
# ("81 ,434"): a space narrower than this share of the text's height is not one.
_KERNING = 0.12
_GAP = 0.8  # a gap wider than this share of the height splits words without a space


class Pdf:
    """An open document (raises what pdfium raises; callers turn that into RagErrors)."""

    def __init__(self, data: bytes, password: str | None) -> None:
        import pypdfium2 as pdfium

        self._doc: Any = pdfium.PdfDocument(data, password=password or None)

    def __len__(self) -> int:
        return len(self._doc)

    def close(self) -> None:
        self._doc.close()

    def title(self) -> str:
        try:
            return str(self._doc.get_metadata_dict().get("Title", "") or "")
        except Exception:  # unreadable metadata only costs the title
            return ""

    def words(self, index: int) -> list[Word]:
        """The words of page `index`, top-down coordinates in points."""
        with self._textpage(index) as (textpage, height):
            return _words(textpage, height)

    def text(self, index: int) -> str:
        """pdfium's plain text of page `index` (its own line breaks)."""
        with self._textpage(index) as (textpage, _):
            return str(textpage.get_text_range()).replace("\r\n", "\n").replace("\r", "\n")

    @contextlib.contextmanager
    def _textpage(self, index: int) -> Iterator[tuple[Any, float]]:
        """Page `index`'s text page and the page's height, closed after use."""
        page = self._doc[index]
        try:
            textpage = page.get_textpage()
            try:
                yield textpage, page.get_height()
            finally:
                textpage.close()
        finally:
            page.close()

    def render(self, index: int, dpi: float) -> np.ndarray:
        """Page `index` as an RGB image (H x W x 3, uint8) at `dpi`."""
        page = self._doc[index]
        try:
            bitmap = page.render(scale=dpi / 72.0, rev_byteorder=True)
            try:
                image = np.array(bitmap.to_numpy()[:, :, :3], copy=True)
            finally:
                bitmap.close()
            return image
        finally:
            page.close()


def _words(textpage: Any, page_height: float) -> list[Word]:
    n = textpage.count_chars()
    if n <= 0:
        return []
    text = textpage.get_text_range(0, n)
    words: list[Word] = []
    cur: list[str] = []
    x0 = x1 = top = bottom = 0.0
    spaced = False  # a space came after the current word's last character
    for j in range(min(n, len(text))):
        ch = text[j]
        if ch.isspace() or ch == "\x00":
            spaced = bool(cur)
            if ch in "\r\n" and cur:
                words.append(Word("".join(cur), x0, x1, top, bottom))
                cur, spaced = [], False
            continue
        left, b, right, t = textpage.get_charbox(j)
        ctop, cbottom = page_height - t, page_height - b
        height = max(bottom - top, cbottom - ctop, 1.0)
        split = left - x1 > (_KERNING if spaced else _GAP) * height
        if cur and (split or left < x0 - 1 or ctop > bottom or cbottom < top):
            words.append(Word("".join(cur), x0, x1, top, bottom))
            cur = []
        spaced = False
        if not cur:
            x0, x1, top, bottom = left, right, ctop, cbottom
        else:
            x1, top, bottom = max(x1, right), min(top, ctop), max(bottom, cbottom)
        cur.append(ch)
    if cur:
        words.append(Word("".join(cur), x0, x1, top, bottom))
    return words
