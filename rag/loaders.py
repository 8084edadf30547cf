"""Turn one file's bytes into a `LoadedDocument`: its text(s) and the blocks no chunk may cross.

Reads PDF (pypdf: text layer, outline sections, passwords), Word .docx (python-docx),
HTML (visible text only, BeautifulSoup), Markdown (ATX heading paths), plain text and
source code (Python split by top-level def/class with `ast`, other languages by
top-level blocks). Text files are decoded by `decode_text` (BOMs, UTF-16, UTF-8,
cp1252, latin-1) and binary files are refused.

Every failure is a `RagError` with a message for people; any other exception from a
parser on hostile bytes is turned into `ExtractionError`.

Left out: OCR of scanned pages, old binary formats (.doc, .xls, .ppt), .pptx/.xlsx/.odt,
e-books, Setext (underlined) Markdown headings, and language-aware parsing of code
other than Python.
"""

from __future__ import annotations

import ast
import bisect
import codecs
import contextlib
import hashlib
import re
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import (
    ExtractionError,
    NoTextError,
    PasswordRequiredError,
    RagError,
    UnsupportedFileError,
    WrongPasswordError,
)
from .models import Block, LoadedDocument

_TEXT = {".txt", ".text", ".rst", ".csv", ".tsv", ".log", ".json", ".yaml", ".yml", ".toml",
         ".ini", ".cfg", ".xml"}  # fmt: skip
_CODE = {".py", ".js", ".ts", ".tsx", ".jsx", ".mjs", ".java", ".go", ".rs", ".c", ".h",
         ".cpp", ".hpp", ".cc", ".cs", ".rb", ".php", ".swift", ".kt", ".scala", ".sh", ".sql",
         ".lua", ".r", ".m", ".pl", ".css", ".scss"}  # fmt: skip
_KINDS: dict[str, str] = {
    ".pdf": "pdf",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".docx": "docx",
    **dict.fromkeys(_TEXT, "text"),
    **dict.fromkeys(_CODE, "code"),
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_KINDS)

MAX_PAGE_CHARS = 2_000_000  # more text than this on one page is a hostile or broken file
_MAX_DOCX_UNPACKED = 300_000_000  # python-docx reads every part into memory
_MAX_TITLE = 200
_MAX_PAGE_WARNINGS = 50


def load(name: str, data: bytes, *, password: str | None = None) -> LoadedDocument:
    """The document in `data`, or a RagError saying why it cannot be read.

    `name` only picks the loader (by extension) and appears in messages.
    """
    ext = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    kind = _KINDS.get(ext)
    if kind is None:
        raise UnsupportedFileError(
            f"{name}: DocChat cannot read {ext or 'files without an extension'}. "
            "Supported: PDF, Word (.docx), HTML, Markdown, plain text and source code "
            f"({', '.join(sorted(SUPPORTED_EXTENSIONS))})."
        )
    if not data:
        raise NoTextError(f"{name} is empty")
    try:
        if kind == "pdf":
            texts, blocks, title, warnings = _load_pdf(name, data, password)
        elif kind == "docx":
            text, blocks, title = _load_docx(name, data)
            texts, warnings = (text,), ()
        else:
            text = _decode_html(data) if kind == "html" else decode_text(data)
            if not text.strip():
                raise NoTextError(f"{name} is empty")
            loader = {"html": _html, "markdown": _markdown, "code": _code, "text": _plain}[kind]
            text, blocks, title = loader(text, ext)
            texts, warnings = (text,), ()
    except UnsupportedFileError as e:
        raise UnsupportedFileError(f"{name} {e}") from e
    except RagError:
        raise
    except Exception as e:  # last line of defence: hostile input must never escape as a bug
        raise ExtractionError(f"{name}: could not be read ({_reason(e)})") from e
    if not blocks:
        raise NoTextError(f"{name} has no text")
    return LoadedDocument(
        doc_id=hashlib.sha256(data).hexdigest(),
        name=name,
        kind=kind,
        texts=tuple(texts),
        blocks=tuple(blocks),
        title=title,
        warnings=tuple(warnings),
    )


