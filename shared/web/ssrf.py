"""Callback URLs against server-side request forgery: https only, and every address the host
resolves to must be public, unless the deployment allows private callbacks.

Checking a URL and then letting the HTTP client resolve its host again is not enough: DNS can
answer a public address to the check and loopback to the connect (DNS rebinding). So webhooks
go out through `pinned_transport`, whose network backend resolves the host once, checks every
address it got, and connects to one of those very addresses; the URL keeps its hostname, so the
Host header, TLS SNI and certificate verification are still for the hostname.

IPv6 forms that reach an IPv4 host are judged by that host: an IPv4-mapped (::ffff:0:0/96),
6to4 (2002::/16) or well-known-prefix NAT64 (64:ff9b::/96) address embedding 127.0.0.1 is
loopback. Forms whose IPv4 part is not plainly there, or that no receiver needs, are refused
outright: Teredo (2001::/32, its client part obfuscated), local-use NAT64 (64:ff9b:1::/48, its
embedding depends on a local prefix length), IPv4-compatible (::/96, deprecated) and
IPv4-translated (::ffff:0:0:0/96) addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port → the addresses it resolves to (as text). Injectable, so a test can play a DNS
# server that answers differently each time.
Resolver = Callable[[str, int], Awaitable[list[str]]]

RESOLVE_TIMEOUT_SECONDS = 3.0
_LOCAL_NAMES = frozenset({"localhost", "metadata.google.internal"})

_TEREDO = ipaddress.IPv6Network("2001::/32")
_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")


class UnsafeCallback(ValueError):
    pass


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _v4_problem(addr: ipaddress.IPv4Address) -> str | None:
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local (cloud metadata lives here)"
    if addr.is_private:
        return "private"
    if addr.is_multicast or addr.is_reserved or addr.is_unspecified or not addr.is_global:
        return "not a public address"
    return None


def address_problem(addr: IPAddress) -> str | None:
    """Why `addr` is no place for a callback to go, or None for a public address."""
    if isinstance(addr, ipaddress.IPv4Address):
        return _v4_problem(addr)
    if addr in _TEREDO:
        return "Teredo tunnel (refused outright)"
    if addr in _NAT64_LOCAL_USE:
        return "local-use NAT64 (refused outright)"
    if addr.ipv4_mapped is not None:
        return _v4_problem(addr.ipv4_mapped)
    embedded: tuple[str, ipaddress.IPv4Address] | None = None
    if addr.sixtofour is not None:
        embedded = ("6to4", addr.sixtofour)
    elif addr in _NAT64_WELL_KNOWN:
        embedded = ("NAT64", ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF))
    if embedded is not None:
        form, v4 = embedded
        problem = _v4_problem(v4)
        return None if problem is None else f"{problem} (the {form} form of {v4})"
    if addr in _IPV4_COMPATIBLE and int(addr) > 1:
        return "IPv4-compatible (refused outright)"
    if addr in _IPV4_TRANSLATED:
        return "IPv4-translated (refused outright)"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local (cloud metadata lives here)"
    if addr.is_private or addr.is_site_local:
        return "private"
    if addr.is_multicast or addr.is_reserved or addr.is_unspecified or not addr.is_global:
        return "not a public address"
    return None


def check_url_shape(url: str, *, allow_private: bool) -> tuple[str, int]:
    """The URL's host and port, if its shape is allowed (no DNS)."""
    if len(url) > 2000:
        raise UnsafeCallback("must be at most 2000 characters")
    parts = urlsplit(url)
    allowed = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed:
        raise UnsafeCallback("must be an https URL")
    if not parts.hostname:
        raise UnsafeCallback("must name a host")
    if parts.username or parts.password:
        raise UnsafeCallback("must not carry credentials")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeCallback("has an invalid port") from exc
    return parts.hostname, port


async def checked_addresses(host: str, port: int, *, resolver: Resolver = system_resolver) -> list[IPAddress]:
    """Every address `host` resolves to, resolved once, each checked; UnsafeCallback (saying
    why) when any one is not public: a name answering one public and one private address is
    refused whole, since which one a client would pick is not ours to know."""
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(host)]
    except ValueError:
        name = host.lower().rstrip(".")
        if name in _LOCAL_NAMES or name.endswith(".localhost"):
            raise UnsafeCallback("must not point at a local or metadata host") from None
        try:
            answers = await asyncio.wait_for(resolver(host, port), timeout=RESOLVE_TIMEOUT_SECONDS)
            addresses = _unique(ipaddress.ip_address(a.split("%", 1)[0]) for a in answers)
        except (OSError, TimeoutError, ValueError) as exc:
            raise UnsafeCallback(f"host {host!r} does not resolve") from exc
    if not addresses:
        raise UnsafeCallback(f"host {host!r} does not resolve")
    for addr in addresses:
        problem = address_problem(addr)
        if problem:
            raise UnsafeCallback(f"resolves to a {problem} address ({addr}); only public addresses are allowed")
    return addresses


def _unique(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    return list(dict.fromkeys(addresses))


async def check_callback_url(url: str, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
    """Raises UnsafeCallback with a sentence saying why. Resolves DNS: a check when a partner
    registers; deliveries are protected by `pinned_transport`, which checks what it connects to."""
    host, port = check_url_shape(url, allow_private=allow_private)
    if not allow_private:
        await checked_addresses(host, port, resolver=resolver)


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses it has just checked: the host
    httpcore asks for is resolved once, every address checked, and the connection made to one
    of them (the next on a refused connect). TLS is started by httpcore on the stream with the
    hostname as SNI and for certificate verification, as it would be without this backend."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self.allow_private:
            return await self.inner.connect_tcp(host, port, timeout, local_address, socket_options)
        addresses = await checked_addresses(host, port, resolver=self.resolver)
        failure: Exception | None = None
        for addr in addresses:
            try:
                return await self.inner.connect_tcp(str(addr), port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # checked_addresses never returns an empty list
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeCallback("must not be a unix socket")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport over a `PinnedBackend`. httpx takes no network backend (encode/httpx
    #3749 would add one), so the connection pool it built is replaced by the same pool on the
    pinned backend; no proxy, ever (a proxy would resolve the host itself)."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver = system_resolver,
        inner: httpcore.AsyncNetworkBackend | None = None,
        limits: httpx.Limits = httpx.Limits(),
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        super().__init__(verify=verify, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=PinnedBackend(allow_private=allow_private, resolver=resolver, inner=inner),
        )


def pinned_transport(
    *,
    allow_private: bool,
    resolver: Resolver = system_resolver,
    inner: httpcore.AsyncNetworkBackend | None = None,
    limits: httpx.Limits | None = None,
) -> PinnedTransport:
    """The transport every outgoing callback uses (see the module's docstring)."""
    return PinnedTransport(allow_private=allow_private, resolver=resolver, inner=inner,
                           limits=limits or httpx.Limits())
