"""The web fetcher (rag/components/web_fetch.py) against a real site on 127.0.0.1: redirects,
the size limit, content types, robots.txt, conditional GETs (304), the per-host delay and
the User-Agent.

The site is reached by a name (`site.test`) that only the test's resolver knows and that
`url_allow` lists, so each passing test also shows the fetcher connects to the address
it checked and sends the name as the Host header; `only_loopback` fails a test that
connects anywhere but 127.0.0.1.
"""

from __future__ import annotations

import datetime
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rag.components.web_fetch import USER_AGENT, Fetcher
from rag.core.errors import WebFetchError
from rag.core.settings import Settings
from tests.fixtures.local_web import (
    LocalSite,
    Reply,
    Route,
    Seen,
    local_site,
    only_loopback,
)

PAGE = b"<html><head><title>Cats</title></head><body><h1>Cats</h1><p>Purr.</p></body></html>"
ROBOTS = b"User-agent: *\nDisallow: /private\n\nUser-agent: OtherBot\nDisallow: /\n"
ETAG = '"v1"'
MODIFIED = "Mon, 07 Dec 2026 10:00:00 GMT"


def conditional(seen: Seen) -> Reply:
    """A page that answers 304 to a request that already has its version."""
    if seen.headers.get("if-none-match") == ETAG or (
        seen.headers.get("if-modified-since") == MODIFIED
    ):
        return Reply(304, headers={"etag": ETAG})
    return Reply(headers={"content-type": "text/html", "etag": ETAG, "last-modified": MODIFIED},
                 body=PAGE)  # fmt: skip


ROUTES: dict[str, Route] = {
    "/robots.txt": Reply(headers={"content-type": "text/plain"}, body=ROBOTS),
    "/page": Reply(headers={"content-type": "text/html; charset=utf-8"}, body=PAGE),
    "/old": Reply(301, headers={"location": "/middle"}),
    "/middle": Reply(302, headers={"location": "http://site.test:{port}/page#top"}),
    "/loop": Reply(302, headers={"location": "/loop"}),
    "/private/notes": Reply(body=PAGE),
    "/to-private": Reply(302, headers={"location": "/private/notes"}),
    "/big": Reply(body=b"x" * 2_000_000),
    "/big-chunked": Reply(body=b"x" * 2_000_000, chunked=True),
    "/image": Reply(headers={"content-type": "image/png"}, body=b"\x89PNG"),
    "/feed": Reply(headers={"content-type": "application/rss+xml"}, body=b"<rss/>"),
    "/gone": Reply(410, b"gone"),
    "/changing": conditional,
}


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSite]:
    only_loopback(monkeypatch)
    with local_site(dict(ROUTES)) as site:
        middle = ROUTES["/middle"]
        assert isinstance(middle, Reply)
        location = middle.headers["location"].format(port=site.port)
        site.routes["/middle"] = Reply(302, headers={"location": location})
        yield site


def fetcher(**settings: object) -> Fetcher:
    values: dict[str, object] = {"url_allow": "site.test", "url_delay": 0.0}
    values.update(settings)
    return Fetcher(Settings().with_(**values), resolver=lambda host, port: ["127.0.0.1"])


def url(site: LocalSite, path: str) -> str:
    return f"http://site.test:{site.port}{path}"


def test_a_page_is_fetched_from_the_checked_address_with_its_name_and_user_agent(
    site: LocalSite,
) -> None:
    page = fetcher().fetch(url(site, "/page"))
    assert (page.status, page.data, page.media_type) == (200, PAGE, "text/html")
    assert page.content_type == "text/html; charset=utf-8"
    assert page.url == page.requested == url(site, "/page")
    assert site.paths() == ["/robots.txt", "/page"]
    for seen in site.seen:
        assert seen.headers["host"] == f"site.test:{site.port}"
        assert seen.headers["user-agent"] == USER_AGENT
    assert USER_AGENT.startswith("DocChat/") and USER_AGENT.endswith("(+docs/web.md)")


def test_redirects_are_followed_to_the_final_url_and_bounded(site: LocalSite) -> None:
    page = fetcher().fetch(url(site, "/old"))
    assert page.data == PAGE
    assert (page.requested, page.url) == (url(site, "/old"), url(site, "/page"))
    with pytest.raises(WebFetchError, match="more than 2 redirects"):
        fetcher(url_max_redirects=2).fetch(url(site, "/loop"))
    assert site.paths().count("/loop") == 3  # the first request and 2 redirects
    with pytest.raises(WebFetchError, match="more than 1 redirects"):
        fetcher(url_max_redirects=1).fetch(url(site, "/old"))


def test_a_response_over_the_size_limit_is_refused(site: LocalSite) -> None:
    small = fetcher(url_max_mb=1.0)
    with pytest.raises(WebFetchError, match="over the 1 MB limit"):
        small.fetch(url(site, "/big"))  # refused on its Content-Length
    with pytest.raises(WebFetchError, match="over the 1 MB limit"):
        small.fetch(url(site, "/big-chunked"))  # no length given: counted as it arrives
    assert len(fetcher(url_max_mb=2.0).fetch(url(site, "/big-chunked")).data) == 2_000_000


