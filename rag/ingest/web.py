"""Web sources as uploads: pages, sitemaps and feeds expanded to page URLs, each page
fetched (politely and safely, by `web_fetch.Fetcher`) into an `Upload` named by its URL.

A sitemap (`<urlset>`, or a `<sitemapindex>` of sitemaps, read in turn) gives its
`<loc>`s; an RSS feed its items' `<link>`s, an Atom feed its entries' links
(`rel="alternate"` or none). A crawl fetches at most `url_max_pages` pages (the
sitemap and feed files not counted); duplicates are fetched once. A page that cannot
be fetched (refused, robots.txt, over the size limit, a server error) becomes an
upload carrying the reason, so the upload rejects it and goes on.

The bytes keep their format: `loaders.load` reads a document named by an http(s) URL by
what it holds (HTML through `web_page`, a PDF or Word file through their readers).

Left out: following a page's links (a crawl is a list, a sitemap or a feed), pages
rendered by JavaScript, and sitemaps in plain text or gzip.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from rag.components.web_fetch import FetchedPage, Fetcher
from rag.core.errors import WebFetchError
from rag.core.models import Upload

SourceKind = Literal["page", "sitemap", "feed"]
_XML_TYPES = ("application/xml", "text/xml", "application/rss+xml", "application/atom+xml")
_MAX_SITEMAPS = 50  # sitemap files one index may open: a bound of its own beside the pages'


@dataclass(frozen=True)
class WebSource:
    """What to collect: a page (or a list of them), a sitemap or a feed."""

    url: str
    kind: SourceKind = "page"


def _safe_xml(data: bytes) -> Any:
    """The parsed XML, with entities and network access off (no XXE, no billion laughs)."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             load_dtd=False, recover=True)  # fmt: skip
    root = etree.fromstring(data, parser)
    if root is None:
        raise WebFetchError("not an XML document")
    return root


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""


def sitemap_urls(data: bytes) -> tuple[list[str], list[str]]:
    """(page URLs, sitemap URLs) of a sitemap or a sitemap index."""
    root = _safe_xml(data)
    pages: list[str] = []
    maps: list[str] = []
    for el in root.iter():
        if _local(el.tag) == "loc" and (text := (el.text or "").strip()):
            parent = _local(el.getparent().tag) if el.getparent() is not None else ""
            (maps if parent == "sitemap" else pages).append(text)
    return pages, maps


def feed_urls(data: bytes) -> list[str]:
    """The links of an RSS feed's items or an Atom feed's entries, in order."""
    root = _safe_xml(data)
    out: list[str] = []
    for el in root.iter():
        name = _local(el.tag)
        if name not in ("item", "entry"):
            continue
        for link in el:
            if _local(link.tag) != "link":
                continue
            href = (link.get("href") or link.text or "").strip()
            if href and link.get("rel", "alternate") == "alternate":
                out.append(href)
                break
    return out


def _unique(urls: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(u.strip() for u in urls if u.strip()))


def page_urls(fetcher: Fetcher, source: WebSource, limit: int) -> list[str]:
    """The pages `source` stands for, at most `limit`. Raises `WebFetchError` when a
    sitemap or feed cannot be fetched or read."""
    if source.kind == "page":
        return [source.url]
    first = fetcher.fetch(source.url, accept=_XML_TYPES)
    if source.kind == "feed":
        return _unique(feed_urls(first.data))[:limit]
    pages, maps = sitemap_urls(first.data)
    seen = {first.url, source.url}
    opened = 0
    while maps and len(pages) < limit and opened < _MAX_SITEMAPS:
        url = maps.pop(0)
        if url in seen:
            continue
        seen.add(url)
        opened += 1
        try:
            more, nested = sitemap_urls(fetcher.fetch(url, accept=_XML_TYPES).data)
        except WebFetchError:
            continue  # one broken sitemap of an index: the others still count
        pages.extend(more)
        maps.extend(nested)
    return _unique(pages)[:limit]


def as_upload(page: FetchedPage, name: str = "") -> Upload:
    """A fetched page as an upload named by its URL (after redirects, unless `name`)."""
    return Upload(name or page.url, page.data, etag=page.etag, last_modified=page.last_modified)


def fetch_pages(fetcher: Fetcher, urls: Iterable[str]) -> Iterator[Upload]:
    """Each URL fetched when the upload needs it; one that fails carries its reason."""
    for url in urls:
        try:
            yield as_upload(fetcher.fetch(url))
        except WebFetchError as e:
            yield Upload(url, b"", error=str(e))
