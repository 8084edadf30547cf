"""The web, fetched politely and safely: `Fetcher.fetch(url)` returns a `FetchedPage`.

One httpx client, used the way a well-behaved crawler is:

- **Addresses checked, then connected to.** `web_addresses.AddressRules` resolves the
  URL's host once and refuses it unless every address is public (or allowed by
  `DOCCHAT_URL_ALLOW`). The request is then sent to the checked IP address itself:
  the URL's host is replaced by the address, the `Host` header keeps the name, and for
  https the `sni_hostname` request extension (read by httpcore) gives TLS the name, so
  SNI and certificate verification are the name's. httpx never resolves the name, so
  a second DNS answer (DNS rebinding) cannot take the connection elsewhere. This is
  the simplest correct way with httpx: a custom network backend would need a
  connection pool of our own. Keep-alive is off for the same reason: a pooled
  connection is keyed by the address, so it could carry a request for another name
  on that address over TLS checked for the first; with `url_delay` (1 s) between two
  requests to a host, a new connection each time costs little.
- **Redirects followed by hand**, each target checked like the URL (and its
  `robots.txt` too), at most `url_max_redirects`.
- **Bounded**: `url_timeout` to connect and for each read (and about twice that for a
  whole response), `url_max_mb` counted as the body arrives (after decompression, so
  a compressed bomb stops there too), and only the content types asked for.
- **Polite**: a clear User-Agent, `robots.txt` read once per host with this same
  fetcher (RFC 9309: a 4xx means no rules, a server failure means stay away) and
  obeyed, and `url_delay` seconds between requests to one host (longer when
  `robots.txt` asks for a Crawl-delay, up to `_MAX_CRAWL_DELAY`).
- **Conditional**: given an ETag or Last-Modified, sends `If-None-Match` /
  `If-Modified-Since`; an unchanged page comes back as a 304 `FetchedPage`.

No proxy from the environment is used (a proxy would resolve the name itself), and no
cookies are kept. Every failure is a `WebFetchError` whose message is a reason safe to
show ("refused: 10.0.0.1 is a private address", "robots.txt forbids it"); the caller
adds the URL. Left out: retries, HTTP/2, authentication, JavaScript rendering, and
the page limit of a crawl (`url_max_pages`, applied by the caller that expands it).
"""

from __future__ import annotations

import importlib.metadata
import threading
import time
import urllib.robotparser
from contextlib import closing
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from types import TracebackType

import httpx

from rag.components.web_addresses import AddressRules, Resolver, Target
from rag.core.errors import WebFetchError
from rag.core.settings import Settings


def _version() -> str:
    try:
        return importlib.metadata.version("docchat")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout not installed
        return "0"


