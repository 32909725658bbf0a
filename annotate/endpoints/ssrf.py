"""The guard between an admin-typed endpoint URL and the network (server-side request forgery).

An endpoint's base URL is chosen by a staff user, but the worker that calls it sits inside our network:
without a guard, `http://169.254.169.254/` would read the cloud metadata service (and its credentials),
and `http://10.0.0.5:6379/` would talk to internal services. So:

- the URL must be http(s), with a host and no user:password part;
- every address the host resolves to must be public. Loopback, private, link-local, unique-local,
  shared (CGNAT), multicast, reserved and unspecified addresses are refused, also when embedded in an
  IPv6 address (IPv4-mapped, NAT64, 6to4), unless the host name is listed in ALLOWED_ENDPOINT_HOSTS (so a
  vLLM on the local network can be allowed explicitly);
- cloud metadata addresses are refused always, even for an allowed host: no model server lives there,
  and an allowed name whose DNS record is changed to point at one must still not reach it;
- the check runs when the endpoint is saved (model clean) and again for every new connection, inside the
  HTTP client's network backend (`PinnedBackend` in client.py): the name is resolved once, every address
  is checked, and the socket connects to a checked address itself, never to the name. So a DNS answer
  that changes between the check and the connect (rebinding) cannot slip through: there is no second
  lookup. Host header, TLS SNI and certificate checks still use the name.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services: AWS/GCP/Azure/OpenStack/DigitalOcean (169.254.169.254), AWS IPv6
# (fd00:ec2::254), Alibaba (100.100.100.200), Oracle (192.0.0.192), Azure wire server (168.63.129.16,
# a public address, hence listed), Tencent (169.254.0.23), AWS ECS task metadata (169.254.170.2).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.0.23",
        "fd00:ec2::254",
        "100.100.100.200",
        "192.0.0.192",
        "168.63.129.16",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


class EndpointRefused(Exception):
    """The URL or an address it resolves to may not be contacted. The message names host and reason."""


@dataclass(frozen=True)
class EndpointURL:
    scheme: str
    host: str  # lower case, without brackets or trailing dot
    port: int


def normalize_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def allowed_hosts() -> frozenset[str]:
    return frozenset(normalize_host(h) for h in getattr(settings, "ALLOWED_ENDPOINT_HOSTS", []) if h)


def parse_url(url: str) -> EndpointURL:
    """Scheme, host and port of an endpoint URL; refuses anything but http(s)://host[:port]/path."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise EndpointRefused(f"Not a valid URL: {exc}.") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise EndpointRefused("Only http:// and https:// URLs are allowed.")
    if parts.username is not None or parts.password is not None:
        raise EndpointRefused("Credentials in the URL are not allowed: name an API key variable instead.")
    host = normalize_host(parts.hostname or "")
    if not host:
        raise EndpointRefused("The URL has no host.")
    return EndpointURL(scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64 or address in _NAT64_LOCAL:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_problem(address: IPAddress) -> str | None:
    """Why this address may not be contacted (unless its host is allowed), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded)
            return f"{problem} (embedded in an IPv6 address)" if problem else None
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    )
    for attribute, reason in checks:
        if getattr(address, attribute):
            return reason
    if not address.is_global:  # shared address space (100.64.0.0/10), documentation ranges, ...
        return "a non-public address"
    return None


def check_address(host: str, address: IPAddress) -> None:
    """Refuse `address` (one answer for `host`) unless it is public or the host is explicitly allowed."""
    if address in METADATA_ADDRESSES:
        raise EndpointRefused(f"{host} resolves to {address}, a cloud metadata address: always refused.")
    problem = address_problem(address)
    if problem and normalize_host(host) not in allowed_hosts():
        raise EndpointRefused(
            f"{host} resolves to {address}, {problem}. Add the host to ALLOWED_ENDPOINT_HOSTS to allow it."
        )


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address of `host` (one DNS lookup), each checked; refuses the host if any answer is refused.

    All answers must pass, not just the first: a name with one public and one private record could
    otherwise reach the private one on a retry or through another client's address ordering.
    """
    host = normalize_host(host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise EndpointRefused(f"Cannot resolve {host}: {exc}.") from None
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        # A scope ("%eth0") only ever comes with link-local addresses, which are refused or allowed as such.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        check_address(host, address)
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise EndpointRefused(f"{host} has no IPv4 or IPv6 address.")
    return addresses


def validate_url(url: str) -> EndpointURL:
    """The save-time check: a well-formed http(s) URL whose host resolves to allowed addresses only."""
    parsed = parse_url(url)
    resolve(parsed.host, parsed.port)
    return parsed
