"""One PDF page's text: its text layer (pypdf or pdfium), or OCR when it has none.

`page_text` reads the text layer with pypdf first and falls back to pdfium page by
page (or the other way round when `ReadOptions.pdf_text` asks for pdfium), saying
which engine read it when the first one failed. `ocr_page` renders a textless page
and reads it with the OCR engine (`ocr.py`); `too_small` says which pages are too
small to hold a line of text, so OCR skips them. `inflates_past_limit` tells a
decompression bomb from a scanned page, both of which give pypdf no text.

Left out: opening the file and assembling the pages (`pdf.py`), sections and blocks
(`pdf_outline.py`), tables (`layout.py`).
"""

from __future__ import annotations

from typing import Any

from rag.core.errors import RagError
from rag.core.models import ReadOptions
from rag.ingest import ocr
from rag.ingest.blocks import reason
from rag.ingest.pdfium import Pdf

# A page shorter than this on either side (a quarter inch) holds no line of text and
# is not read by OCR: RapidOCR scales such a page up to 736 px for its detector, 0.3 to
# 0.5 CPU-s for each of the 3.84-point pages of ImageMagick's sample PDFs (9 in
# benchmarks/ingest.py), to read noise (a "1" from the nose of a smiley) or nothing.
MIN_OCR_POINTS = 18


def page_text(reader: Any, pdf: Pdf | None, index: int, pdfium_first: bool) -> tuple[str, str]:
    """(the page's text layer, "" or what failed): pypdf's, else pdfium's (pdfium's
    first, then pypdf's, with `pdfium_first`)."""
    if pdfium_first and pdf is not None:
        try:
            return pdf.text(index), ""
        except Exception as e:  # pypdf may still read it
            text, failure = page_text(reader, None, index, False)
            return text, failure or f"read with pypdf (pdfium: {reason(e)})"
    failure = ""
    if reader is not None:
        try:
            return str(reader.pages[index].extract_text()), ""
        except (RecursionError, MemoryError):
            raise
        except Exception as e:  # one broken page should not lose the whole document
            failure = reason(e)
    if pdf is not None:
        try:
            text = pdf.text(index)
        except Exception as e:
            return "", f"could not be read ({failure or reason(e)})"
        return text, f"read with pdfium (pypdf: {failure})" if failure else ""
    return "", f"could not be read ({failure})"


def too_small(pdf: Pdf, index: int) -> bool:
    """Whether page `index` is too small to hold a line of text (see MIN_OCR_POINTS)."""
    try:
        return min(pdf.size(index)) < MIN_OCR_POINTS
    except Exception:  # no size: OCR tries it (an unrenderable page reads as textless)
        return False


def ocr_page(pdf: Pdf, index: int, options: ReadOptions) -> tuple[str, str]:
    """(the page's text read by OCR, "" or why OCR failed)."""
    try:
        image = pdf.render(index, options.ocr_dpi)
    except MemoryError:
        raise
    except Exception:  # an unrenderable page is a textless one
        return "", ""
    try:
        return ocr.text_of(ocr.read_image(image, options.ocr_languages)), ""
    except RagError:  # languages the engine cannot read: a setting to fix, not this file
        raise
    except Exception as e:  # the engine failed on this page; the others are still read
        return "", ocr.failure(e)


def inflates_past_limit(page: Any) -> str:
    """Why a textless page is empty when pypdf stopped inflating it, else "".

    pypdf's `extract_text` swallows its own decompression limit and returns "", which
    would report a decompression bomb as a scanned page. Scanned pages have tiny content
    streams (the images live elsewhere), so probing them again is cheap.
    """
    from pypdf.errors import LimitReachedError

    try:
        contents = page.get_contents()
        if contents is not None:
            contents.get_data()
    except LimitReachedError:
        return "its content unpacks past the size limit, a likely decompression bomb"
    except Exception:  # any other oddity keeps the plain "no text" verdict
        return ""
    return ""
