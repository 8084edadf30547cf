"""The rules against server-side request forgery (rag/components/web_addresses.py), held by
the fetcher: a URL whose name resolves (through a resolver the test controls) to a
loopback, private, link-local, unspecified or IPv4-mapped address is refused with its
reason before any connection, and so is a redirect to one from an allowed host.

"No connection" is asserted twice: the transport given to the fetcher fails the test if
it is asked to send anything, and `only_loopback` fails it if a socket connects to any
address but 127.0.0.1. The redirect cases run against a real site on 127.0.0.1 (allowed
by its name in `url_allow`), the only address any test here connects to.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NoReturn

import httpx
import pytest

from rag.components.web_addresses import AddressRules, refusal
from rag.components.web_fetch import Fetcher
from rag.core.errors import ConfigError, WebFetchError
from rag.core.settings import Settings
from tests.fixtures.local_web import LocalSite, Reply, local_site, only_loopback

# The table: each name resolves to the address, and is refused for the reason.
TABLE = [
    ("127.0.0.1", "refused: 127.0.0.1 is a loopback address"),
    ("10.0.0.1", "refused: 10.0.0.1 is a private address"),
    ("172.16.0.1", "refused: 172.16.0.1 is a private address"),
    ("192.168.1.1", "refused: 192.168.1.1 is a private address"),
    ("169.254.169.254", "refused: 169.254.169.254 is the cloud metadata address (link-local)"),
    ("::1", "refused: ::1 is a loopback address"),
    ("fd00::1", "refused: fd00::1 is a private address"),
    ("::ffff:127.0.0.1", "refused: ::ffff:127.0.0.1 is a loopback address (it leads to 127.0.0.1)"),
    ("0.0.0.0", "refused: 0.0.0.0 is an unspecified address"),
]
ADDRESSES = [address for address, _ in TABLE]


class NoTransport(httpx.BaseTransport):
    """A transport that fails the test if anything is sent through it."""

    def handle_request(self, request: httpx.Request) -> NoReturn:
        pytest.fail(f"a request was sent to {request.url.host}")


class Resolver:
    """Names to addresses, as the test says; counts the lookups."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return self.names[host]


def name_of(address: str) -> str:
    return "host-" + address.replace(":", "-").replace(".", "-") + ".test"


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return only_loopback(monkeypatch)


@pytest.mark.parametrize(("address", "reason"), TABLE, ids=ADDRESSES)
def test_a_name_resolving_to_a_non_public_address_is_refused_unconnected(
    address: str, reason: str, guarded: list[str]
) -> None:
    resolver = Resolver({name_of(address): [address]})
    fetcher = Fetcher(Settings(), resolver=resolver, transport=NoTransport())
    with pytest.raises(WebFetchError) as refused:
        fetcher.fetch(f"http://{name_of(address)}/latest/meta-data/")
    assert str(refused.value) == reason
    assert resolver.asked == [name_of(address)]
    assert guarded == []


@pytest.fixture
def redirecting() -> Iterator[LocalSite]:
    """An allowed site on 127.0.0.1 whose /to/<address> redirects to a name resolving there."""
    routes = {
        f"/to/{address}": Reply(302, headers={"location": f"http://{name_of(address)}/secret"})
        for address in ADDRESSES
    }
    with local_site(dict(routes)) as site:
        yield site


@pytest.mark.parametrize(("address", "reason"), TABLE, ids=ADDRESSES)
def test_a_redirect_from_an_allowed_host_to_a_non_public_address_is_refused(
    address: str, reason: str, redirecting: LocalSite, guarded: list[str]
) -> None:
    names = {"allowed.test": ["127.0.0.1"], name_of(address): [address]}
    # The site is allowed by its name, not its address: the name that leads to
    # 127.0.0.1 too is refused.
    settings = Settings(url_allow="allowed.test", url_delay=0)
    with (
        Fetcher(settings, resolver=Resolver(names)) as fetcher,
        pytest.raises(WebFetchError) as refused,
    ):
        fetcher.fetch(f"http://allowed.test:{redirecting.port}/to/{address}")
    assert str(refused.value) == f"{reason} (after a redirect)"
    assert redirecting.paths() == ["/robots.txt", f"/to/{address}"]
    assert set(guarded) == {"127.0.0.1"}


