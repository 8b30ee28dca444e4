"""Which FHIR servers the service may contact: allowlisted bases, never an address no FHIR server lives at.

URLs are compared after normalising them the way httpx will parse them (a differential between the two
parsers would let a URL pass the check and connect elsewhere). `forbidden_address` is applied where the
connection is made (fhir.pinned), to the very answer that is connected to.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

import httpx

DEFAULT_PORTS = {"http": 80, "https": 443}
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")


class Base(NamedTuple):
    scheme: str
    host: str
    port: int
    path: str


def normalise(url: str) -> Base | None:
    """Reduce a URL to (scheme, host, port, path); None for anything that could smuggle a host or path."""
    if not url or _UNSAFE_URL_CHARS.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or "@" in parts.netloc:
        return None
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return None
    return Base(
        scheme,
        parts.hostname.lower(),
        DEFAULT_PORTS[scheme] if port is None else port,
        parts.path.rstrip("/"),
    )


def is_under(url: Base, base: Base) -> bool:
    return url[:3] == base[:3] and (url.path == base.path or url.path.startswith(base.path + "/"))


def is_allowed(url: str, allowed_servers: Sequence[str]) -> bool:
    """True if `url` is an http(s) URL at or below one of the allowlisted bases."""
    target = normalise(url)
    if target is None:
        return False
    return any(base is not None and is_under(target, base) for base in map(normalise, allowed_servers))


def agrees_with_httpx(url: str) -> bool:
    """Guard against parser differentials: httpx must see the same origin the allowlist check saw."""
    ours = normalise(url)
    try:
        theirs = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    port = theirs.port if theirs.port is not None else DEFAULT_PORTS.get(theirs.scheme)
    return ours is not None and (ours.scheme, ours.host, ours.port) == (theirs.scheme, theirs.host, port)


# Cloud instance-metadata endpoints beyond the link-local range (AWS IPv6, Alibaba).
_METADATA = frozenset({ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")})


def forbidden_address(address: str) -> bool:
    """Addresses no FHIR server lives at: link-local (169.254.169.254), metadata, multicast, unspecified."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_link_local or ip.is_multicast or ip.is_unspecified or ip.is_reserved or ip in _METADATA