USER_AGENT = f"DocChat/{_version()} (+docs/web.md)"
ROBOTS_AGENT = "DocChat"  # the name robots.txt rules address
# What DocChat reads from the web: pages, sitemaps and feeds, and the files its
# loaders read (PDF, Word, text).
ACCEPT: tuple[str, ...] = (
    "text/html",
    "application/xhtml+xml",
    "application/xml",
    "text/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ROBOTS_BYTES = 500 * 1024  # RFC 9309: crawlers parse at least the first 500 KiB
# A Crawl-delay above this is cut to it: 100 pages of a crawl then take under 17 minutes.
_MAX_CRAWL_DELAY = 10.0


@dataclass(frozen=True)
class FetchedPage:
    """One URL's response: its bytes (none when `not_modified`) and validators."""

    url: str  # the final URL, after redirects
    requested: str  # the URL asked for
    status: int  # 200, or 304 (unchanged since the given ETag / Last-Modified)
    content_type: str  # the Content-Type header as sent (with its charset, if any)
    data: bytes
    etag: str = ""
    last_modified: str = ""

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def media_type(self) -> str:
        """The content type without its parameters, in lower case: "text/html"."""
        return _media_type(self.content_type)


@dataclass(frozen=True)
class _Robots:
    """A host's robots.txt read: its rules, or None and why when it could not be read."""

    rules: urllib.robotparser.RobotFileParser | None
    delay: float  # seconds between requests to the host
    failure: str = ""


class Fetcher:
    """Fetches web addresses within the settings' limits (see the module docstring).

    One fetcher remembers each host's robots.txt and last request, so a crawl uses one.
    Safe to share between threads."""

    def __init__(
        self,
        settings: Settings,
        *,
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._rules = AddressRules(settings.url_allow, resolver)
        self._timeout = settings.url_timeout
        self._max_mb = settings.url_max_mb
        self._max_bytes = int(settings.url_max_mb * 1024 * 1024)
        self._max_redirects = max(0, settings.url_max_redirects)
        self._delay = max(0.0, settings.url_delay)
        self._lock = threading.Lock()
        self._robots: dict[tuple[str, str, int], _Robots] = {}
        self._next_turn: dict[str, float] = {}  # host -> when its next request may start
        self._http = httpx.Client(
            transport=transport
            or httpx.HTTPTransport(
                trust_env=False, limits=httpx.Limits(max_keepalive_connections=0)
            ),
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": USER_AGENT},
            cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),  # keeps none
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def fetch(
        self,
        url: str,
        *,
        etag: str = "",
        last_modified: str = "",
        accept: tuple[str, ...] = ACCEPT,
    ) -> FetchedPage:
        """`url`'s response, or WebFetchError with the reason it was not fetched."""
        headers = {"accept": ", ".join(accept) or "*/*"}
        if etag:
            headers["if-none-match"] = etag
        if last_modified:
            headers["if-modified-since"] = last_modified
        response, final = self._follow(url, headers, robots=True)
        with closing(response):
            if response.status_code == 304:
                return FetchedPage(
                    url=final, requested=url, status=304,
                    content_type=response.headers.get("content-type", ""), data=b"",
                    etag=response.headers.get("etag", etag),
                    last_modified=response.headers.get("last-modified", last_modified),
                )  # fmt: skip
            if response.status_code != 200:
                raise WebFetchError(f"the server answered HTTP {response.status_code}")
            content_type = response.headers.get("content-type", "")
            if not _accepted(_media_type(content_type), accept):
                shown = _media_type(content_type) or "none"
                raise WebFetchError(f"its content type ({shown[:80]}) is not one read here")
            data = self._body(response, self._max_bytes)
        return FetchedPage(
            url=final, requested=url, status=200, content_type=content_type, data=data,
            etag=response.headers.get("etag", ""),
            last_modified=response.headers.get("last-modified", ""),
        )  # fmt: skip

    def _follow(
        self, url: str, headers: dict[str, str], *, robots: bool
    ) -> tuple[httpx.Response, str]:
        """The first response that is not a redirect (its body still to read), and the
        URL it answered for. Every URL on the way is checked before it is asked."""
        current = url
        for hop in range(self._max_redirects + 1):
            try:
                target = self._rules.target(current)
                if robots:
                    self._obey_robots(target)
            except WebFetchError as e:
                if hop:
                    raise WebFetchError(f"{e} (after a redirect)") from None
                raise
            response = self._send(target, headers)
            location = response.headers.get("location", "")
            if response.status_code not in _REDIRECTS or not location:
                return response, str(target.url)
            response.close()
            try:
                current = str(target.url.join(location).copy_with(fragment=None))
            except (httpx.InvalidURL, ValueError):
                raise WebFetchError("redirected to an invalid URL") from None
        raise WebFetchError(f"more than {self._max_redirects} redirects")

    def _send(self, target: Target, headers: dict[str, str]) -> httpx.Response:
        """The request sent to the target's checked addresses, the next one when one
        cannot be connected to; the response's body is not read yet."""
        self._wait_turn(target)
        https = target.url.scheme == "https"
        extensions = {"sni_hostname": target.host.rstrip(".")} if https else {}
        for i, address in enumerate(target.addresses):
            request = self._http.build_request(
                "GET",
                target.url.copy_with(host=address.split("%", 1)[0]),
                headers={**headers, "host": target.netloc},
                extensions=extensions,
            )
            try:
                return self._http.send(request, stream=True)
            except httpx.ConnectError:
                if i + 1 == len(target.addresses):
                    raise WebFetchError("the server cannot be reached") from None
            except httpx.TimeoutException:
                raise WebFetchError(
                    f"the server did not answer within {self._timeout:g} s"
                ) from None
            except httpx.HTTPError:
                raise WebFetchError("the connection to the server failed") from None
        raise AssertionError("unreachable: a target has at least one address")

    def _body(self, response: httpx.Response, limit: int) -> bytes:
        """The response's body, refused beyond `limit` bytes or the time allowed."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise WebFetchError(f"over the {self._max_mb:g} MB limit")
        deadline = time.monotonic() + 2 * self._timeout
        parts: list[bytes] = []
        size = 0
        try:
            for part in response.iter_bytes():
                size += len(part)
                if size > limit:
                    raise WebFetchError(f"over the {self._max_mb:g} MB limit")
                if time.monotonic() > deadline:
                    raise WebFetchError(f"the page did not arrive within {2 * self._timeout:g} s")
                parts.append(part)
        except httpx.TimeoutException:
            raise WebFetchError(f"the server did not answer within {self._timeout:g} s") from None
        except httpx.HTTPError:
            raise WebFetchError("the connection broke while the page arrived") from None
        return b"".join(parts)

    def _wait_turn(self, target: Target) -> None:
        """Sleeps until the host's next request may start, and books the one after."""
        robots = self._robots.get(_origin(target))
        delay = robots.delay if robots is not None else self._delay
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next_turn.get(target.host, now))
            self._next_turn[target.host] = start + delay
        if start > now:
            time.sleep(start - now)

    def _obey_robots(self, target: Target) -> None:
        origin = _origin(target)
        robots = self._robots.get(origin)
        if robots is None:
            robots = self._read_robots(target)
            with self._lock:
                self._robots[origin] = robots
        if robots.rules is None:
            raise WebFetchError(f"robots.txt could not be read ({robots.failure})")
        if not robots.rules.can_fetch(ROBOTS_AGENT, str(target.url)):
            raise WebFetchError("robots.txt forbids it")

    def _read_robots(self, target: Target) -> _Robots:
        """The host's robots.txt (RFC 9309: 4xx means no rules; failing means none may
        be fetched), fetched and bounded like any page, its own redirects checked."""
        url = str(target.url.copy_with(path="/robots.txt", query=None, fragment=None))
        rules = urllib.robotparser.RobotFileParser(url)
        try:
            response, _ = self._follow(url, {"accept": "text/plain, */*"}, robots=False)
            with closing(response):
                status = response.status_code
                if 400 <= status < 500:
                    rules.parse([])  # no rules: everything may be fetched
                    return _Robots(rules, self._delay)
                if status != 200:
                    return _Robots(None, self._delay, f"the server answered HTTP {status}")
                text = self._robots_text(response)
        except WebFetchError as e:
            return _Robots(None, self._delay, str(e))
        rules.parse(text.splitlines())
        asked = rules.crawl_delay(ROBOTS_AGENT)
        delay = max(self._delay, min(float(asked or 0), _MAX_CRAWL_DELAY))
        return _Robots(rules, delay)

    def _robots_text(self, response: httpx.Response) -> str:
        """The first 500 KiB of a robots.txt, as text (RFC 9309 parses at least that)."""
        parts: list[bytes] = []
        size = 0
        try:
            for part in response.iter_bytes():
                parts.append(part)
                size += len(part)
                if size >= _ROBOTS_BYTES:
                    break
        except httpx.HTTPError:
            raise WebFetchError("robots.txt broke off") from None
        return b"".join(parts)[:_ROBOTS_BYTES].decode("utf-8", errors="replace")


def _origin(target: Target) -> tuple[str, str, int]:
    return (target.url.scheme, target.host, target.port)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _accepted(media: str, accept: tuple[str, ...]) -> bool:
    """`media` is one of `accept`, which may hold `type/*` and `*/*`."""
    if not accept:
        return True
    kind = media.split("/", 1)[0]
    return any(a in (media, "*/*", f"{kind}/*") for a in (x.lower() for x in accept))
