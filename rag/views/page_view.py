"""A source where it stands: its page rendered, with the chunk's characters marked.

The chunk's `start`/`end` are offsets in the loader's text of its page. That text is
rebuilt from the page's chunks (together they cover it), aligned once per page with
pdfium's characters (`alignment.align`, cached on disk), and the characters it maps
to are drawn as bands (`marks.bands`), one per run of a line: light for the
chunk, stronger for the sentence that supports the answer. Pages read by OCR, and
image files, are read again by OCR on first view (the same engine and resolution give
the same text) and marked with the engine's character boxes (each band one line high).

Rendered pages are cached on disk by (document, page, chunk, sentence) under one
directory per document (dropped with the document), the marks' boxes in a text chunk
of the PNG itself, and the cache is bounded: past `max_bytes`, the least recently
shown images go first.

Left out: rendering in the extraction worker (a page of an indexed file is rendered
here, in-process: the file already passed the worker's limits when it was read),
annotations, documents without pages (`text_view.py`), and the geometry of the
bands (`marks.py`).
"""

from __future__ import annotations

import array
import hashlib
import io
import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.components.originals import is_doc_id
from rag.core.errors import ExtractionError
from rag.core.files import tree_bytes, write_atomic
from rag.core.models import Chunk
from rag.ingest import ocr
from rag.ingest.pdfium import PageChars, Pdf, Rect
from rag.views.alignment import align
from rag.views.marks import bands, ocr_chars
from rag.views.text_view import page_text

_pdfium_lock = threading.Lock()  # pdfium is not thread-safe; sessions are threads
_CHUNK_FILL = (255, 214, 0, 90)  # RGBA: the chunk, a light band the text shows through
_SENTENCE_FILL = (255, 120, 0, 110)  # the supporting sentence, stronger
_CACHE_VERSION = "v1"  # part of every cache key: a new drawing recipe draws anew


@dataclass(frozen=True)
class PageView:
    """A page of a document as shown, and what is marked on it."""

    doc_id: str
    page: int  # 1-based
    pages: int
    png: bytes
    chunk: int | None  # the marked chunk's index, or None for the page alone
    boxes: tuple[Rect, ...] = ()  # the chunk's bands: shares of the page, top-down
    sentence_boxes: tuple[Rect, ...] = ()
    ocr: bool = False
    cached: bool = False  # the image came from the cache


