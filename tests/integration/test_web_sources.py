"""Web sources end to end: a local site on 127.0.0.1 (allowed by `url_allow`) collected
through its sitemap index and its feed into a collection, then refreshed.

The site has pages with headings, a redirect, a PDF, a page robots.txt forbids, one
over the size limit, a page that changes between fetches and one that answers 304.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest

from rag import DocChat, Settings
from tests.fixtures.fakes import HashEmbedder
from tests.fixtures.local_web import LocalSite, Reply, Seen, local_site, only_loopback
from tests.fixtures.pdfgen import make_pdf, text_ops

HTML = {"content-type": "text/html; charset=utf-8"}
XML = {"content-type": "application/xml"}
TEXT = {"content-type": "text/plain"}
WORDS = (
    "Collections keep the documents a team reads together, and every answer cites the "
    "passage it comes from so that a reader can check it against the page itself. "
)


def page(title: str, sections: list[tuple[str, str, str]]) -> bytes:
    """A page with a site menu and footer around an article of (id, heading, text) sections."""
    body = "".join(
        f'<h2 id="{i}">{h}</h2><p>{t} {WORDS * 3}</p><p>{WORDS * 2}</p>' for i, h, t in sections
    )
    return (
        f"<!doctype html><html><head><title>{title}</title></head><body>"
        '<div class="menu"><a href="/">Home</a> <a href="/blog">Blog</a> '
        '<a href="/about">About us and our wonderful team</a></div>'
        f"<article><h1>{title}</h1>{body}</article>"
        "<footer>Copyright 2026 Example Corporation. All rights reserved.</footer>"
        "</body></html>"
    ).encode()


class Changing:
    """A page whose text changes after its first fetch, with an ETag for each version."""

    def __init__(self) -> None:
        self.version = 1

    def __call__(self, seen: Seen) -> Reply:
        etag = f'"v{self.version}"'
        if seen.headers.get("if-none-match") == etag:
            return Reply(304, b"", {"etag": etag})
        body = page("Release notes", [("v", f"Version {self.version}", f"Release {self.version}.")])
        return Reply(200, body, {**HTML, "etag": etag})


def static(seen: Seen) -> Reply:
    if seen.headers.get("if-none-match") == '"s1"':
        return Reply(304, b"", {"etag": '"s1"'})
    body = page("Static page", [("about", "About", "This page never changes.")])
    return Reply(200, body, {**HTML, "etag": '"s1"'})


@pytest.fixture
def site() -> Iterator[LocalSite]:
    pdf = make_pdf([text_ops(["The annual report lists revenue by region and quarter."])])
    routes = {
        "/robots.txt": Reply(200, b"User-agent: *\nDisallow: /private\n", TEXT),
        "/guide": Reply(200, page("Install guide", [("install", "Install", "Run the installer."),
                                                    ("usage", "Usage", "Open the app.")]), HTML),
        "/old": Reply(301, b"", {"location": "/moved"}),
        "/moved": Reply(200, page("Moved page", [("here", "Here now", "It moved.")]), HTML),
        "/report": Reply(200, pdf, {"content-type": "application/pdf"}),
        "/private/secret": Reply(200, page("Secret", [("s", "Secret", "Hidden.")]), HTML),
        "/huge": Reply(200, page("Huge", [("h", "Huge", "x " * 40_000)]), HTML),
        "/changing": Changing(),
        "/static": static,
    }  # fmt: skip
    with local_site(routes) as s:
        pages = "".join(f"<url><loc>{s.url}{p}</loc></url>" for p in
                        ("/guide", "/old", "/report", "/private/secret", "/huge"))  # fmt: skip
        s.routes["/sitemap.xml"] = Reply(
            200,
            (
                '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"<sitemap><loc>{s.url}/pages.xml</loc></sitemap></sitemapindex>"
            ).encode(),
            XML,
        )
        s.routes["/pages.xml"] = Reply(
            200,
            (
                '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                f"{pages}</urlset>"
            ).encode(),
            XML,
        )
        s.routes["/feed.xml"] = Reply(200, (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>News</title>'
            f"<item><title>A</title><link>{s.url}/changing</link></item>"
            f"<item><title>B</title><link>{s.url}/static</link></item>"
            "</channel></rss>").encode(), {"content-type": "application/rss+xml"})  # fmt: skip
        yield s


@pytest.fixture
def web_app(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[DocChat]:
    only_loopback(monkeypatch)
    allowed = dataclasses.replace(
        settings, url_allow="127.0.0.1/32", url_delay=0.0, url_max_mb=0.05
    )
    app = DocChat.open(allowed, embedder=HashEmbedder())
    yield app
    app.close()


def test_a_site_is_collected_and_refreshed(web_app: DocChat, site: LocalSite) -> None:
    u = site.url
    results = {r.file: r for r in web_app.web.add(sitemap=f"{u}/sitemap.xml", collection="web")}
    assert {f: r.status for f, r in results.items()} == {
        f"{u}/guide": "indexed",
        f"{u}/moved": "indexed",  # named by where the redirect led
        f"{u}/report": "indexed",
        f"{u}/private/secret": "rejected",
        f"{u}/huge": "rejected",
    }
    assert "robots.txt" in results[f"{u}/private/secret"].reason
    assert "limit" in results[f"{u}/huge"].reason
    assert "/private/secret" not in site.paths()  # not even asked for

    docs = {d.name: d for d in web_app.documents("web")}
    assert docs[f"{u}/guide"].title == "Install guide"
    assert docs[f"{u}/report"].kind == "pdf"
    chunks = web_app.chunks(docs[f"{u}/guide"].doc_id, collection="web")
    assert {(c.section.rsplit(" > ", 1)[-1], c.anchor) for c in chunks} >= {
        ("Install", "install"),
        ("Usage", "usage"),
    }
    text = " ".join(c.text for c in chunks)
    assert "Run the installer." in text
    assert "All rights reserved" not in text and "wonderful team" not in text  # boilerplate
    _, hits = web_app.search("Run the installer", collection="web")
    assert any(h.chunk.file == f"{u}/guide" and h.chunk.anchor == "install" for h in hits)

    fed = web_app.web.add(feed=f"{u}/feed.xml", collection="web")
    assert [(r.file, r.status) for r in fed] == [(f"{u}/changing", "indexed"),
                                                 (f"{u}/static", "indexed")]  # fmt: skip
    before = {d.name: d.doc_id for d in web_app.documents("web")}
    etags = {d.name: d.etag for d in web_app.documents("web")}
    assert etags[f"{u}/static"] == '"s1"' and etags[f"{u}/guide"] == ""

    site.routes["/changing"].version = 2  # type: ignore[union-attr]
    site.seen.clear()
    refreshed = {r.file: r for r in web_app.web.refresh("web")}
    assert refreshed[f"{u}/changing"].status == "indexed"
    assert refreshed[f"{u}/changing"].replaced == before[f"{u}/changing"]
    assert {f: r.status for f, r in refreshed.items() if f != f"{u}/changing"} == dict.fromkeys(
        [f"{u}/guide", f"{u}/moved", f"{u}/report", f"{u}/static"], "unchanged"
    )
    asked = {s.path: s.headers for s in site.seen}
    assert asked["/static"].get("if-none-match") == '"s1"'
    assert asked["/changing"].get("if-none-match") == '"v1"'
    after = {d.name: d.doc_id for d in web_app.documents("web")}
    assert after.keys() == before.keys()
    assert [n for n in after if after[n] != before[n]] == [f"{u}/changing"]
    new = web_app.chunks(after[f"{u}/changing"], collection="web")
    assert any("Release 2." in c.text for c in new)


def test_api_and_cli_add_pages_and_refresh(
    web_app: DocChat, site: LocalSite, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    from rag.api import create_app
    from rag.cli.commands import build_parser, main
    from tests.fixtures.serving import serving

    u = site.url
    with serving(create_app(web_app)) as api, httpx.Client(base_url=api, timeout=30) as h:
        got = h.post("/v1/collections/web/urls", json={"urls": [f"{u}/guide", f"{u}/private/x"]})
        assert got.status_code == 200, got.text
        assert [(r["file"], r["status"]) for r in got.json()["data"]] == [
            (f"{u}/guide", "indexed"),
            (f"{u}/private/x", "rejected"),
        ]
        found = h.post("/v1/collections/web/search", json={"query": "Run the installer"})
        assert f"{u}/guide#install" in [s["url"] for s in found.json()["data"]]
        assert h.post("/v1/collections/web/urls", json={}).status_code == 400
        again = h.post("/v1/collections/web/refresh").json()["data"]
        assert [(r["file"], r["status"]) for r in again] == [(f"{u}/guide", "unchanged")]

    args = build_parser().parse_args(["ingest", "--collection", "web", "--feed", f"{u}/feed.xml"])
    assert args.fn(web_app, args) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in out] == [
        ["indexed", f"{u}/changing:"],
        ["indexed", f"{u}/static:"],
    ]
    args = build_parser().parse_args(["refresh", "--collection", "web"])
    assert args.fn(web_app, args) == 0
    assert all(line.startswith("unchanged") for line in capsys.readouterr().out.splitlines())
    assert main(["ingest", "--background", f"{u}/guide"]) == 1  # fetched now or not at all
    assert "not in the background" in capsys.readouterr().err


def test_upload_page_url_box_and_library_refresh(
    fake_embedder: None, site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fixtures.app import start

    only_loopback(monkeypatch)
    monkeypatch.setenv("DOCCHAT_URL_ALLOW", "127.0.0.1/32")
    monkeypatch.setenv("DOCCHAT_URL_DELAY", "0")
    at = start("pages/upload.py")
    at.text_area[0].set_value(f"{site.url}/guide\n{site.url}/private/x")
    next(b for b in at.button if b.label == "Add").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.warning] == ["1 indexed, 1 rejected"]
    table = at.dataframe[-1].value
    assert list(table["result"]) == ["indexed", "rejected"]
    assert "robots.txt" in table["details"].iloc[1]

    at.switch_page("pages/library.py").run()
    next(b for b in at.button if b.label == "Refresh web pages").click().run()
    assert not at.exception, at.exception
    assert [e.value for e in at.success][-1] == "1 unchanged"

    # A source from the page opens its section on the page (extractive answer: no LLM).
    at.switch_page("pages/chat.py").run()
    at.chat_input[0].set_value("How do I run the installer?").run()
    assert not at.exception, at.exception
    links = [b.proto.url for b in at.get("link_button")]
    assert f"{site.url}/guide#install" in links


def test_a_crawl_stops_at_the_page_limit(
    settings: Settings, site: LocalSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    only_loopback(monkeypatch)
    few = dataclasses.replace(settings, url_allow="127.0.0.1/32", url_delay=0.0, url_max_pages=2)
    app = DocChat.open(few, embedder=HashEmbedder())
    try:
        results = app.web.add(sitemap=f"{site.url}/sitemap.xml", collection="web")
    finally:
        app.close()
    assert [(r.file, r.status) for r in results] == [
        (f"{site.url}/sitemap.xml", "rejected"),  # the note: pages were left out
        (f"{site.url}/guide", "indexed"),
        (f"{site.url}/moved", "indexed"),
    ]
    assert "more than 2 pages" in results[0].reason
    assert "/report" not in site.paths()


def test_refresh_needs_the_collection_and_the_right_to_add(web_app: DocChat) -> None:
    from rag.core.errors import AccessDeniedError, CollectionNotFoundError
    from rag.team.access import User

    with pytest.raises(CollectionNotFoundError):
        web_app.web.refresh("nowhere")
    assert "nowhere" not in web_app.collection_names()
    web_app.create_collection("mine")
    stranger = web_app.as_user(User("u2", "stranger"))
    with pytest.raises(AccessDeniedError):
        stranger.web.add(["http://127.0.0.1:9/x"], collection="mine")
    with pytest.raises(AccessDeniedError):
        stranger.web.refresh("mine")
