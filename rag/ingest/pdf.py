"""PDF: open the file, then read its pages into texts, blocks and warnings.

Two engines. pypdf reads each page's text layer first; pdfium (`pdfium.py`) opens
what pypdf refuses (broken cross-references, brotli or ASCII85 trailers, JBIG2,
legacy filter names) and reads pages pypdf fails on (`pdf_page.py`), and every such
fallback is a warning on the document. pdfium also gives the characters' boxes: pages
where `layout.find_tables` finds tables are written from those (tables as Markdown),
and pages with no text layer at all are rendered and read by OCR (`pdf_page.ocr_page`).

Running headers and footers (lines that stand at the top or bottom of most pages:
"Table of Contents", "Apple Inc. | Q3 2022 Form 10-Q | 4", page numbers) are dropped
from the page texts, so a chunk's text is still exactly its page text between `start`
and `end`; what they said becomes the document's `context`. Pages are cut into blocks
by the outline (`pdf_outline.py`) and at the edges of each table group.

Encrypted files open with the given password (or the empty one many "protected" PDFs
use). One broken page becomes a warning, not a lost document; decompression bombs and
absurd pages are refused. pypdf's element-count limits are raised (real filings pass
100,000) but its decompression limits stay, and it never calls the external jbig2dec
binary; the worker's time and memory caps bound the rest.

Left out: annotations, forms, images inside pages that also have text, right-to-left
reading order of OCR text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from io import BytesIO
from typing import Any

from rag.core.errors import (
    ExtractionError,
    NoTextError,
    PasswordRequiredError,
    RagError,
    WrongPasswordError,
)
from rag.core.models import Block, ReadOptions
from rag.core.settings import DEFAULT_READ
from rag.ingest import layout
from rag.ingest.blocks import Pages, clean_title, reason
from rag.ingest.pdf_outline import cut_at_tables, outline, page_blocks
from rag.ingest.pdf_page import inflates_past_limit, ocr_page, page_text, too_small
from rag.ingest.pdfium import Pdf

MAX_PAGE_CHARS = 2_000_000  # more text than this on one page is a hostile or broken file
_MAX_PAGE_WARNINGS = 50
# pypdf's default of 100,000 elements per array or dictionary rejects ordinary 10-Q
# filings (2023 Q1/Q2 MSFT). Ten million bounds a hostile file to well under the
# worker's memory cap (an element costs about 100 bytes).
_MAX_ELEMENTS = 10_000_000
_MAX_CONTEXT = 300  # characters of running-header text kept as the document's context
Progress = Callable[[str, int, int], None]
_PAGE_NUMBER = re.compile(r"[\s|·–—-]*\b(?:page\s*)?\d{1,3}$", re.IGNORECASE)


def read(
    name: str,
    data: bytes,
    password: str | None,
    options: ReadOptions = DEFAULT_READ,
    progress: Progress | None = None,
) -> Pages:
    if b"%PDF-" not in data[:1024]:
        raise ExtractionError(f"{name}: not a PDF (no %PDF- header)")
    from pypdf import Configuration, apply_configuration

    try:
        # pypdf 7 keeps its limits in a context-local Configuration: set them explicitly
        # (whatever else in the process changed), never run jbig2dec on untrusted input.
        config = Configuration(
            jbig2dec_binary=None,
            disable_legacy_handling=True,
            array_maximum_element_count=_MAX_ELEMENTS,
            dictionary_maximum_element_count=_MAX_ELEMENTS,
        )
        with apply_configuration(config):
            return _read_pdf(name, data, password, options, progress)
    except RagError:
        raise
    except Exception as e:  # RecursionError, MemoryError, pypdf errors, ValueError, ...
        raise ExtractionError(f"{name}: not a readable PDF ({reason(e)})") from e


def _open_pypdf(name: str, data: bytes, password: str | None) -> tuple[Any, str]:
    """(pypdf's reader, "") or (None, why pypdf could not open it)."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(BytesIO(data), strict=False)
        _ = len(reader.pages)
    except (RecursionError, MemoryError):
        raise
    except Exception as e:
        return None, reason(e)
    # Many "protected" PDFs only restrict printing and open with an empty user password.
    if reader.is_encrypted and not _decrypt(name, reader, password or ""):
        if password:
            raise WrongPasswordError(f"wrong password for {name}")
        raise PasswordRequiredError(f"{name} is password-protected: password required")
    return reader, ""


def _open_pdfium(name: str, data: bytes, password: str | None, why: str) -> Pdf | None:
    """pdfium's document; None when it cannot open it either and pypdf could."""
    try:
        return Pdf(data, password)
    except Exception as e:
        if why:  # neither engine opens it
            if "password" in str(e).lower():
                if password:
                    raise WrongPasswordError(f"wrong password for {name}") from e
                raise PasswordRequiredError(
                    f"{name} is password-protected: password required"
                ) from e
            raise ExtractionError(f"{name}: not a readable PDF ({why})") from e
        return None


def _read_pdf(
    name: str, data: bytes, password: str | None, options: ReadOptions, progress: Progress | None
) -> Pages:
    reader, why = _open_pypdf(name, data, password)
    pdf = _open_pdfium(name, data, password, why)
    try:
        return _pages(name, reader, pdf, why, options, progress)
    finally:
        if pdf is not None:
            pdf.close()


def _pages(
    name: str,
    reader: Any,
    pdf: Pdf | None,
    why: str,
    options: ReadOptions,
    progress: Progress | None,
) -> Pages:
    warnings: list[str] = []
    errors: list[str] = []
    if reader is None:
        warnings.append(f"read with pdfium: pypdf could not open the file ({why})")
    n_pages = len(reader.pages) if reader is not None else len(pdf or ())
    entries = outline(reader, n_pages) if reader is not None else {}
    raw: list[str] = []
    words: list[list[layout.Word]] = []
    for index in range(n_pages):
        page_no = index + 1
        text, failure = page_text(reader, pdf, index, options.pdf_text == "pdfium")
        if failure:
            errors.append(f"page {page_no}: {failure}")
            warnings.append(f"page {page_no}: {failure}")
        if len(text) > MAX_PAGE_CHARS:
            raise ExtractionError(
                f"{name}: page {page_no} has more than {MAX_PAGE_CHARS:,} characters of "
                "text; the file looks broken or hostile"
            )
        page_words: list[layout.Word] = []
        if pdf is not None and options.tables and text.strip():
            try:
                page_words = pdf.words(index)
            except Exception:  # pdfium cannot read this page: keep pypdf's text
                page_words = []
        raw.append(text)
        words.append(page_words)
    running = layout.running_lines([t.split("\n") for t in raw])
    context: list[str] = []
    scanned = [k for k, t in enumerate(raw) if not t.strip()]
    ocr_pages: set[int] = set()
    small: set[int] = set()  # textless, but not read by OCR (see pdf_page.MIN_OCR_POINTS)
    if options.ocr and pdf is not None:
        small = {k for k in scanned if too_small(pdf, k)}
        ocr_pages = set(scanned) - small
    texts: list[str] = []
    blocks: list[Block] = []
    textless = 0
    done_ocr = 0
    section = ""  # carried across pages: the last outline entry seen so far
    for index in range(n_pages):
        page_no = index + 1
        text, read_by_ocr = raw[index], False
        spans: list[tuple[int, int]] = []
        if index in ocr_pages and pdf is not None:
            done_ocr += 1
            if progress is not None:
                progress("ocr", done_ocr, len(ocr_pages))
            text, failed = ocr_page(pdf, index, options)
            read_by_ocr = bool(text.strip())
            if failed:
                errors.append(f"page {page_no}: {failed}")
                warnings.append(f"page {page_no}: {failed}")
        elif words[index]:
            lines = layout.lines_of(words[index])
            keep = set(layout.drop_running([x.text for x in lines], running)[0])
            lines = [x for x in lines if x.text in keep]
            tables = layout.find_tables(lines)
            if tables:
                text, spans = layout.page_text(lines, tables)
        if not read_by_ocr and running:
            kept, dropped = layout.drop_running(text.split("\n"), running)
            context.extend(dropped)
            # A page whose only text is a running line ("Background" over each picture)
            # keeps it: dropping it would turn the page into a "scanned" one.
            if dropped and any(line.strip() for line in kept):
                text = "\n".join(kept)
        if (
            not text.strip()
            and reader is not None
            and (bomb := inflates_past_limit(reader.pages[index]))
        ):
            errors.append(f"page {page_no}: {bomb}")
            warnings.append(f"page {page_no}: could not be read ({bomb})")
        elif not text.strip():
            textless += 1
            if textless <= _MAX_PAGE_WARNINGS:
                tried = ""
                if index in ocr_pages:
                    tried = ", and OCR found none"
                elif index in small:
                    tried = ", and too small for OCR"
                warnings.append(f"page {page_no}: no extractable text (scanned?){tried}")
        elif read_by_ocr and len(warnings) < 2 * _MAX_PAGE_WARNINGS:
            warnings.append(f"page {page_no}: read by OCR")
        texts.append(text)
        found, section = page_blocks(text, page_no, entries.get(index, []), section)
        if read_by_ocr:
            found = [replace(b, ocr=True) for b in found]
        blocks.extend(cut_at_tables(text, found, spans))
    if textless > _MAX_PAGE_WARNINGS:  # a scanned book should not list 300 warnings
        more = textless - _MAX_PAGE_WARNINGS
        warnings.append(f"{more} more pages: no extractable text (scanned?)")
    if not blocks:
        if errors:
            raise ExtractionError(f"{name}: not a readable PDF ({errors[0]})")
        if small and not ocr_pages:
            raise NoTextError(
                f"{name}: no extractable text (scanned?), and its pages are too small for "
                "OCR (under a quarter inch)."
            )
        if options.ocr:
            raise NoTextError(f"{name}: no extractable text (scanned?), and OCR found none.")
        raise NoTextError(f"{name}: no extractable text (scanned?), and OCR is turned off.")
    return Pages(tuple(texts), tuple(blocks), _title(reader, pdf), tuple(warnings),
                 _context(context))  # fmt: skip


def _title(reader: Any, pdf: Pdf | None) -> str:
    try:
        meta = reader.metadata if reader is not None else None
        if meta is not None and meta.title:
            return clean_title(meta.title)
    except Exception:  # unreadable metadata only costs the title
        pass
    return clean_title(pdf.title()) if pdf is not None else ""


def _context(lines: list[str]) -> str:
    """The distinct running lines (digits aside), page numbers left out."""
    seen: set[str] = set()
    out: list[str] = []
    for line in lines:
        key = layout.line_key(line).replace("#", "")
        if key and key not in seen:
            seen.add(key)
            out.append(_PAGE_NUMBER.sub("", " ".join(line.split())))
    return " · ".join(out)[:_MAX_CONTEXT]


def _decrypt(name: str, reader: Any, password: str) -> bool:
    try:
        return bool(reader.decrypt(password))
    except Exception as e:  # unknown handler or algorithm: not a question of the password
        raise ExtractionError(f"{name}: cannot decrypt this PDF ({reason(e)})") from e
