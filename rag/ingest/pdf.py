"""PDF (pypdf): text per page, sections from the outline, passwords, hostile-file limits.

Each page's text layer is one text; a page is cut into blocks where an outline entry
starting on it appears in its text, and the open section carries over to the next
pages. Encrypted files open with the given password (or the empty one many
"protected" PDFs use). One broken page becomes a warning, not a lost document;
decompression bombs and absurd pages are refused. pypdf runs with its default limits
and never calls the external jbig2dec binary.

This module is self-contained (all PDF handling lives here), so other PDF readers
(a pypdfium2 fallback, OCR, tables) can grow inside it.

Left out: OCR of scanned pages, tables and layout, images, annotations and forms.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from ..errors import (
    ExtractionError,
    NoTextError,
    PasswordRequiredError,
    RagError,
    WrongPasswordError,
)
from ..models import Block
from .blocks import clean_title, reason, segments

MAX_PAGE_CHARS = 2_000_000  # more text than this on one page is a hostile or broken file
_MAX_PAGE_WARNINGS = 50


def read(
    name: str, data: bytes, password: str | None
) -> tuple[list[str], list[Block], str, list[str]]:
    if b"%PDF-" not in data[:1024]:
        raise ExtractionError(f"{name}: not a PDF (no %PDF- header)")
    from pypdf import Configuration, apply_configuration

    try:
        # pypdf 7 keeps its decompression/recursion limits in a context-local Configuration;
        # use the defaults explicitly (whatever else in the process changed) and never run
        # the external jbig2dec binary on untrusted input.
        config = Configuration(jbig2dec_binary=None, disable_legacy_handling=True)
        with apply_configuration(config):
            return _read_pdf(name, data, password)
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


def _read_pdf(
    name: str, data: bytes, password: str | None
) -> tuple[list[str], list[Block], str, list[str]]:
    from pypdf import PdfReader

    reader = PdfReader(BytesIO(data), strict=False)
    # Many "protected" PDFs only restrict printing and open with an empty user password.
    if reader.is_encrypted and not _decrypt(name, reader, password or ""):
        if password:
            raise WrongPasswordError(f"wrong password for {name}")
        raise PasswordRequiredError(f"{name} is password-protected: password required")
    n_pages = len(reader.pages)
    entries = _outline(reader, n_pages)
    texts: list[str] = []
    blocks: list[Block] = []
    warnings: list[str] = []
    errors: list[str] = []
    textless = 0
    section = ""  # carried across pages: the last outline entry seen so far
    for index in range(n_pages):
        page_no = index + 1
        try:
            text = reader.pages[index].extract_text()
        except (RecursionError, MemoryError):
            raise
        except Exception as e:  # one broken page should not lose the whole document
            text = ""
            errors.append(f"page {page_no}: {reason(e)}")
            warnings.append(f"page {page_no}: could not be read ({reason(e)})")
        else:
            if len(text) > MAX_PAGE_CHARS:
                raise ExtractionError(
                    f"{name}: page {page_no} has more than {MAX_PAGE_CHARS:,} characters of "
                    "text; the file looks broken or hostile"
                )
            if not text.strip() and (bomb := _inflates_past_limit(reader.pages[index])):
                errors.append(f"page {page_no}: {bomb}")
                warnings.append(f"page {page_no}: could not be read ({bomb})")
            elif not text.strip():
                textless += 1
                if textless <= _MAX_PAGE_WARNINGS:
                    warnings.append(f"page {page_no}: no extractable text (scanned?)")
        texts.append(text)
        page_blocks, section = _page_blocks(text, page_no, entries.get(index, []), section)
        blocks.extend(page_blocks)
    if textless > _MAX_PAGE_WARNINGS:  # a scanned book should not list 300 warnings
        more = textless - _MAX_PAGE_WARNINGS
        warnings.append(f"{more} more pages: no extractable text (scanned?)")
    if not blocks:
        if errors:
            raise ExtractionError(f"{name}: not a readable PDF ({errors[0]})")
        raise NoTextError(
            f"{name}: no extractable text (scanned?). DocChat does not run OCR on images."
        )
    try:
        meta = reader.metadata
        title = clean_title(meta.title) if meta is not None and meta.title else ""
    except Exception:  # unreadable metadata only costs the title
        title = ""
    return texts, blocks, title, warnings


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
