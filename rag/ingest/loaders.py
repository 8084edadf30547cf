"""Turn one file's bytes into a `LoadedDocument`: its text(s) and the blocks no chunk may cross.

`load` picks the reader by extension (a document named by an http(s) URL: by what its
bytes hold, HTML through `web_page`) and wraps what it returns: PDF (`pdf`), images
by OCR (`image`), Word .docx (`docx`), HTML (`html`), Markdown and plain text (`text`), source code
(`code`). Text formats are decoded first (`text.decode_text`: BOMs, UTF-16, UTF-8,
cp1252, latin-1; binary files are refused). What the readers share is in `blocks`.

Every failure is a `RagError` with a message for people; any other exception from a
parser on hostile bytes is turned into `ExtractionError`.

Left out: old binary formats (.doc, .xls, .ppt), .pptx/.xlsx/.odt,
e-books, and anything the format modules' docstrings leave out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from rag.core.errors import ExtractionError, NoTextError, RagError, UnsupportedFileError
from rag.core.models import LoadedDocument, ReadOptions
from rag.core.settings import DEFAULT_READ
from rag.ingest import code, docx, html, image, pdf, web_page
from rag.ingest.blocks import Pages, Parsed, reason
from rag.ingest.text import decode_text, parse_markdown, parse_plain

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
    **dict.fromkeys(image.IMAGE_EXTENSIONS, "image"),
    **dict.fromkeys(_TEXT, "text"),
    **dict.fromkeys(_CODE, "code"),
}
SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(_KINDS)

# Readers of decoded text, by kind: (text, extension) -> (text, blocks, title).
_TEXT_READERS: dict[str, Callable[[str, str], Parsed]] = {
    "html": html.parse,
    "markdown": parse_markdown,
    "code": code.parse,
    "text": parse_plain,
}


Progress = Callable[[str, int, int], None]  # (stage, done, total), e.g. ("ocr", 3, 40)


def load(
    name: str,
    data: bytes,
    *,
    password: str | None = None,
    options: ReadOptions = DEFAULT_READ,
    progress: Progress | None = None,
) -> LoadedDocument:
    """The document in `data`, or a RagError saying why it cannot be read.

    `name` only picks the loader (by extension) and appears in messages.
    """
    ext = PurePosixPath(name.replace("\\", "/")).suffix.lower()
    # A document named by its URL came from the web: read by what it holds (web_page).
    web = web_page.is_url(name)
    kind = web_page.kind_of(name, data) if web else _KINDS.get(ext)
    if kind is None:
        raise UnsupportedFileError(
            f"{name}: DocChat cannot read {ext or 'files without an extension'}. "
            "Supported: PDF, Word (.docx), HTML, Markdown, plain text, source code and "
            "images (by OCR) "
            f"({', '.join(sorted(SUPPORTED_EXTENSIONS))})."
        )
    if not data:
        raise NoTextError(f"{name} is empty")
    context = ""
    try:
        if kind in ("pdf", "image"):
            pages: Pages = (
                pdf.read(name, data, password, options, progress)
                if kind == "pdf"
                else image.read(name, data, options, progress)
            )
            texts, blocks, title = list(pages.texts), list(pages.blocks), pages.title
            warnings, context = list(pages.warnings), pages.context
        elif kind == "docx":
            text, blocks, title = docx.read(name, data)
            texts, warnings = [text], []
        else:
            text = html.decode_html(data) if kind == "html" else decode_text(data)
            if not text.strip():
                raise NoTextError(f"{name} is empty")
            reader = web_page.parse if web and kind == "html" else _TEXT_READERS[kind]
            text, blocks, title = reader(text, ext)
            texts, warnings = [text], []
    except UnsupportedFileError as e:
        raise UnsupportedFileError(f"{name} {e}") from e
    except RagError:
        raise
    except Exception as e:  # last line of defence: hostile input must never escape as a bug
        raise ExtractionError(f"{name}: could not be read ({reason(e)})") from e
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
        context=context,
    )


def load_path(
    path: Path, *, password: str | None = None, options: ReadOptions = DEFAULT_READ
) -> LoadedDocument:
    """`load` on a file's bytes, named by its file name."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ExtractionError(f"{Path(path).name}: cannot be read ({e.strerror or e})") from e
    return load(Path(path).name, data, password=password, options=options)
