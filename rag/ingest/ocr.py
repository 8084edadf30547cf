"""OCR, offline: page images to lines of text with their boxes.

The engine is RapidOCR (`rapidocr-onnxruntime`): PP-OCRv4 detection and recognition
models shipped inside its wheel, run by the onnxruntime DocChat already has, so
nothing is downloaded. This is the only module that knows it; its results become
`OcrLine`s here. The engine is loaded once per process (0.6 s) on first use, which
is the extraction worker, never the app.

Reading order: lines are sorted top to bottom, and boxes whose vertical middles
overlap are one line, left to right; on two-column pages (an empty vertical strip
between two well-filled halves) the left column is read before the right one, as
the text layer of such pages has it.

Left out: languages beyond what the packaged model reads (Latin script and Chinese),
handwriting, rotated text beyond the engine's own 180-degree classifier, layout
analysis beyond two columns (three or more are read as two).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.core.errors import ConfigError

# The packaged PP-OCRv4 models read these (the recognizer's dictionary is Chinese
# characters plus ASCII); other languages need models that are not shipped.
LANGUAGES = frozenset({"en", "ch"})
MIN_SCORE = 0.5  # recognitions below this confidence are noise (specks, lines, stamps)
# An empty band between two lines this many line heights tall is read again (_in_gaps).
GAP_LINES = 0.8
GAP_PAD = 0.5  # with this much of a line height of each neighbour (0.15: too small to detect)


@dataclass(frozen=True)
class OcrLine:
    """One line of recognized text; the box is in the image's pixels (x0, top, x1, bottom)."""

    text: str
    box: tuple[float, float, float, float]
    score: float
    # With `read_image(..., char_boxes=True)`: each character's box (None for a space
    # between words), one per character of `text`; else empty.
    chars: tuple[tuple[float, float, float, float] | None, ...] = ()


_engine: Any = None
_lock = threading.Lock()


def _get_engine() -> Any:
    global _engine
    with _lock:
        if _engine is None:
            from rapidocr_onnxruntime import RapidOCR

            _engine = RapidOCR()
        return _engine


def check_languages(languages: tuple[str, ...]) -> None:
    unknown = sorted(set(languages) - LANGUAGES)
    if unknown:
        raise ConfigError(
            f"OCR cannot read {', '.join(unknown)}: the packaged model reads "
            f"{', '.join(sorted(LANGUAGES))} (DOCCHAT_OCR_LANGUAGES)."
        )


def read_image(
    image: np.ndarray, languages: tuple[str, ...] = ("en",), *, char_boxes: bool = False
) -> list[OcrLine]:
    """The lines of text in an RGB image (H x W x 3, uint8), in reading order; with
    `char_boxes`, each with its characters' boxes (the page view marks them). The text
    is the same either way (the same recognition; the boxes come from its alignment)."""
    check_languages(languages)
    boxes = _recognize(image, char_boxes)
    return _reading_order(boxes + _in_gaps(image, boxes, char_boxes))


def _recognize(image: np.ndarray, char_boxes: bool, top: int = 0) -> list[OcrLine]:
    """The engine's lines in `image`, their boxes moved down by `top` pixels."""
    engine = _get_engine()
    result, _ = engine(image, return_word_box=True) if char_boxes else engine(image)
    boxes: list[OcrLine] = []
    for entry in result or []:
        points, raw, score = entry[0], str(entry[1]), float(entry[2])
        text = " ".join(raw.split())
        if not text or score < MIN_SCORE:
            continue
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) + top for p in points]
        quads = entry[3] if char_boxes and len(entry) > 3 else None
        chars = _char_boxes(raw, quads, top) if quads is not None else ()
        box = (min(xs), min(ys), max(xs), max(ys))
        boxes.append(OcrLine(text, box, score, chars if len(chars) == len(text) else ()))
    return boxes


def _in_gaps(image: np.ndarray, boxes: list[OcrLine], char_boxes: bool) -> list[OcrLine]:
    """Lines the detector missed, read from the empty bands between the lines it found.

    The detector sees the page shrunk to 2,000 px, and at that size it now and then
    skips a whole line of body text (pdflatex-4-pages.pdf page 4 at 300 dpi: two of
    44 lines, most of that page's 6.7 % CER). A band taller than `GAP_LINES` lines,
    cut from the full-size image, is read again on its own; what it finds that does
    not overlap a line already found is added. Bands are small, so this costs little
    (benchmarks/ocr.py gives the figures).
    """
    if len(boxes) < 2:
        return []
    rows = _rows(boxes)
    height = float(np.median([b.box[3] - b.box[1] for b in boxes]))
    found: list[OcrLine] = []
    for above, below in itertools.pairwise(rows):
        if below.box[1] - above.box[3] < GAP_LINES * height:
            continue
        # A band cut flush with its neighbours loses a line that touches its edge
        # (the detector needs a margin): it takes in a sliver of each neighbour, whose
        # fragments the overlap test then drops.
        pad = GAP_PAD * height
        top, bottom = max(int(above.box[3] - pad), 0), int(np.ceil(below.box[1] + pad))
        for line in _recognize(image[top:bottom], char_boxes, top):
            if not any(_overlap(line.box, b.box) for b in boxes):
                found.append(line)
    return found


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    """Whether two boxes share area (a line found twice, by the page and by a band)."""
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _char_boxes(
    raw: str, quads: list[Any], top: int = 0
) -> tuple[tuple[float, float, float, float] | None, ...]:
    """The engine's per-character quads for `raw`, as boxes for its whitespace-folded
    text (one None per space kept); empty when they do not pair up."""
    if len(quads) != len(raw):
        return ()
    out: list[tuple[float, float, float, float] | None] = []
    for ch, quad in zip(raw, quads, strict=True):
        if ch.isspace():
            if out and out[-1] is not None:
                out.append(None)
            continue
        xs = [float(p[0]) for p in quad]
        ys = [float(p[1]) + top for p in quad]
        out.append((min(xs), min(ys), max(xs), max(ys)))
    while out and out[-1] is None:
        out.pop()
    return tuple(out)


