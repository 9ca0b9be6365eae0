"""Callback URL checks against server-side request forgery: https only, and every address
the host resolves to must be public, unless the deployment allows private callbacks."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit


class UnsafeCallback(ValueError):
    pass


def _address_problem(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link-local (cloud metadata lives here)"
    if addr.is_private:
        return "private"
    if addr.is_multicast or addr.is_reserved or addr.is_unspecified or not addr.is_global:
        return "not a public address"
    return None


def check_url_shape(url: str, *, allow_private: bool) -> tuple[str, int]:
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


async def check_callback_url(url: str, *, allow_private: bool) -> None:
    """Raises UnsafeCallback with a sentence saying why; resolves DNS (re-run at delivery)."""
    host, port = check_url_shape(url, allow_private=allow_private)
    if allow_private:
        return
    try:
        literal = ipaddress.ip_address(host)
        addresses = [literal]
    except ValueError:
        if host.lower() in {"localhost", "metadata.google.internal"} or host.lower().endswith(".localhost"):
            raise UnsafeCallback("must not point at a local or metadata host") from None
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=3
            )
        except (OSError, TimeoutError) as exc:
            raise UnsafeCallback(f"host {host!r} does not resolve") from exc
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for addr in addresses:
        problem = _address_problem(addr)
        if problem:
            raise UnsafeCallback(
                f"resolves to a {problem} address ({addr}); only public addresses are allowed"
            )
