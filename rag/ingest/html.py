"""HTML: the visible text of a page, cut into sections at its headings.

The page's declared charset is honoured (as a browser would) before `decode_text`
guesses. Text comes from <main>, else a lone <article>, else <body>: navigation,
scripts, forms and hidden elements are dropped; table cells are joined with " | " and
<pre> keeps its lines. The tree is walked without recursion, so deep nesting is safe.

Left out: JavaScript-rendered content, images' alt text, links' targets, and CSS other
than inline display:none / visibility:hidden.
"""

from __future__ import annotations

import codecs
import re
from typing import Any

from rag.core.models import Block
from rag.ingest.blocks import HeadingPath, Parsed, clean_title, segments
from rag.ingest.text import decode_text

_DECLARED = re.compile(rb"""(?:charset|encoding)\s*=\s*["']?\s*([A-Za-z0-9_.:-]{1,40})""", re.I)


def decode_html(data: bytes) -> str:
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


def parse(text: str, ext: str) -> Parsed:
    from bs4 import BeautifulSoup, FeatureNotFound

    try:
        soup = BeautifulSoup(text, "lxml")
    except FeatureNotFound:
        soup = BeautifulSoup(text, "html.parser")
    title = clean_title(soup.title.get_text(" ")) if soup.title else ""
    articles = soup.find_all("article", limit=2)
    candidates = [soup.find("main"), articles[0] if len(articles) == 1 else None, soup.body, soup]
    lines: list[tuple[str, int]] = []
    for root in candidates:
        if root is not None:
            lines = _html_lines(root, keep_header=root.name in ("main", "article"))
            if lines:  # an empty <main> (filled by JavaScript) falls back to the whole page
                break
    out, blocks = sectioned(lines)
    return out, blocks, title


def sectioned(lines: list[tuple[str, int]]) -> tuple[str, list[Block]]:
    """(line, heading level or 0) -> the text, one line each, and its sections: each
    heading opens one, named by its path of headings."""
    cuts: list[tuple[int, str]] = []
    path = HeadingPath()
    parts, offset = [], 0
    for line, level in lines:
        if level:
            cuts.append((offset, path.push(level, line)))
        parts.append(line)
        offset += len(line) + 1
    out = "\n".join(parts)
    return out, segments(out, cuts)


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
