"""Images (PNG, JPEG, TIFF, WebP): a photo or scan of pages, read by OCR.

Each frame is a page (a multi-page TIFF is a document of pages). Frames are decoded
by Pillow, converted to RGB, scaled down when larger than `_MAX_SIDE` (the engine
works at 2000 px on the longer side at most), and read by `ocr.py`.
Decompression bombs are refused by Pillow's own pixel limit.

Left out: EXIF rotation beyond the orientation tag, layout (columns are read across),
images inside other documents (see pdf.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from io import BytesIO
from typing import Any

import numpy as np

from rag.core.errors import ExtractionError, NoTextError, RagError
from rag.core.models import Block, ReadOptions
from rag.core.settings import DEFAULT_READ
from rag.ingest import ocr
from rag.ingest.blocks import Pages, reason

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})
# Pixels on the longer side. RapidOCR itself reduces anything past 2000 px (its
# max_side_len) before detection and recognition; this only bounds the memory of
# the frames held before that.
_MAX_SIDE = 4000
_MAX_FRAMES = 500
_MAX_PIXELS = 100_000_000  # Pillow raises DecompressionBombError past twice this


def read(
    name: str,
    data: bytes,
    options: ReadOptions = DEFAULT_READ,
    progress: Callable[[str, int, int], None] | None = None,
) -> Pages:
    if not options.ocr:
        raise NoTextError(f"{name}: an image is read by OCR, and OCR is turned off.")
    pictures = frames(data, name)
    texts: list[str] = []
    blocks: list[Block] = []
    warnings: list[str] = []
    for k, frame in enumerate(pictures):
        if progress is not None:
            progress("ocr", k + 1, len(pictures))
        try:
            text = ocr.text_of(ocr.read_image(frame, options.ocr_languages))
        except RagError:
            raise
        except Exception as e:  # the engine failed (out of memory under the worker's cap)
            raise ExtractionError(f"{name}: {ocr.failure(e)} on page {k + 1}") from e
        texts.append(text)
        if text.strip():
            blocks.append(Block(0, len(text), page=k + 1, ocr=True))
        else:
            warnings.append(f"page {k + 1}: OCR found no text")
    if not blocks:
        raise NoTextError(f"{name}: OCR found no text in this image.")
    return Pages(tuple(texts), tuple(blocks), "", tuple(warnings))


def frames(data: bytes, name: str = "The image") -> list[np.ndarray]:
    """The frames of an image file as RGB arrays, as OCR reads them (the page view
    shows and reads the same ones)."""
    from PIL import Image, ImageOps, ImageSequence

    Image.MAX_IMAGE_PIXELS = _MAX_PIXELS
    try:
        image = Image.open(BytesIO(data))
        return [
            _rgb(ImageOps.exif_transpose(f) or f)
            for f in itertools.islice(ImageSequence.Iterator(image), _MAX_FRAMES)
        ]
    except MemoryError:
        raise
    except Image.UnidentifiedImageError as e:  # its text names a BytesIO object
        raise ExtractionError(f"{name}: not a readable image (unknown or broken image data)") from e
    except Exception as e:  # truncated, unknown or hostile image data
        raise ExtractionError(f"{name}: not a readable image ({reason(e)})") from e


def _rgb(frame: Any) -> np.ndarray:
    img = frame.convert("RGB")
    if max(img.size) > _MAX_SIDE:
        img.thumbnail((_MAX_SIDE, _MAX_SIDE))
    return np.asarray(img, dtype=np.uint8)
