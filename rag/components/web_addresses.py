"""Which web addresses DocChat may fetch from: the rules against server-side request forgery.

A URL given to DocChat must not make the server reach what only the server can reach:
itself, the intranet, a cloud's metadata service. So before anything connects,
`AddressRules.target` turns a URL into a `Target`:

- only `http` and `https`, with a host and no user name or password in the URL;
- the host is resolved once (`Resolver`: `socket.getaddrinfo` unless a test gives its
  own), and every address it resolves to is checked: unspecified (`0.0.0.0`, `::`),
  loopback, link-local (the cloud metadata address `169.254.169.254` among them),
  multicast, private (`10/8`, `172.16/12`, `192.168/16`, IPv6 unique local `fc00::/7`),
  reserved and any other non-public range are refused. An IPv6 address that carries an
  IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, 6to4 `2002::/16`, NAT64 `64:ff9b::/96`,
  Teredo) is judged by the IPv4 address it leads to. One refused address refuses the
  URL: a name that resolves to a public and a private address is how DNS rebinding
  starts.
- `DOCCHAT_URL_ALLOW` (`Settings.url_allow`) lists what is allowed although not public:
  CIDRs or single addresses (an intranet's range, `127.0.0.1/32` in the tests) and host
  names (all the addresses such a name resolves to are allowed).

The `Target` keeps the addresses that were checked; the fetcher (`web_fetch.py`)
connects to one of them, never to the name again, so a second DNS answer cannot differ
from the one checked. Left out: port rules (any port of a public address may be
fetched), a timeout on the system resolver (`getaddrinfo` has none), and wildcard host
names in the allow list.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from rag.core.errors import ConfigError, WebFetchError
from rag.core.settings import ENV_NAMES

Resolver = Callable[[str, int], list[str]]  # (host, port) -> IP address strings
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# AWS, GCP, Azure and OpenStack answer on 169.254.169.254; AWS also on fd00:ec2::254.
_METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, in the system's order, each once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebFetchError(f"the name {host} cannot be resolved") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal(address: str) -> str | None:
    """Why `address` may not be fetched from ("10.0.0.1 is a private address"), or None
    when it is a public address."""
    ip = _parse_ip(address)
    if ip is None:
        return f"{address} is not an IP address"
    carried = _carried_ipv4(ip)
    if carried is not None:
        why = _kind(carried)
        # Python writes ::ffff:127.0.0.1 as ::ffff:7f00:1; the dotted form is the one known.
        mapped = isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None
        shown = f"::ffff:{carried}" if mapped else str(ip)
        return f"{shown} is {why} (it leads to {carried})" if why else None
    why = _kind(ip)
    return f"{ip} is {why}" if why else None


def _kind(ip: IPAddress) -> str | None:
    """The kind of non-public address `ip` is, in words, or None when it is public."""
    if ip in _METADATA:
        return "the cloud metadata address (link-local)"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_reserved:  # before private: Python counts 240.0.0.0/4 as both
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if not ip.is_global:  # shared (100.64/10), documentation, benchmarking ranges
        return "not a public address"
    return None


def _carried_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address leads to (mapped, 6to4, NAT64, Teredo), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address; the server's is public by design
    return None


def _parse_ip(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])  # without an IPv6 zone id
    except ValueError:
        return None


@dataclass(frozen=True)
class Target:
    """A URL that passed the rules: what to ask for, and where to connect."""

    url: httpx.URL  # as requested (the name, not an address)
    host: str  # the name in ASCII (IDNA), lower case: for Host, SNI and per-host rules
    netloc: str  # host[:port] as the Host header gives it
    port: int
    addresses: tuple[str, ...]  # checked, in the resolver's order: connect to these


class AddressRules:
    """The rules above, with the allow list of the settings and a resolver."""

    def __init__(self, allow: str, resolver: Resolver | None = None) -> None:
        self._resolve = resolver or system_resolver
        self._networks, self._names = _allow_list(allow)

    def target(self, url: str) -> Target:
        """`url` checked, resolved once and its addresses checked (WebFetchError)."""
        parsed = parse_url(url)
        host = parsed.raw_host.decode("ascii").lower()
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        literal = _parse_ip(host)
        addresses = [host] if literal is not None else self._resolve(host, port)
        if not addresses:
            raise WebFetchError(f"the name {host} cannot be resolved")
        if host.rstrip(".") not in self._names:
            for address in addresses:
                self.check_address(address)
        return Target(parsed, host, parsed.netloc.decode("ascii"), port, tuple(addresses))

    def check_address(self, address: str) -> None:
        """Refuses (WebFetchError) an address neither public nor on the allow list."""
        ip = _parse_ip(address)
        if ip is not None and any(ip in network for network in self._networks):
            return
        why = refusal(address)
        if why is not None:
            raise WebFetchError(f"refused: {why}")


def parse_url(url: str) -> httpx.URL:
    """`url` parsed as the client will send it: http(s), a host, no credentials."""
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, ValueError):
        raise WebFetchError("not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise WebFetchError("not an http(s) URL")
    if not parsed.raw_host:
        raise WebFetchError("the URL has no host")
    if parsed.userinfo:
        raise WebFetchError("a URL with a user name or password is not fetched")
    return parsed


def _allow_list(allow: str) -> tuple[tuple[Network, ...], frozenset[str]]:
    """`DOCCHAT_URL_ALLOW` read: its networks and its host names (ConfigError if neither)."""
    networks: list[Network] = []
    names: set[str] = set()
    for item in (x.strip().lower() for x in allow.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
            continue
        except ValueError:
            pass
        name = item.rstrip(".")
        if not _HOST_NAME.match(name):
            raise ConfigError(
                f"{ENV_NAMES['url_allow']}: {item!r} is neither a CIDR, an address nor a host name."
            )
        names.add(name)
    return tuple(networks), frozenset(names)
