"""A source where it stands: its page rendered, with the chunk's characters marked.

The chunk's `start`/`end` are offsets in the loader's text of its page. That text is
rebuilt from the page's chunks (together they cover it), aligned once per page with
pdfium's characters (`alignment.align`, cached on disk), and the characters it maps
to are drawn as bands, one per run of a line: light for the chunk, stronger for
the sentence that supports the answer. Pages read by OCR, and image files, are read
again by OCR on first view (the same engine and resolution give the same text) and
marked with the engine's character boxes (each band one line high).

Rendered pages are cached on disk by (document, page, chunk, sentence) under one
directory per document (dropped with the document), the marks' boxes in a text chunk
of the PNG itself, and the cache is bounded: past `max_bytes`, the least recently
shown images go first.

Left out: rendering in the extraction worker (a page of an indexed file is rendered
here, in-process: the file already passed the worker's limits when it was read),
annotations.
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


def bands(chars: PageChars, picked: Sequence[int]) -> list[Rect]:
    """Boxes covering the characters `picked` (indices into `chars`), one per run of
    characters that follow each other on one line with nothing unpicked between
    (in pdfium's order, and on the page: a footnote mark pdfium reads elsewhere
    splits the band it sits in)."""
    chosen = sorted({i for i in picked if 0 <= i < len(chars.boxes) and chars.boxes[i]})
    runs: list[list[int]] = []
    cur: Rect | None = None
    axis = ""  # "x" (text runs left-right) or "y" (a rotated line), once known
    for i in chosen:
        box = chars.boxes[i]
        assert box is not None
        last = runs[-1][-1] if runs else -1
        gap = any(not ch.isspace() and ch != "\x00" for ch in chars.text[last + 1 : i])
        step = "" if cur is None or gap else _step(cur, box, axis)
        if cur is not None and step:
            cur = _union(cur, box)
            axis = step
            runs[-1].append(i)
        else:
            cur, axis = box, ""
            runs.append([i])
    taken = set(chosen)
    others = [b for k, b in enumerate(chars.boxes) if b is not None and k not in taken
              and not chars.text[k].isspace()]  # fmt: skip
    out: list[Rect] = []
    for run in runs:
        out.extend(_split_at(others, [chars.boxes[i] for i in run]))  # type: ignore[misc]
    return out


def _union(a: Rect, b: Rect) -> Rect:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _inside(box: Rect, rect: Rect) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return rect[0] <= cx <= rect[2] and rect[1] <= cy <= rect[3]


def _split_at(others: Sequence[Rect], boxes: list[Rect]) -> list[Rect]:
    """The band of `boxes`, cut wherever a character outside it sits inside it."""
    band = boxes[0]
    for b in boxes[1:]:
        band = _union(band, b)
    if len(boxes) == 1 or not any(_inside(o, band) for o in others):
        return [band]
    out: list[Rect] = []
    part = boxes[0]
    for b in boxes[1:]:
        wider = _union(part, b)
        if any(_inside(o, wider) and not _inside(o, part) for o in others):
            out.append(part)
            part = b
        else:
            part = wider
    out.append(part)
    return out


def inside(chars: PageChars, rects: Sequence[Rect]) -> list[int]:
    """The characters whose box centre lies inside one of `rects`, in pdfium's order."""
    return [i for i, box in enumerate(chars.boxes)
            if box is not None and any(_inside(box, r) for r in rects)]  # fmt: skip


def text_inside(chars: PageChars, rects: Sequence[Rect]) -> str:
    """pdfium's text inside `rects`: what a highlight shows (the tests compare it with
    the chunk's text)."""
    return "".join(chars.text[i] for i in inside(chars, rects))


def _step(band: Rect, box: Rect, axis: str) -> str:
    """The axis along which `box` continues `band` on the same line, or ""."""
    def overlap(a0: float, a1: float, b0: float, b1: float) -> float:
        return max(0.0, min(a1, b1) - max(a0, b0)) / max(min(a1 - a0, b1 - b0), 1e-9)

    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    # Along x: the same line (heights overlap) and the box outside the band's middle.
    along_x = overlap(band[1], band[3], box[1], box[3]) >= 0.5 and not (
        band[0] + (box[2] - box[0]) / 2 < cx < band[2] - (box[2] - box[0]) / 2
    )
    along_y = overlap(band[0], band[2], box[0], box[2]) >= 0.5 and not (
        band[1] + (box[3] - box[1]) / 2 < cy < band[3] - (box[3] - box[1]) / 2
    )
    if axis == "x":
        return "x" if along_x else ""
    if axis == "y":
        return "y" if along_y else ""
    return "x" if along_x else "y" if along_y else ""


def ocr_chars(lines: Sequence[ocr.OcrLine], width: int, height: int) -> PageChars:
    """OCR lines as characters with boxes: each line's box shared out over its
    characters by position (the text is `ocr.text_of(lines)`, character for character)."""
    text = ocr.text_of(list(lines))
    boxes: list[Rect | None] = []
    for k, line in enumerate(lines):
        if k:
            boxes.append(None)  # the line break
        x0, top, x1, bottom = line.box
        if len(line.chars) == len(line.text):  # the engine's own character boxes
            for c in line.chars:
                band = None if c is None else (c[0] / width, top / height, c[2] / width)
                boxes.append(None if band is None else (*band, bottom / height))
            continue
        n = max(len(line.text), 1)
        for j, ch in enumerate(line.text):
            if ch.isspace():
                boxes.append(None)
                continue
            a, b = x0 + (x1 - x0) * j / n, x0 + (x1 - x0) * (j + 1) / n
            boxes.append((a / width, top / height, b / width, bottom / height))
    return PageChars(text, tuple(boxes), float(width), float(height))


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