class PageViews:
    """Rendered source pages of one data dir, cached on disk (see the module doc)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        max_bytes: int,
        dpi: int,
        ocr_dpi: int,
        ocr_languages: tuple[str, ...],
    ) -> None:
        self.dir = Path(cache_dir)
        self.max_bytes = max_bytes
        self.dpi = dpi
        self.ocr_dpi = ocr_dpi
        self.ocr_languages = ocr_languages
        self._lock = threading.Lock()  # the size check and eviction, one at a time

    def view(
        self,
        doc_id: str,
        data: bytes,
        kind: str,
        pages: int,
        page: int,
        page_chunks: Sequence[Chunk],
        chunk: Chunk | None = None,
        sentence: tuple[int, int] | None = None,
    ) -> PageView:
        """Page `page` (1-based) of the document `data` (of `pages` pages), with
        `chunk` marked and, inside it, `sentence` (offsets in the chunk's text) marked
        stronger."""
        if not 1 <= page <= pages:
            raise ExtractionError(f"The document has no page {page} (it has {pages}).")
        spans = f"{chunk.index}:{chunk.start}:{chunk.end}" if chunk is not None else "-"
        key = f"{_CACHE_VERSION}|{kind}|{page}|{spans}|{sentence}|{self.dpi}|{self.ocr_dpi}"
        path = self._path(doc_id, "png", key)
        read_by_ocr = kind == "image" or any(c.ocr for c in page_chunks)
        index = chunk.index if chunk is not None else None
        if path.is_file():
            os.utime(path)  # recently shown: evicted last
            png = path.read_bytes()
            boxes, strong = _marks_of(png)
            return PageView(doc_id, page, pages, png, index, boxes, strong, read_by_ocr, True)
        with _pdfium_lock:
            image, chars = self._render(data, kind, page, read_by_ocr)
        boxes, strong = (), ()
        if chunk is not None:
            mapping = self._alignment(doc_id, page, page_text(page_chunks), chars)
            boxes = tuple(bands(chars, _mapped(mapping, chunk.start, chunk.end)))
            if sentence is not None:
                s0, s1 = chunk.start + sentence[0], chunk.start + sentence[1]
                strong = tuple(bands(chars, _mapped(mapping, s0, min(s1, chunk.end))))
        png = _draw(image, boxes, strong)
        self._keep(path, png)
        return PageView(doc_id, page, pages, png, index, boxes, strong, read_by_ocr)

    def drop(self, doc_id: str) -> None:
        """Forget every cached image and alignment of a document."""
        folder = self._folder(doc_id)
        if folder.is_dir():
            for f in folder.iterdir():
                f.unlink(missing_ok=True)
            folder.rmdir()

    def disk_bytes(self) -> int:
        return tree_bytes(self.dir)

    # -- rendering -------------------------------------------------------------------

    def _render(
        self, data: bytes, kind: str, page: int, read_by_ocr: bool
    ) -> tuple[np.ndarray, PageChars]:
        """The page's image and its characters (page within the document's count)."""
        if kind == "image":
            image = _image_frames(data)[page - 1]
            lines = ocr.read_image(image, self.ocr_languages, char_boxes=True)
            return image, ocr_chars(lines, image.shape[1], image.shape[0])
        try:
            pdf = Pdf(data, None)
        except Exception as e:  # indexed once, so this is a changed or corrupt file
            raise ExtractionError(f"The PDF cannot be opened to show its page ({e}).") from e
        try:
            image = pdf.render(page - 1, self.dpi)
            if read_by_ocr:
                scan = pdf.render(page - 1, self.ocr_dpi)
                lines = ocr.read_image(scan, self.ocr_languages, char_boxes=True)
                return image, ocr_chars(lines, scan.shape[1], scan.shape[0])
            return image, pdf.chars(page - 1)
        finally:
            pdf.close()

    # -- the disk cache ----------------------------------------------------------------

    def _alignment(self, doc_id: str, page: int, text: str, chars: PageChars) -> list[int]:
        """The page text's characters in `chars`: computed once per page text, cached."""
        digest = hashlib.sha256(f"{text}\x00{chars.text}".encode()).hexdigest()[:16]
        path = self._path(doc_id, "align", f"{_CACHE_VERSION}|{page}|{digest}")
        if path.is_file():
            stored = array.array("i")
            stored.frombytes(path.read_bytes())
            if len(stored) == len(text):
                return stored.tolist()
        mapping = align(text, chars.text)
        self._keep(path, array.array("i", mapping).tobytes())
        return mapping

    def _folder(self, doc_id: str) -> Path:
        if not is_doc_id(doc_id):
            raise ExtractionError("Invalid document id.")
        return self.dir / doc_id

    def _path(self, doc_id: str, suffix: str, key: str) -> Path:
        name = hashlib.sha256(key.encode()).hexdigest()[:24]
        return self._folder(doc_id) / f"{name}.{suffix}"

    def _keep(self, path: Path, data: bytes) -> None:
        write_atomic(path, data)
        with self._lock:
            self._evict()

    def _evict(self) -> None:
        files = [f for f in self.dir.glob("*/*") if f.is_file()]
        sizes = {f: f.stat() for f in files}
        total = sum(s.st_size for s in sizes.values())
        if total <= self.max_bytes:
            return
        for f in sorted(files, key=lambda f: sizes[f].st_mtime):
            if total <= self.max_bytes * 0.8:  # some room, so not every view evicts
                break
            f.unlink(missing_ok=True)
            total -= sizes[f].st_size


def _mapped(mapping: list[int], start: int, end: int) -> list[int]:
    """pdfium's characters for the page text's characters `start` to `end`."""
    return [j for j in mapping[start:end] if j >= 0]


_MARKS = "docchat-marks"  # the PNG text chunk that keeps a cached image's boxes


def _marks_of(png: bytes) -> tuple[tuple[Rect, ...], tuple[Rect, ...]]:
    """The boxes `_draw` kept in the image (read from its header, not its pixels)."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        raw = json.loads(getattr(image, "text", {}).get(_MARKS, "[[], []]"))
    boxes, strong = (tuple(tuple(float(v) for v in r) for r in rs) for rs in raw)
    return boxes, strong  # type: ignore[return-value]


def _draw(image: np.ndarray, boxes: Sequence[Rect], strong: Sequence[Rect]) -> bytes:
    """The page image with the bands drawn over it, as PNG bytes (the bands kept in a
    text chunk too, so a cached view says what it marks)."""
    from PIL import Image, ImageDraw, PngImagePlugin

    base = Image.fromarray(image).convert("RGBA")
    overlay = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    w, h = base.size
    for rects, fill in ((boxes, _CHUNK_FILL), (strong, _SENTENCE_FILL)):
        for x0, y0, x1, y1 in rects:
            draw.rectangle((x0 * w - 1, y0 * h - 1, x1 * w + 1, y1 * h + 1), fill=fill)
    info = PngImagePlugin.PngInfo()
    info.add_text(_MARKS, json.dumps([list(boxes), list(strong)]))
    out = io.BytesIO()
    # Level 3: a page is about 3x faster to write than at the default 6, 10 % larger.
    Image.alpha_composite(base, overlay).convert("RGB").save(
        out, "PNG", compress_level=3, pnginfo=info
    )
    return out.getvalue()


def _image_frames(data: bytes) -> list[np.ndarray]:
    from rag.ingest.image import frames

    return frames(data)  # Pillow is imported on first use, as by the loader
