"""pypdfium2, the second PDF engine: the one module that touches pdfium objects.

pdfium (Chrome's PDF library) repairs broken cross-reference tables, reads brotli,
ASCII85 and JBIG2 streams and legacy filter names that pypdf refuses, gives every
character with its box (for tables and layout), and renders pages to images (for
OCR). Everything leaves this module as plain values: `Word`s, `PageChars`, numpy
images, strings.

pdfium is not thread-safe: extraction runs one file at a time per worker process,
and the page view (`page_view.py`, in the app's process) holds one lock around it.

Left out: forms, annotations, attachments; pdfium's own text-layout heuristics
beyond its character order.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.ingest.layout import Word

# pdfium inserts a space wherever glyphs are apart, also inside kerned figures
# ("81 ,434"): a space narrower than this share of the text's height is not one.
_KERNING = 0.12
_GAP = 0.8  # a gap wider than this share of the height splits words without a space


Rect = tuple[float, float, float, float]  # x0, y0, x1, y1: shares of the shown page, top-down


@dataclass(frozen=True)
class PageChars:
    """pdfium's characters of a page, one per character index, with their boxes.

    `text[i]` is character i (pdfium's generated spaces and line breaks included);
    `boxes[i]` is its box as shares of the page as rendered (crop box and /Rotate
    applied, 0-1 from the top-left corner), or None for a character without one.
    """

    text: str
    boxes: tuple[Rect | None, ...]
    width: float  # the page as shown, in points
    height: float


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

    def size(self, index: int) -> tuple[float, float]:
        """Page `index`'s width and height in points (the page is not loaded)."""
        width, height = self._doc.get_page_size(index)
        return float(width), float(height)

    def words(self, index: int) -> list[Word]:
        """The words of page `index`, top-down coordinates in points."""
        with self._textpage(index) as (textpage, height):
            return _words(textpage, height)

    def text(self, index: int) -> str:
        """pdfium's plain text of page `index` (its own line breaks)."""
        with self._textpage(index) as (textpage, _):
            return str(textpage.get_text_range()).replace("\r\n", "\n").replace("\r", "\n")

    def chars(self, index: int) -> PageChars:
        """Page `index`'s characters with their boxes (see `PageChars`)."""
        import pypdfium2.raw as c

        page = self._doc[index]
        try:
            width, height = page.get_size()
            to_share = _to_share(page, width, height)
            # pdfium finds lines in the shown orientation: on a page turned by 90 or 180
            # degrees it interleaves the lines of columns. Its characters are read with
            # the page unturned (boxes are in page space either way; `to_share` already
            # holds the turned page's transform), then the page is turned back.
            turned = page.get_rotation()
            if turned:
                page.set_rotation(0)
            textpage = page.get_textpage()
            if turned:
                page.set_rotation(turned)
            try:
                n = max(textpage.count_chars(), 0)
                chars: list[str] = []
                boxes: list[Rect | None] = []
                rect = c.FS_RECTF()
                for i in range(n):
                    code = c.FPDFText_GetUnicode(textpage, i)
                    chars.append(chr(code) if 0 < code < 0x110000 else "\ufffd")
                    # The loose box spans the font's ascent to descent: one height per
                    # line, so a highlight reads as a band, not as ragged glyph boxes.
                    if not c.FPDFText_GetLooseCharBox(textpage, i, rect) or (
                        rect.right <= rect.left or rect.top <= rect.bottom
                    ):
                        boxes.append(None)
                        continue
                    boxes.append(to_share(rect.left, rect.bottom, rect.right, rect.top))
            finally:
                textpage.close()
            return PageChars("".join(chars), tuple(boxes), width, height)
        finally:
            page.close()

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


# Device coordinates are integers: map on a large virtual bitmap, then take shares.
_DEVICE = 100_000


def _to_share(page: Any, width: float, height: float) -> Any:
    """A function from page-space boxes to `Rect`s, through pdfium's own display
    transform (the one rendering uses: crop box and /Rotate). It is affine, so three
    points fix it and each box costs arithmetic, not calls into pdfium."""
    import pypdfium2.raw as c

    def device(x: float, y: float) -> tuple[float, float]:
        dx, dy = ctypes.c_int(), ctypes.c_int()
        c.FPDF_PageToDevice(page, 0, 0, _DEVICE, _DEVICE, 0, x, y, dx, dy)
        return dx.value / _DEVICE, dy.value / _DEVICE

    ox, oy = device(0.0, 0.0)
    ax, ay = device(1000.0, 0.0)
    bx, by = device(0.0, 1000.0)
    m = ((ax - ox) / 1000, (bx - ox) / 1000, (ay - oy) / 1000, (by - oy) / 1000)

    def share(left: float, bottom: float, right: float, top: float) -> Rect:
        xs = [ox + m[0] * x + m[1] * y for x, y in ((left, bottom), (right, top))]
        ys = [oy + m[2] * x + m[3] * y for x, y in ((left, bottom), (right, top))]
        return min(xs), min(ys), max(xs), max(ys)

    return share


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
