"""Which boxes to draw: a page's characters picked for a chunk, as bands of one line.

`bands` turns picked characters (indices into a page's `PageChars`) into boxes, one
per run of characters that follow each other on one line, cut where a character
outside the run sits inside the band (a footnote mark pdfium reads elsewhere).
`inside` and `text_inside` go the other way, from boxes back to the characters they
cover (what a highlight shows). `ocr_chars` gives OCR lines the same form as
pdfium's characters, so OCR pages and image files are marked the same way.

Left out: which characters a chunk maps to (`alignment.py`), drawing, caching
(`page_view.py`).
"""

from __future__ import annotations

from collections.abc import Sequence

from rag.ingest import ocr
from rag.ingest.pdfium import PageChars, Rect


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