def test_an_ip_literal_is_checked_without_resolving() -> None:
    resolver = Resolver({})
    fetcher = Fetcher(Settings(), resolver=resolver, transport=NoTransport())
    for url, reason in [
        ("http://169.254.169.254/latest/", "cloud metadata"),
        ("http://[::1]:8080/", "loopback"),
        ("https://[fd00:ec2::254]/", "cloud metadata"),
        ("http://[::ffff:10.0.0.1]/", "private"),
    ]:
        with pytest.raises(WebFetchError, match=reason):
            fetcher.fetch(url)
    assert resolver.asked == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "127.1", "017700000001", "0"])
def test_numeric_spellings_of_an_address_are_refused_as_what_they_mean(
    host: str, guarded: list[str]
) -> None:
    """The system resolver reads these without asking DNS (inet_aton's forms)."""
    fetcher = Fetcher(Settings(), transport=NoTransport())
    with pytest.raises(WebFetchError, match=r"^refused: (127\.0\.0\.1|0\.0\.0\.0) is"):
        fetcher.fetch(f"http://{host}/")
    assert guarded == []


def test_one_non_public_address_among_public_ones_refuses_the_name() -> None:
    resolver = Resolver({"rebind.test": ["93.184.215.14", "10.0.0.1"]})
    fetcher = Fetcher(Settings(), resolver=resolver, transport=NoTransport())
    with pytest.raises(WebFetchError, match=r"10\.0\.0\.1 is a private address"):
        fetcher.fetch("https://rebind.test/")


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.com/a", "gopher://example.com/", "javascript:alert(1)"],
)
def test_only_http_and_https_are_fetched(url: str) -> None:
    fetcher = Fetcher(Settings(), resolver=Resolver({}), transport=NoTransport())
    with pytest.raises(WebFetchError, match="not an http"):
        fetcher.fetch(url)


def test_urls_with_credentials_or_no_host_are_refused() -> None:
    fetcher = Fetcher(Settings(), resolver=Resolver({}), transport=NoTransport())
    with pytest.raises(WebFetchError, match="user name or password"):
        fetcher.fetch("http://admin:secret@example.com/")
    with pytest.raises(WebFetchError, match=r"no host|not a valid URL"):
        fetcher.fetch("http:///nohost")


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("fe80::1%eth0", "link-local"),
        ("224.0.0.1", "multicast"),
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
        ("240.0.0.1", "reserved"),
        ("::", "unspecified"),
    ],
)
def test_other_non_public_forms_are_refused(address: str, kind: str) -> None:
    assert kind in (refusal(address) or "")


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:4700::1", "::ffff:8.8.8.8"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None


def test_the_allow_list_takes_networks_and_host_names() -> None:
    names = {"wiki.corp.test": ["10.1.2.3"], "other.corp.test": ["10.1.2.4"]}
    rules = AddressRules("10.9.0.0/16, wiki.corp.test, 192.168.1.1", Resolver(names))
    assert rules.target("http://wiki.corp.test/a").addresses == ("10.1.2.3",)
    assert rules.target("http://10.9.8.7/").addresses == ("10.9.8.7",)
    assert rules.target("http://192.168.1.1/").addresses == ("192.168.1.1",)
    with pytest.raises(WebFetchError, match=r"10\.1\.2\.4 is a private address"):
        rules.target("http://other.corp.test/")
    with pytest.raises(ConfigError, match="DOCCHAT_URL_ALLOW"):
        AddressRules("not a host!")
