"""A web page's main text, cut into sections at its headings, each with its anchor.

A page fetched from the web carries a site's menus, sidebars, footers and cookie
notices around its text; trafilatura (a maintained main-text extractor) keeps the
text and drops those. On the 10 saved pages of `benchmarks/web_extraction.py` it kept
as much of the main text as the uploaded-file reader (`html.py`) and dropped far more
of the boilerplate (docs/web.md, "Extraction"). Its XML output keeps the headings and
their levels, so sections are cut as for an uploaded HTML file; each section's anchor
(the heading's `id`, or that of a link or element inside it) is looked up in the page
itself, since trafilatura drops attributes.

A page trafilatura finds no text in (a page that is all list, or a very short one) is
read by `html.parse` instead, so nothing that an upload would index is lost.

Left out: JavaScript-rendered content, images and their alt text, comments sections.
"""

from __future__ import annotations

import re
from typing import Any

from rag.core.models import Block
from rag.ingest import html
from rag.ingest.blocks import Parsed, clean_title

# Kinds by a URL path's extension, for bytes that are not HTML or PDF.
_EXT_KINDS = {".docx": "docx", ".md": "markdown", ".markdown": "markdown"}
_HEADING_TAGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_LEVEL = re.compile(r"h([1-6])")
# A heading's own permalink mark ("Class: StringDecoder#", "Usage ¶") is not its title.
_MARK = re.compile(r"\s*[#¶§🔗]\s*$")


def is_url(name: str) -> bool:
    """A document named by an http(s) URL came from the web."""
    return name.lower().startswith(("http://", "https://"))


def kind_of(name: str, data: bytes) -> str | None:
    """What a document fetched from `name` (a URL) holds, by its bytes first (a URL's path
    need not end in .pdf), then by its path's extension: a loaders kind, or None."""
    from pathlib import PurePosixPath
    from urllib.parse import urlsplit

    head = data[:1024].lstrip().lower()
    if data.startswith(b"%PDF"):
        return "pdf"
    if b"<html" in head or b"<body" in head or head.startswith((b"<!doctype html", b"<head")):
        return "html"
    return _EXT_KINDS.get(PurePosixPath(urlsplit(name).path).suffix.lower(), "text")


def _key(text: str) -> str:
    return " ".join(_MARK.sub("", text).split()).lower()


def anchors(text: str) -> tuple[dict[str, str], str]:
    """Each heading's text (normalized) -> its anchor (the heading's id, else the id of an
    element inside it, else the fragment of a same-page link inside it: "#usage", else
    its <section>'s id), and the page's <title>. Read with lxml, as trafilatura reads
    the page, so a heading's text is joined the same way ("stringDecoder.end()")."""
    from lxml import etree
    from lxml import html as lxml_html

    parser = lxml_html.HTMLParser(encoding="utf-8", no_network=True)
    try:
        root = lxml_html.fromstring(text.encode("utf-8"), parser=parser)
    except (etree.ParserError, ValueError):  # an empty or unreadable page: no anchors
        return {}, ""
    out: dict[str, str] = {}
    for h in root.iter(*_HEADING_TAGS):
        anchor = str(h.get("id") or "")
        if not anchor and (inner := h.xpath(".//*[@id]")):
            anchor = str(inner[0].get("id"))
        if not anchor and (links := h.xpath(".//a[starts-with(@href, '#')]")):
            anchor = str(links[0].get("href"))[1:]
        parent = h.getparent()
        if not anchor and parent is not None and parent.tag == "section":
            anchor = str(parent.get("id") or "")
        key = _key(_text(h))
        if anchor and key and key not in out:
            out[key] = anchor
    title = root.find(".//title")
    return out, clean_title(_text(title)) if title is not None else ""


def _text(el: Any) -> str:
    return " ".join("".join(el.itertext()).split())


def _lines(root: Any) -> list[tuple[str, int]]:
    """(line, heading level or 0) from trafilatura's XML, in document order."""
    lines: list[tuple[str, int]] = []
    for el in root.iter("head", "p", "item", "code", "quote", "row", "cell"):
        parent = el.getparent()
        # Nested parts are read with their container: a <code> inside a <p>, a cell in a row.
        if parent is not None and parent.tag in ("p", "head", "item", "quote", "row", "cell"):
            continue
        if el.tag == "head":
            m = _LEVEL.fullmatch(str(el.get("rend", "")))
            title = _MARK.sub("", _text(el))
            if title:
                lines.append((title, int(m.group(1)) if m else 2))
        elif el.tag == "code":  # a code block keeps its lines
            code = "".join(el.itertext()).split("\n")
            lines.extend((ln.rstrip(), 0) for ln in code if ln.strip())
        elif el.tag == "row":
            cells = [_text(c) for c in el.iter("cell")]
            if any(cells):
                lines.append((" | ".join(c for c in cells if c), 0))
        elif el.tag != "cell" and (t := _text(el)):
            lines.append((t, 0))
    return lines


def parse(text: str, ext: str = ".html") -> Parsed:
    """The page's main text, its sections (with anchors) and title."""
    import trafilatura
    from lxml import etree

    xml = trafilatura.extract(
        text,
        output_format="xml",
        include_comments=False,
        include_tables=True,
        include_images=False,
        include_links=False,
        deduplicate=False,
        with_metadata=False,  # the title is the page's <title>; metadata took 60 % of the time
    )
    lines: list[tuple[str, int]] = []
    # The page's <title> names it ("String decoder | Node.js v20.20.2 Documentation");
    # trafilatura's own title is often the site's first <h1> ("Node.js v20.20.2 documentation").
    found, title = anchors(text)
    if xml:
        lines = _lines(etree.fromstring(xml.encode("utf-8")))
    if not any(not level for _, level in lines):  # nothing but headings, or nothing at all
        out, blocks, _ = html.parse(text, ext)
        return out, with_anchors(blocks, found), title
    out, blocks = html.sectioned(lines)
    return out, with_anchors(blocks, found), title


def with_anchors(blocks: list[Block], found: dict[str, str]) -> list[Block]:
    """Blocks with the anchor of the heading that opens their section (the path's last part)."""
    from dataclasses import replace

    return [
        replace(b, anchor=found.get(_key(b.section.rsplit(" > ", 1)[-1]), "")) if b.section else b
        for b in blocks
    ]