def _reading_order(boxes: list[OcrLine]) -> list[OcrLine]:
    """Lines top to bottom; on a two-column page, each column's lines in turn.

    Boxes that cross the `_gutter` (titles, abstracts spanning both columns) cut the
    page into bands; within a band the left column is read before the right one.
    """
    gutter = _gutter(boxes)
    if gutter is None:
        return _rows(boxes)
    out: list[OcrLine] = []
    band: list[OcrLine] = []
    for b in [*sorted(boxes, key=lambda b: b.box[1]), None]:
        if b is None or b.box[0] < gutter < b.box[2]:  # spans the gutter: the band ends
            out += _rows([x for x in band if x.box[2] <= gutter])
            out += _rows([x for x in band if x.box[2] > gutter])
            out += _rows([b] if b is not None else [])
            band = []
        else:
            band.append(b)
    return out


# A gutter is crossed by at most this share of the boxes: the title block of a paper
# (title, authors, affiliations centred above the columns) is 11-16 % of the boxes of
# tracemonkey.pdf and multicolumn.pdf page 1. Each column holds at least _COLUMN_BOXES
# of the others and runs over _COLUMN_HEIGHT of the text's height, so a small table
# on a one-column page (its cells cross no gutter, but it is short) is read by rows.
# Measured on those two pages at 200 dpi (same boxes, benchmarks/ocr.py's CER): read
# by rows 61 % and 73 %, by columns 10 % and 33 %.
_CROSSING = 0.2
_COLUMN_BOXES = 0.25
_COLUMN_HEIGHT = 0.4


def _gutter(boxes: list[OcrLine]) -> float | None:
    """The x of the strip between two columns, or None for a one-column page.

    The strip is the widest x-range in the middle half of the text crossed by the
    fewest boxes; prose lines of a one-column page cross it, so it is none there.
    """
    if len(boxes) < 10:
        return None
    left = min(b.box[0] for b in boxes)
    width = int(max(b.box[2] for b in boxes) - left)
    if width < 100:
        return None
    crossing = np.zeros(width + 2, dtype=np.int32)
    for b in boxes:
        crossing[int(b.box[0] - left) : int(b.box[2] - left) + 1] += 1
    middle = crossing[width // 4 : 3 * width // 4]
    fewest = int(middle.min())
    if fewest > _CROSSING * len(boxes):
        return None
    best, run, at = 0, 0, 0
    for x, n in enumerate(middle):
        run = run + 1 if n == fewest else 0
        if run > best:
            best, at = run, x - run // 2
    gutter = left + width // 4 + at
    top = min(b.box[1] for b in boxes)
    height = max(b.box[3] for b in boxes) - top
    rest = [b for b in boxes if not b.box[0] < gutter < b.box[2]]
    for side in ([b for b in rest if b.box[2] <= gutter], [b for b in rest if b.box[0] >= gutter]):
        if len(side) < _COLUMN_BOXES * len(rest):
            return None
        if max(b.box[3] for b in side) - min(b.box[1] for b in side) < _COLUMN_HEIGHT * height:
            return None
    return float(gutter)


def _rows(boxes: list[OcrLine]) -> list[OcrLine]:
    """Boxes merged into lines (overlapping vertical middles), top to bottom."""
    rows: list[list[OcrLine]] = []
    for b in sorted(boxes, key=lambda b: (b.box[1] + b.box[3]) / 2):
        mid = (b.box[1] + b.box[3]) / 2
        if rows:
            top = min(x.box[1] for x in rows[-1])
            bottom = max(x.box[3] for x in rows[-1])
            if top <= mid <= bottom:
                rows[-1].append(b)
                continue
        rows.append([b])
    lines = []
    for row in rows:
        row.sort(key=lambda b: b.box[0])
        lines.append(
            OcrLine(
                " ".join(b.text for b in row),
                (
                    min(b.box[0] for b in row),
                    min(b.box[1] for b in row),
                    max(b.box[2] for b in row),
                    max(b.box[3] for b in row),
                ),
                min(b.score for b in row),
                _joined_chars(row),
            )
        )
    return lines


def _joined_chars(row: list[OcrLine]) -> tuple[tuple[float, float, float, float] | None, ...]:
    """The character boxes of boxes joined by spaces into one line (empty unless all
    of them have theirs)."""
    if not all(b.chars for b in row):
        return ()
    out: list[tuple[float, float, float, float] | None] = []
    for k, b in enumerate(row):
        if k:
            out.append(None)
        out.extend(b.chars)
    return tuple(out)


def failure(e: Exception) -> str:
    """What went wrong in the engine, safe to show: its errors carry whole tracebacks
    (onnxruntime's message), and under the worker's memory cap its allocations fail."""
    if isinstance(e, MemoryError) or "alloc" in str(e).lower():
        return "OCR ran out of memory"
    return f"OCR failed ({type(e).__name__})"


def text_of(lines: list[OcrLine]) -> str:
    return "\n".join(line.text for line in lines)
