"""Word .docx (python-docx): paragraphs and tables in order, sections from heading styles.

Zip bombs are refused from the archive's declared sizes before python-docx unpacks
anything; nested tables are walked without recursion and a merged cell is read once.
The title comes from the core properties.

Left out: old binary .doc, headers and footers, footnotes, comments, text boxes and
tracked changes.
"""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from rag.core.errors import ExtractionError, NoTextError, RagError
from rag.ingest.blocks import HeadingPath, Parsed, clean_title, reason, segments

_MAX_DOCX_UNPACKED = 300_000_000  # python-docx reads every part into memory


def read(name: str, data: bytes) -> Parsed:
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
        raise ExtractionError(f"{name}: not a readable Word document ({reason(e)})") from e
    title = ""
    with contextlib.suppress(Exception):  # broken core properties only cost the title
        title = clean_title(document.core_properties.title)
    cuts: list[tuple[int, str]] = []
    path = HeadingPath()
    offset = 0
    for line, level in lines:
        if level and line.strip():
            cuts.append((offset, path.push(level, line)))
        offset += len(line) + 1
    text = "\n".join(line for line, _ in lines)
    if not text.strip():
        raise NoTextError(f"{name} has no text")
    return text, segments(text, cuts), title


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