def test_only_the_content_types_asked_for_are_fetched(site: LocalSite) -> None:
    with pytest.raises(WebFetchError, match=r"content type \(image/png\) is not one read here"):
        fetcher().fetch(url(site, "/image"))
    assert fetcher().fetch(url(site, "/image"), accept=("image/*",)).data == b"\x89PNG"
    assert fetcher().fetch(url(site, "/feed")).media_type == "application/rss+xml"
    with pytest.raises(WebFetchError, match="content type"):
        fetcher().fetch(url(site, "/page"), accept=("application/pdf",))


def test_robots_txt_is_obeyed_and_read_once_per_host(site: LocalSite) -> None:
    crawler = fetcher()
    with pytest.raises(WebFetchError, match=r"^robots\.txt forbids it$"):
        crawler.fetch(url(site, "/private/notes"))
    with pytest.raises(WebFetchError, match=r"robots\.txt forbids it \(after a redirect\)"):
        crawler.fetch(url(site, "/to-private"))
    crawler.fetch(url(site, "/page"))
    assert site.paths() == ["/robots.txt", "/to-private", "/page"]


def test_robots_txt_missing_allows_all_and_failing_allows_none(site: LocalSite) -> None:
    site.routes["/robots.txt"] = Reply(404, b"none")
    assert fetcher().fetch(url(site, "/private/notes")).data == PAGE
    site.routes["/robots.txt"] = Reply(503, b"busy")
    with pytest.raises(WebFetchError, match=r"robots.txt could not be read .*HTTP 503"):
        fetcher().fetch(url(site, "/page"))


def test_a_conditional_get_of_an_unchanged_page_is_a_304(site: LocalSite) -> None:
    crawler = fetcher()
    first = crawler.fetch(url(site, "/changing"))
    assert (first.status, first.etag, first.last_modified) == (200, ETAG, MODIFIED)
    again = crawler.fetch(url(site, "/changing"), etag=first.etag)
    assert again.not_modified and again.data == b"" and again.etag == ETAG
    by_date = crawler.fetch(url(site, "/changing"), last_modified=first.last_modified)
    assert by_date.status == 304 and by_date.last_modified == MODIFIED
    changed = crawler.fetch(url(site, "/changing"), etag='"v0"')
    assert changed.status == 200 and not changed.not_modified
    sent = [s.headers for s in site.seen if s.path == "/changing"]
    assert sent[1]["if-none-match"] == ETAG and "if-modified-since" not in sent[1]
    assert sent[2]["if-modified-since"] == MODIFIED


def test_requests_to_one_host_wait_the_delay(site: LocalSite) -> None:
    crawler = fetcher(url_delay=0.2)
    began = time.monotonic()
    for _ in range(2):
        crawler.fetch(url(site, "/page"))
    # Measured here, not on the server's clock: a request's arrival there also depends
    # on how long its connection took, which a loaded machine makes uneven.
    assert time.monotonic() - began >= 0.4  # robots.txt, then the page twice: 2 waits
    assert site.paths() == ["/robots.txt", "/page", "/page"]


def test_robots_crawl_delay_lengthens_the_delay(site: LocalSite) -> None:
    # urllib.robotparser reads whole seconds only: 1 s is the shortest Crawl-delay.
    site.routes["/robots.txt"] = Reply(body=b"User-agent: *\nCrawl-delay: 1\n")
    crawler = fetcher(url_delay=0.05)
    crawler.fetch(url(site, "/page"))
    crawler.fetch(url(site, "/feed"))
    at = {s.path: s.at for s in site.seen}
    assert at["/feed"] - at["/page"] >= 0.99


def test_server_errors_are_reasons(site: LocalSite) -> None:
    with pytest.raises(WebFetchError, match=r"^the server answered HTTP 410$"):
        fetcher().fetch(url(site, "/gone"))
    closed = LocalSite({})  # bound, never served, then closed: nothing listens on its port
    closed._server.server_close()
    with pytest.raises(WebFetchError, match="cannot be reached"):
        fetcher().fetch(f"http://site.test:{closed.port}/page")


def certificate(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` only (no IP address in it), and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_https_goes_to_the_checked_address_with_the_name_in_tls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The certificate names only site.test: the fetch succeeds only if TLS was given the
    name (SNI and the certificate check) while the connection went to 127.0.0.1."""
    connected = only_loopback(monkeypatch)
    cert, key = certificate(tmp_path, "site.test")
    served = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    served.load_cert_chain(cert, key)
    trusted = ssl.create_default_context(cafile=str(cert))
    # As the fetcher's own transport, but trusting the test's certificate.
    no_reuse = httpx.Limits(max_keepalive_connections=0)
    transport = httpx.HTTPTransport(verify=trusted, trust_env=False, limits=no_reuse)
    settings = Settings(url_allow="site.test", url_delay=0)
    with local_site(dict(ROUTES), tls=served) as site:
        fetcher = Fetcher(settings, resolver=lambda host, port: ["127.0.0.1"], transport=transport)
        page = fetcher.fetch(f"https://site.test:{site.port}/page")
        assert page.data == PAGE and page.url == f"https://site.test:{site.port}/page"
        assert site.server_names == ["site.test", "site.test"]  # robots.txt, the page
        assert site.seen[-1].headers["host"] == f"site.test:{site.port}"
        assert set(connected) == {"127.0.0.1"}
        other = Fetcher(
            Settings(url_allow="other.test", url_delay=0),
            resolver=lambda host, port: ["127.0.0.1"],
            transport=httpx.HTTPTransport(verify=trusted, trust_env=False),
        )
        with pytest.raises(WebFetchError, match="cannot be reached"):  # not its certificate
            other.fetch(f"https://other.test:{site.port}/page")
