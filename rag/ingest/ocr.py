"""OCR, offline: page images to lines of text with their boxes.

The engine is RapidOCR (`rapidocr-onnxruntime`): PP-OCRv4 detection and recognition
models shipped inside its wheel, run by the onnxruntime DocChat already has, so
nothing is downloaded. This is the only module that knows it; its results become
`OcrLine`s here. The engine is loaded once per process (0.6 s) on first use, which
is the extraction worker, never the app.

Reading order: lines are sorted top to bottom, and boxes whose vertical middles
overlap are one line, left to right.

Left out: languages beyond what the packaged model reads (Latin script and Chinese),
handwriting, rotated text beyond the engine's own 180-degree classifier, layout
analysis (columns are read across).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError

# The packaged PP-OCRv4 models read these (the recognizer's dictionary is Chinese
# characters plus ASCII); other languages need models that are not shipped.
LANGUAGES = frozenset({"en", "ch"})
MIN_SCORE = 0.5  # recognitions below this confidence are noise (specks, lines, stamps)


@dataclass(frozen=True)
class OcrLine:
    """One line of recognized text; the box is in the image's pixels (x0, top, x1, bottom)."""

    text: str
    box: tuple[float, float, float, float]
    score: float


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


def read_image(image: np.ndarray, languages: tuple[str, ...] = ("en",)) -> list[OcrLine]:
    """The lines of text in an RGB image (H x W x 3, uint8), in reading order."""
    check_languages(languages)
    result, _ = _get_engine()(image)
    boxes: list[OcrLine] = []
    for points, text, score in result or []:
        text = " ".join(str(text).split())
        if not text or float(score) < MIN_SCORE:
            continue
        xs = [float(p[0]) for p in points]
        ys = [float(p[1]) for p in points]
        boxes.append(OcrLine(text, (min(xs), min(ys), max(xs), max(ys)), float(score)))
    return _reading_order(boxes)


def _reading_order(boxes: list[OcrLine]) -> list[OcrLine]:
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
            )
        )
    return lines


def text_of(lines: list[OcrLine]) -> str:
    return "\n".join(line.text for line in lines)
