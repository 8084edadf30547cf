"""PDF: text per page, sections from the outline, tables, OCR, passwords, hostile files.

Two engines. pypdf reads each page's text layer first; pdfium (`pdfium.py`) opens
what pypdf refuses (broken cross-references, brotli or ASCII85 trailers, JBIG2,
legacy filter names) and reads pages pypdf fails on, and every such fallback is a
warning on the document. pdfium also gives the characters' boxes: pages where
`layout.find_tables` finds tables are written from those (tables as Markdown), and
pages with no text layer at all are rendered and read by OCR (`ocr.py`).

Running headers and footers (lines that stand at the top or bottom of most pages:
"Table of Contents", "Apple Inc. | Q3 2022 Form 10-Q | 4", page numbers) are dropped
from the page texts, so a chunk's text is still exactly its page text between `start`
and `end`; what they said becomes the document's `context`.

A page is cut into blocks where an outline entry starting on it appears in its text,
and at the edges of each table group; the open section carries over to the next
pages. Encrypted files open with the given password (or the empty one many
"protected" PDFs use). One broken page becomes a warning, not a lost document;
decompression bombs and absurd pages are refused. pypdf's element-count limits are
raised (real filings pass 100,000) but its decompression limits stay, and it never
calls the external jbig2dec binary; the worker's time and memory caps bound the rest.

Left out: annotations, forms, images inside pages that also have text, right-to-left
reading order of OCR text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
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
from rag.ingest import layout, ocr
from rag.ingest.blocks import Pages, block, clean_title, reason, segments
from rag.ingest.pdfium import Pdf

MAX_PAGE_CHARS = 2_000_000  # more text than this on one page is a hostile or broken file
_MAX_PAGE_WARNINGS = 50
# pypdf's default of 100,000 elements per array or dictionary rejects ordinary 10-Q
# filings (2023 Q1/Q2 MSFT). Ten million bounds a hostile file to well under the
# worker's memory cap (an element costs about 100 bytes).
_MAX_ELEMENTS = 10_000_000
_MAX_CONTEXT = 300  # characters of running-header text kept as the document's context
# A page shorter than this on either side (a quarter inch) holds no line of text and
# is not read by OCR: RapidOCR scales such a page up to 736 px for its detector, 0.3 to
# 0.5 CPU-s for each of the 3.84-point pages of ImageMagick's sample PDFs (9 in
# benchmarks/ingest.py), to read noise (a "1" from the nose of a smiley) or nothing.
MIN_OCR_POINTS = 18
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


def _inflates_past_limit(page: Any) -> str:
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
    entries = _outline(reader, n_pages) if reader is not None else {}
    raw: list[str] = []
    words: list[list[layout.Word]] = []
    for index in range(n_pages):
        page_no = index + 1
        text, failure = _page_text(reader, pdf, index, options.pdf_text == "pdfium")
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
    too_small: set[int] = set()  # textless, but not read by OCR (see MIN_OCR_POINTS)
    if options.ocr and pdf is not None:
        too_small = {k for k in scanned if _too_small(pdf, k)}
        ocr_pages = set(scanned) - too_small
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
            text, failed = _ocr_page(pdf, index, options)
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
            and (bomb := _inflates_past_limit(reader.pages[index]))
        ):
            errors.append(f"page {page_no}: {bomb}")
            warnings.append(f"page {page_no}: could not be read ({bomb})")
        elif not text.strip():
            textless += 1
            if textless <= _MAX_PAGE_WARNINGS:
                tried = ""
                if index in ocr_pages:
                    tried = ", and OCR found none"
                elif index in too_small:
                    tried = ", and too small for OCR"
                warnings.append(f"page {page_no}: no extractable text (scanned?){tried}")
        elif read_by_ocr and len(warnings) < 2 * _MAX_PAGE_WARNINGS:
            warnings.append(f"page {page_no}: read by OCR")
        texts.append(text)
        page_blocks, section = _page_blocks(text, page_no, entries.get(index, []), section)
        if read_by_ocr:
            page_blocks = [replace(b, ocr=True) for b in page_blocks]
        blocks.extend(_cut(text, page_blocks, spans))
    if textless > _MAX_PAGE_WARNINGS:  # a scanned book should not list 300 warnings
        more = textless - _MAX_PAGE_WARNINGS
        warnings.append(f"{more} more pages: no extractable text (scanned?)")
    if not blocks:
        if errors:
            raise ExtractionError(f"{name}: not a readable PDF ({errors[0]})")
        if too_small and not ocr_pages:
            raise NoTextError(
                f"{name}: no extractable text (scanned?), and its pages are too small for "
                "OCR (under a quarter inch)."
            )
        if options.ocr:
            raise NoTextError(f"{name}: no extractable text (scanned?), and OCR found none.")
        raise NoTextError(f"{name}: no extractable text (scanned?), and OCR is turned off.")
    return Pages(tuple(texts), tuple(blocks), _title(reader, pdf), tuple(warnings),
                 _context(context))  # fmt: skip


def _page_text(reader: Any, pdf: Pdf | None, index: int, pdfium_first: bool) -> tuple[str, str]:
    """(the page's text layer, "" or what failed): pypdf's, else pdfium's (pdfium's
    first, then pypdf's, with `pdfium_first`)."""
    if pdfium_first and pdf is not None:
        try:
            return pdf.text(index), ""
        except Exception as e:  # pypdf may still read it
            text, failure = _page_text(reader, None, index, False)
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


def _too_small(pdf: Pdf, index: int) -> bool:
    """Whether page `index` is too small to hold a line of text (see MIN_OCR_POINTS)."""
    try:
        return min(pdf.size(index)) < MIN_OCR_POINTS
    except Exception:  # no size: OCR tries it (an unrenderable page reads as textless)
        return False


def _ocr_page(pdf: Pdf, index: int, options: ReadOptions) -> tuple[str, str]:
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


def _cut(text: str, blocks: list[Block], spans: list[tuple[int, int]]) -> list[Block]:
    """Blocks cut again at the edges of table groups, so no chunk mixes them with text."""
    if not spans:
        return blocks
    out: list[Block] = []
    for b in blocks:
        inner = {x for span in spans for x in span if b.start < x < b.end}
        for lo, hi in itertools.pairwise(sorted({b.start, b.end, *inner})):
            if (c := block(text, lo, hi, page=b.page, section=b.section)) is not None:
                out.append(c)
    return out


def _decrypt(name: str, reader: Any, password: str) -> bool:
    try:
        return bool(reader.decrypt(password))
    except Exception as e:  # unknown handler or algorithm: not a question of the password
        raise ExtractionError(f"{name}: cannot decrypt this PDF ({reason(e)})") from e


def _outline(reader: Any, n_pages: int) -> dict[int, list[tuple[str, str]]]:
    """Outline entries by 0-based start page: (title, "Part > Chapter" path), in order."""
    found: list[tuple[int, str, str]] = []
    try:
        path: list[str] = []
        stack: list[tuple[Iterator[Any], int]] = [(iter(reader.outline), 0)]
        while stack:  # nested lists follow their parent entry; walk them without recursion
            it, depth = stack[-1]
            item = next(it, None)
            if item is None:
                stack.pop()
            elif isinstance(item, list):
                stack.append((iter(item), depth + 1))
            else:
                title = clean_title(getattr(item, "title", ""))
                del path[depth:]
                path.append(title)
                page = reader.get_destination_page_number(item)
                if title and isinstance(page, int) and 0 <= page < n_pages:
                    found.append((page, title, " > ".join(t for t in path if t)[:500]))
    except Exception:  # a broken outline only costs the section names
        return {}
    by_page: dict[int, list[tuple[str, str]]] = {}
    for page, title, section in found:
        by_page.setdefault(page, []).append((title, section))
    return by_page


def _page_blocks(
    text: str, page: int, entries: list[tuple[str, str]], section: str
) -> tuple[list[Block], str]:
    """Blocks of one page, cut where an outline title starting on it appears in its text."""
    cuts: list[tuple[int, str]] = [(0, section)]
    search_from = 0
    for k, (title, path) in enumerate(entries):
        # Searching is bounded: a hostile outline may put 100,000 entries on one page.
        found = _find_title(text, title, search_from) if k < 200 else None
        if found is None:
            # Position unknown: it names what is open, so the page's section stays right.
            cuts[-1] = (cuts[-1][0], path)
            continue
        pos, search_from = max(found[0], cuts[-1][0]), found[1]
        if pos == cuts[-1][0]:
            cuts[-1] = (pos, path)
        else:
            cuts.append((pos, path))
    last = cuts[-1][1]
    if not text.strip():
        return [], last
    return segments(text, cuts[1:], first=cuts[0][1], page=page), last


def _find_title(text: str, title: str, start: int) -> tuple[int, int] | None:
    """(block start, match end) of `title` in text[start:], preferring a heading-like line."""
    words = title.split()[:30]
    if not words:
        return None
    pattern = re.compile(r"\s+".join(map(re.escape, words)), re.IGNORECASE)
    first = None
    for k, m in enumerate(pattern.finditer(text, start)):
        line_start = text.rfind("\n", 0, m.start()) + 1
        # "1.2 Title" at a line start is the heading; the same words mid-sentence are not.
        if len(text[line_start : m.start()].strip()) <= 10:
            return (max(line_start, start), m.end())
        first = first or (m.start(), m.end())
        if k >= 50:
            break
    return first
