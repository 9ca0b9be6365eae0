"""Callback URLs are refused when they could reach the inside (shared.web.ssrf): https only,
public addresses only, unless the deployment allows private callbacks. The same check runs when
intake registers a partner and when notify's dispatcher delivers (tests/integration/test_ssrf.py
shows both against the services)."""

from __future__ import annotations

import pytest

from shared.web.ssrf import UnsafeCallback, check_callback_url

# --- refused, saying why -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hook", "loopback"),
        ("https://127.1.2.3:8443/hook", "loopback"),
        ("https://[::1]/hook", "loopback"),
        ("https://localhost/hook", "local"),
        ("https://api.localhost/hook", "local"),
        ("https://10.0.0.5/hook", "private"),
        ("https://172.16.3.4/hook", "private"),
        ("https://192.168.1.10/hook", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fe80::1]/hook", "link-local"),
        ("https://[::ffff:127.0.0.1]/hook", "loopback"),
        ("https://[::ffff:169.254.169.254]/hook", "link-local"),
        ("https://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("https://0.0.0.0/hook", "public"),
        ("https://100.64.0.1/hook", "public"),
        ("http://example.com/hook", "https"),
        ("ftp://example.com/hook", "https"),
        ("https://user:pw@example.com/hook", "credentials"),
        ("https:///nohost", "host"),
    ],
)
async def test_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeCallback, match=why):
        await check_callback_url(url, allow_private=False)


# --- refused, whatever the reason ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/h",
        "https://[::1]/h",
        "https://10.0.0.5/h",
        "https://172.16.3.4/h",
        "https://192.168.1.1/h",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fe80::1]/h",
        "https://0.0.0.0/h",
        "https://[::ffff:127.0.0.1]/h",
        "https://localhost/h",
        "https://metadata.google.internal/h",
        "http://93.184.216.34/h",
        "https://user:pw@93.184.216.34/h",
        "gopher://93.184.216.34/h",
    ],
)
async def test_unsafe_callbacks_are_refused(url: str) -> None:
    with pytest.raises(UnsafeCallback):
        await check_callback_url(url, allow_private=False)


# --- allowed -------------------------------------------------------------------------------


async def test_public_literal_address_is_allowed() -> None:
    await check_callback_url("https://93.184.215.14/hook", allow_private=False)


async def test_a_public_https_address_is_allowed() -> None:
    await check_callback_url("https://93.184.216.34/hook", allow_private=False)


async def test_allow_private_admits_loopback_and_plain_http() -> None:
    await check_callback_url("http://127.0.0.1:9000/hook", allow_private=True)
    await check_callback_url("https://10.0.0.5/hook", allow_private=True)
    with pytest.raises(UnsafeCallback):
        await check_callback_url("ftp://127.0.0.1/hook", allow_private=True)


async def test_private_and_http_allowed_only_when_the_deployment_says_so() -> None:
    await check_callback_url("http://127.0.0.1:9999/hook", allow_private=True)
    with pytest.raises(UnsafeCallback):
        await check_callback_url("ftp://127.0.0.1/hook", allow_private=True)