def load_path(path: Path, *, password: str | None = None) -> LoadedDocument:
    """`load` on a file's bytes, named by its file name."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ExtractionError(f"{Path(path).name}: cannot be read ({e.strerror or e})") from e
    return load(Path(path).name, data, password=password)


# --- shared helpers ---------------------------------------------------------------------


def _reason(e: BaseException) -> str:
    if isinstance(e, RecursionError):
        return "nested too deeply"
    if isinstance(e, MemoryError):
        return "too large to process"
    msg = " ".join(str(e).split())[:160]
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def _block(text: str, start: int, end: int, **kw: Any) -> Block | None:
    """A Block over text[start:end] with surrounding whitespace trimmed; None if blank."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Block(start, end, **kw) if start < end else None


def _segments(
    text: str, cuts: list[tuple[int, str]], first: str = "", page: int | None = None
) -> list[Block]:
    """Blocks between successive cut offsets; each cut starts a new section."""
    bounds = [(0, first), *cuts]
    out = []
    for k, (start, section) in enumerate(bounds):
        end = bounds[k + 1][0] if k + 1 < len(bounds) else len(text)
        if (b := _block(text, start, end, page=page, section=section)) is not None:
            out.append(b)
    return out


def _clean_title(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    s = str(value or "")
    if s.startswith(("þÿ", "ÿþ")):  # a UTF-16 string the PDF library left undecoded
        with contextlib.suppress(UnicodeError, ValueError):
            s = s.encode("latin-1").decode("utf-16")
    s = "".join(c if c.isprintable() else " " for c in s)
    return " ".join(s.split())[:_MAX_TITLE]


class _HeadingPath:
    """Section titles like "Install > Linux" from a flat run of (level, title) headings."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> str:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, _clean_title(title)))
        return " > ".join(t for _, t in self.stack if t)[:500]


# --- text decoding --------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CONTROL = frozenset(chr(c) for c in range(32)) - set("\t\n\r\f\v\x1b")


def decode_text(data: bytes) -> str:
    """The text in `data` with newlines as "\\n"; UnsupportedFileError for binary data.

    Order: BOM, UTF-16 without BOM (NUL pattern), NUL means binary, UTF-8, cp1252, latin-1.
    """
    text = None
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            # The BOM is strong evidence: a stray bad byte should not reject the file.
            text = data[len(bom) :].decode(encoding, errors="replace")
            break
    if text is None:
        text = _utf16_without_bom(data)
    if text is None:
        if b"\x00" in data[:8192]:
            raise UnsupportedFileError("looks like a binary file, not text")
        for encoding in ("utf-8", "cp1252"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            text = data.decode("latin-1")  # cannot fail: every byte is a character
    sample = text[:8192]
    if sample and sum(c in _CONTROL for c in sample) > len(sample) // 10:
        raise UnsupportedFileError("looks like a binary file, not text")
    # removeprefix: a second BOM (a file "converted" twice) is not text either.
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _utf16_without_bom(data: bytes) -> str | None:
    sample = data[:4096]
    if len(sample) < 2:
        return None
    even, odd = sample[0::2], sample[1::2]
    zero_even, zero_odd = even.count(0) / len(even), odd.count(0) / max(len(odd), 1)
    # ASCII-range text in UTF-16 has a NUL in every high byte and (almost) none elsewhere.
    if zero_odd > 0.3 and zero_even < 0.05:
        encoding = "utf-16-le"
    elif zero_even > 0.3 and zero_odd < 0.05:
        encoding = "utf-16-be"
    else:
        return None
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text[:4096] else text


_DECLARED = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)


def _decode_html(data: bytes) -> str:
    """HTML honours its declared charset (a browser would) before falling back to guessing."""
    m = _DECLARED.search(data[:4096])
    if m and not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            encoding = codecs.lookup(m.group(1).decode("ascii")).name
            # A declared UTF-16/32 in an ASCII-readable tag is wrong by definition.
            if not encoding.startswith(("utf-16", "utf-32")) and b"\x00" not in data[:8192]:
                text = data.decode(encoding)
                return text.replace("\r\n", "\n").replace("\r", "\n")
        except (LookupError, UnicodeDecodeError, ValueError):
            pass
    return decode_text(data)


# --- plain text and Markdown ------------------------------------------------------------------


def _plain(text: str, ext: str) -> tuple[str, list[Block], str]:
    # One block: the splitter cuts it into windows at sentence and line ends.
    return text, [b for b in [_block(text, 0, len(text))] if b], ""


def _markdown(text: str, ext: str) -> tuple[str, list[Block], str]:
    cuts: list[tuple[int, str]] = []
    path = _HeadingPath()
    title = ""
    fence = ""  # the opening ``` or ~~~ run while inside fenced code
    offset = 0
    for line in text.split("\n"):
        start, offset = offset, offset + len(line) + 1
        stripped = line.lstrip(" ")
        if len(line) - len(stripped) > 3:  # indented code
            continue
        if fence:
            if stripped.startswith(fence) and not stripped.strip(fence[0]).strip():
                fence = ""
            continue
        if stripped.startswith(("```", "~~~")):
            char = stripped[0]
            fence = char * (len(stripped) - len(stripped.lstrip(char)))
            continue
        level = len(stripped) - len(stripped.lstrip("#"))
        rest = stripped[level:]
        if 1 <= level <= 6 and (not rest or rest[0] in " \t"):
            heading = rest.strip()
            # Closing hashes ("## Title ##") are not part of the title.
            if heading.endswith("#") and (" " + heading).rstrip("#").endswith((" ", "\t")):
                heading = heading.rstrip("#").strip()
            if not heading:
                continue  # a bare "#" names nothing
            cuts.append((start, path.push(level, heading)))
            if level == 1 and not title:
                title = _clean_title(heading)
    return text, _segments(text, cuts), title


# --- HTML ---------------------------------------------------------------------------------------

_DROP_TAGS = frozenset({
    "script", "style", "noscript", "template", "svg", "iframe", "nav", "header", "footer",
    "aside", "form", "button", "head", "title", "meta", "link", "object", "embed", "canvas",
    "select", "textarea", "math",
})  # fmt: skip
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_BLOCK_TAGS = frozenset({
    *_HEADINGS, "address", "article", "blockquote", "body", "caption", "center", "dd",
    "details", "dialog", "div", "dl", "dt", "fieldset", "figcaption", "figure", "hr", "html",
    "li", "main", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead",
    "tr", "ul",
})  # fmt: skip
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def _html(text: str, ext: str) -> tuple[str, list[Block], str]:
    from bs4 import BeautifulSoup, FeatureNotFound

    try:
        soup = BeautifulSoup(text, "lxml")
    except FeatureNotFound:
        soup = BeautifulSoup(text, "html.parser")
    title = _clean_title(soup.title.get_text(" ")) if soup.title else ""
    articles = soup.find_all("article", limit=2)
    candidates = [soup.find("main"), articles[0] if len(articles) == 1 else None, soup.body, soup]
    lines: list[tuple[str, int]] = []
    for root in candidates:
        if root is not None:
            lines = _html_lines(root, keep_header=root.name in ("main", "article"))
            if lines:  # an empty <main> (filled by JavaScript) falls back to the whole page
                break
    cuts: list[tuple[int, str]] = []
    path = _HeadingPath()
    parts, offset = [], 0
    for line, level in lines:
        if level:
            cuts.append((offset, path.push(level, line)))
        parts.append(line)
        offset += len(line) + 1
    out = "\n".join(parts)
    return out, _segments(out, cuts), title


def _hidden(tag: Any, keep_header: bool) -> bool:
    if tag.name in _DROP_TAGS and not (keep_header and tag.name == "header"):
        return True
    attrs = tag.attrs or {}
    return (
        "hidden" in attrs
        or str(attrs.get("aria-hidden", "")).lower() == "true"
        or bool(_HIDDEN_STYLE.search(str(attrs.get("style", ""))))
    )


def _html_lines(root: Any, keep_header: bool) -> list[tuple[str, int]]:
    """Visible text as (line, heading level or 0); iterative, so deep nesting cannot recurse."""
    from bs4.element import NavigableString, PreformattedString, Tag

    lines: list[tuple[str, int]] = []
    buf: list[str] = []
    heading = 0
    pre = 0

    def flush() -> None:
        if pre:
            chunk = "".join(buf).strip("\n")
            new = [ln.rstrip() for ln in chunk.split("\n")] if chunk.strip() else []
        else:
            joined = " ".join("".join(buf).split())
            new = [joined] if joined else []
        lines.extend((ln, heading) for ln in new)
        buf.clear()

    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if isinstance(node, Tag):
            name = node.name
            if leaving:
                if name in _BLOCK_TAGS:
                    flush()
                if name == "pre":
                    pre -= 1
                if name in _HEADINGS:
                    heading = 0
                continue
            if _hidden(node, keep_header):
                continue
            if name == "br":
                flush()
                continue
            if name in ("td", "th") and "".join(buf).strip():
                buf.append(" | ")
            if name in _BLOCK_TAGS:
                flush()
            if name == "pre":
                pre += 1
            if name in _HEADINGS:
                heading = int(name[1])
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            buf.append(str(node))
    flush()
    return lines


# --- Word --------------------------------------------------------------------------------------


def _load_docx(name: str, data: bytes) -> tuple[str, list[Block], str]:
    try:
        with zipfile.ZipFile(BytesIO(data)) as z:
            infos = z.infolist()
            # Declared sizes bound what zipfile will inflate, so this stops zip bombs.
            if len(infos) > 10_000 or sum(i.file_size for i in infos) > _MAX_DOCX_UNPACKED:
                raise ExtractionError(f"{name}: the Word document is too large when unpacked")
        import docx
        from docx.text.paragraph import Paragraph

        document = docx.Document(BytesIO(data))
        lines: list[tuple[str, int]] = []
        stack: list[Iterator[Any]] = [document.iter_inner_content()]
        while stack:  # paragraphs and tables in order; nested tables without recursion
            item = next(stack[-1], None)
            if item is None:
                stack.pop()
            elif isinstance(item, Paragraph):
                lines.append((item.text, _docx_heading_level(item)))
            else:
                stack.append(_table_items(item))
    except RagError:
        raise
    except Exception as e:
        raise ExtractionError(f"{name}: not a readable Word document ({_reason(e)})") from e
    title = ""
    with contextlib.suppress(Exception):  # broken core properties only cost the title
        title = _clean_title(document.core_properties.title)
    cuts: list[tuple[int, str]] = []
    path = _HeadingPath()
    offset = 0
    for line, level in lines:
        if level and line.strip():
            cuts.append((offset, path.push(level, line)))
        offset += len(line) + 1
    text = "\n".join(line for line, _ in lines)
    if not text.strip():
        raise NoTextError(f"{name} has no text")
    return text, _segments(text, cuts), title


def _table_items(table: Any) -> Iterator[Any]:
    for row in table.rows:
        seen: set[Any] = set()
        for cell in row.cells:
            if cell._tc in seen:  # a merged cell is listed once per grid column it spans
                continue
            seen.add(cell._tc)
            yield from cell.iter_inner_content()


def _docx_heading_level(paragraph: Any) -> int:
    style = paragraph.style
    name = (style.name if style is not None else "") or ""
    if name == "Title":
        return 1
    if name.startswith("Heading"):
        digits = name[len("Heading") :].strip()
        return min(max(int(digits), 1), 9) if digits.isdigit() else 1
    return 0


# --- source code ----------------------------------------------------------------------------

# Comment, decorator and preprocessor lines: they name nothing, the code after them does.
_ATTACH = ("//", "#", "/*", "*", "--", "@")
_CLOSERS = ("}", ")", "]", "{")  # a line starting so continues a block (or opens a K&R body)
_END_WORD = re.compile(r"(end|fi|done|esac)\b")


def _code(text: str, ext: str) -> tuple[str, list[Block], str]:
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    ranges: list[tuple[int, int, str]] | None = None  # 1-based inclusive line ranges
    if ext == ".py":
        ranges = _python_ranges(text)
    if ranges is None:
        ranges = _generic_ranges(text)
    blocks = []
    for first, last, section in ranges:
        start = line_starts[first - 1]
        end = line_starts[last] - 1 if last < len(line_starts) else len(text)
        b = _block(text, start, end, section=section)
        if b is not None:
            # Line numbers of the trimmed block, so they point at real code.
            line_start = bisect.bisect_right(line_starts, b.start)
            line_end = bisect.bisect_right(line_starts, b.end - 1)
            blocks.append(Block(b.start, b.end, section=section,
                                line_start=line_start, line_end=line_end))  # fmt: skip
    return text, blocks, ""


def _python_ranges(text: str) -> list[tuple[int, int, str]] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # hostile or not-quite-Python: the generic splitter still works
    n_lines = text.count("\n") + 1
    ranges: list[tuple[int, int, str]] = []
    gap_start = 1
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            first = max(first, gap_start)
            last = max(node.end_lineno or node.lineno, first)
            if first > gap_start:
                ranges.append((gap_start, first - 1, "module"))
            kind = {ast.FunctionDef: "def", ast.AsyncFunctionDef: "async def"}.get(
                type(node), "class"
            )
            ranges.append((first, last, f"{kind} {node.name}"))
            gap_start = last + 1
    if gap_start <= n_lines:
        ranges.append((gap_start, n_lines, "module"))
    return ranges


def _generic_ranges(text: str) -> list[tuple[int, int, str]]:
    """Top-level blocks: each starts at a non-indented line that does not close a block.

    A line directly below a comment or an unfinished statement ("static int" above
    "main(void)") continues the block above it, so comments stay with their code.
    """
    lines = text.split("\n")
    starts: list[int] = []
    prev = ""
    for i, line in enumerate(lines):
        top = line.strip() and line[0] not in " \t" and not line.startswith(_CLOSERS)
        if top and not _END_WORD.match(line) and _ends_statement(prev):
            starts.append(i)
        prev = line
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    raw = [(s, (starts[k + 1] if k + 1 < len(starts) else len(lines)) - 1)
           for k, s in enumerate(starts)]  # fmt: skip

    def code_lines(first: int, last: int) -> list[str]:
        return [
            ln
            for ln in lines[first : last + 1]
            if ln.strip() and not ln.lstrip().startswith(_ATTACH)
        ]

    # Runs of one-line statements (imports, constants) become one block, not one each.
    merged: list[list[int]] = []
    for first, last in raw:
        small = len(code_lines(first, last)) <= 1
        if merged and small and merged[-1][2]:
            merged[-1][1] = last
        else:
            merged.append([first, last, int(small)])
    out = []
    for first, last, _ in merged:
        named = code_lines(first, last) or [ln for ln in lines[first : last + 1] if ln.strip()]
        section = named[0].strip()[:80].rstrip() if named else ""
        out.append((first + 1, last + 1, section))
    return out


def _ends_statement(prev: str) -> bool:
    """True when the line before leaves nothing open, so the next top-level line is new."""
    stripped = prev.strip()
    if not stripped or stripped.endswith((";", "}")) or _END_WORD.match(stripped):
        return True
    if prev[0] in " \t":  # back at column 0 after a body (Python, Ruby), unless a /* */ tail
        return not (stripped.startswith("*") or stripped.endswith("*/"))
    return prev.startswith(_CLOSERS[:3])


# --- PDF ---------------------------------------------------------------------------------------


def _load_pdf(
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
        raise ExtractionError(f"{name}: not a readable PDF ({_reason(e)})") from e


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
            errors.append(f"page {page_no}: {_reason(e)}")
            warnings.append(f"page {page_no}: could not be read ({_reason(e)})")
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
        title = _clean_title(meta.title) if meta is not None and meta.title else ""
    except Exception:  # unreadable metadata only costs the title
        title = ""
    return texts, blocks, title, warnings


def _decrypt(name: str, reader: Any, password: str) -> bool:
    try:
        return bool(reader.decrypt(password))
    except Exception as e:  # unknown handler or algorithm: not a question of the password
        raise ExtractionError(f"{name}: cannot decrypt this PDF ({_reason(e)})") from e


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
                title = _clean_title(getattr(item, "title", ""))
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
    return _segments(text, cuts[1:], first=cuts[0][1], page=page), last


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
