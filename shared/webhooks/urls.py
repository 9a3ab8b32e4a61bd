"""Where a webhook may go: https to a public address, checked at registration and again at delivery.

A host is resolved once and every address it resolves to must be public (no private, loopback,
link-local, metadata, multicast or reserved ranges); the delivery then connects to the address that
was checked, so a second lookup cannot swap in another (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

# The one host the local stack may name over plain http, and only when it says so.
LOCAL_HTTP_HOST = "127.0.0.1"
MAX_URL_LENGTH = 2048

Resolver = Callable[[str, int], Sequence[str]]


class UnsafeUrl(ValueError):
    """A webhook URL that may not be called; the message says why."""


def resolve_host(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError, ValueError) as error:  # gaierror is an OSError
        raise UnsafeUrl(f"the host {host!r} does not resolve ({error})") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to ``address``, speak to ``host``."""

    url: str
    scheme: str
    host: str
    port: int
    path: str
    address: str

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        return self.host if self.port == default else f"{self.host}:{self.port}"


def _refusal(address: str) -> str | None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local (the instance metadata service lives there)"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "not a unicast address"
    if ip.is_private or not ip.is_global:
        return "private"
    return None


def check_url(url: str, *, allow_local_http: bool = False, resolve: Resolver = resolve_host) -> Target:
    """The URL's target if a webhook may be sent there, else :class:`UnsafeUrl` saying why."""
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeUrl(f"the URL is not valid ({error})") from None
    host = (parts.hostname or "").lower()
    local = allow_local_http and parts.scheme == "http" and host == LOCAL_HTTP_HOST
    if parts.scheme != "https" and not local:
        hint = " (or http://127.0.0.1 on a local stack that allows it)" if allow_local_http else ""
        raise UnsafeUrl(f"the URL must be https{hint}, not {parts.scheme or 'schemeless'!r}")
    if not host:
        raise UnsafeUrl("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("the URL may not carry a user name or password; sign requests with the secret")
    if parts.fragment:
        raise UnsafeUrl("the URL may not have a #fragment")
    port = port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if local:
        return Target(url, parts.scheme, host, port, path, LOCAL_HTTP_HOST)
    addresses = resolve(host, port)
    if not addresses:
        raise UnsafeUrl(f"the host {host!r} resolves to no address")
    for address in addresses:
        refusal = _refusal(address)
        if refusal:
            raise UnsafeUrl(f"the host {host!r} resolves to {address}, which is {refusal}")
    return Target(url, parts.scheme, host, port, path, addresses[0])
