"""Callback URLs: https only, public addresses only, unless private callbacks are allowed."""

from __future__ import annotations

import pytest

from shared.web.ssrf import UnsafeCallback, check_callback_url


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


async def test_a_public_https_address_is_allowed() -> None:
    await check_callback_url("https://93.184.216.34/hook", allow_private=False)


async def test_private_and_http_allowed_only_when_the_deployment_says_so() -> None:
    await check_callback_url("http://127.0.0.1:9999/hook", allow_private=True)
    with pytest.raises(UnsafeCallback):
        await check_callback_url("ftp://127.0.0.1/hook", allow_private=True)
