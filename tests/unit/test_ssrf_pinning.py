"""SSRF beyond one check (shared.web.ssrf): IPv6 forms of private IPv4 addresses are judged by
the address they reach, and a delivery connects to the very address it checked (DNS rebinding:
a name that answers a public address to the check and loopback to the connect never reaches
loopback), with the hostname kept for Host, SNI and certificate checks. Production settings
refuse GRANTLINE_ALLOW_PRIVATE_CALLBACKS."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from shared.config.settings import Settings
from shared.web.ssrf import UnsafeCallback, check_callback_url, pinned_transport
from tests.support.edges import RecordingBackend, ScriptedResolver

PUBLIC = "93.184.216.34"

# --- IPv6 forms that reach IPv4 --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://[2002:7f00:1::]/hook", "loopback (the 6to4 form of 127.0.0.1)"),
        ("https://[2002:a00:1::1]/hook", "private (the 6to4 form of 10.0.0.1)"),
        ("https://[2002:a9fe:a9fe::]/hook", "link-local (cloud metadata lives here) (the 6to4 form of 169.254.169.254)"),
        ("https://[64:ff9b::7f00:1]/hook", "loopback (the NAT64 form of 127.0.0.1)"),
        ("https://[64:ff9b::a9fe:a9fe]/hook", "link-local"),
        ("https://[64:ff9b:1::a00:1]/hook", "local-use NAT64"),
        ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/hook", "Teredo"),
        ("https://[2001:0:5db8:d822::1]/hook", "Teredo"),
        ("https://[::7f00:1]/hook", "IPv4-compatible"),
        ("https://[::a9fe:a9fe]/hook", "IPv4-compatible"),
        ("https://[::ffff:0:7f00:1]/hook", "IPv4-translated"),
        ("https://[::ffff:10.0.0.1]/hook", "private"),
        ("https://[::ffff:7f00:1]/hook", "loopback"),
    ],
)
async def test_ipv6_forms_of_inside_addresses_are_refused(url: str, why: str) -> None:
    with pytest.raises(UnsafeCallback) as caught:
        await check_callback_url(url, allow_private=False)
    assert why in str(caught.value)


@pytest.mark.parametrize("url", [
    "https://[2002:5db8:d822::1]/hook",  # 6to4 of 93.184.216.34
    "https://[64:ff9b::5db8:d822]/hook",  # NAT64 (DNS64) of 93.184.216.34
    "https://[::ffff:93.184.216.34]/hook",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
])
async def test_ipv6_forms_of_public_addresses_pass(url: str) -> None:
    await check_callback_url(url, allow_private=False)


async def test_a_name_answering_one_public_and_one_loopback_address_is_refused_whole() -> None:
    dns = ScriptedResolver([[PUBLIC, "127.0.0.1"]])
    with pytest.raises(UnsafeCallback, match="loopback"):
        await check_callback_url("https://mixed.example/hook", allow_private=False, resolver=dns)


async def test_a_name_resolving_to_a_6to4_loopback_is_refused() -> None:
    dns = ScriptedResolver([["2002:7f00:1::"]])
    with pytest.raises(UnsafeCallback, match="6to4"):
        await check_callback_url("https://sixtofour.example/hook", allow_private=False, resolver=dns)


# --- the connect goes to the address checked --------------------------------------------------


async def test_dns_rebinding_never_connects_to_loopback() -> None:
    """Public to the check, loopback ever after: the check passes (as intake's did when the
    partner registered), the delivery's connect resolves once more, sees loopback and is
    refused before any connection is opened."""
    dns = ScriptedResolver([[PUBLIC], ["127.0.0.1"]])
    await check_callback_url("https://rebind.example/hook", allow_private=False, resolver=dns)
    network = RecordingBackend()
    async with httpx.AsyncClient(transport=pinned_transport(allow_private=False, resolver=dns, inner=network)) as c:
        with pytest.raises(UnsafeCallback, match="loopback"):
            await c.post("https://rebind.example/hook", content=b"{}")
    assert dns.asked == ["rebind.example", "rebind.example"]
    assert network.connects == []
    assert network.sent == b""


async def test_the_connection_goes_to_the_checked_address_with_the_hostname_for_host_and_tls() -> None:
    """The name is resolved once per connection: the connect is to the address that resolution
    gave and that was checked (a later answer, loopback, is never asked for while the connection
    lives), and the hostname stays in Host, SNI and certificate verification."""
    dns = ScriptedResolver([[PUBLIC], ["127.0.0.1"]])
    network = RecordingBackend()
    async with httpx.AsyncClient(transport=pinned_transport(allow_private=False, resolver=dns, inner=network)) as c:
        for _ in range(3):
            r = await c.post("https://hook.example:8443/deliver", content=b"{}")
            assert r.status_code == 204
    assert network.connects == [(PUBLIC, 8443)]
    assert dns.asked == ["hook.example"]
    assert network.tls_server_hostnames == ["hook.example"]
    assert network.tls_verifies == [True]
    assert b"\r\nHost: hook.example:8443\r\n" in network.sent


async def test_an_unresolvable_name_is_refused_without_a_connect() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    network = RecordingBackend()
    async with httpx.AsyncClient(transport=pinned_transport(allow_private=False, resolver=nxdomain,
                                                            inner=network)) as c:
        with pytest.raises(UnsafeCallback, match="does not resolve"):
            await c.post("https://nowhere.example/hook", content=b"{}")
    assert network.connects == []


async def test_allow_private_connects_where_asked() -> None:
    dns = ScriptedResolver([["127.0.0.1"]])
    network = RecordingBackend()
    async with httpx.AsyncClient(transport=pinned_transport(allow_private=True, resolver=dns, inner=network)) as c:
        assert (await c.post("http://127.0.0.1:9000/hook", content=b"{}")).status_code == 204
    assert network.connects == [("127.0.0.1", 9000)]


# --- production refuses private callbacks -----------------------------------------------------


def _production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "database_url": "postgresql+asyncpg://grantline@db.internal/grantline",
        "operator_token": "op-" + "x" * 40,
        "auditor_token": "au-" + "y" * 40,
        "webhook_signing_key": "sk-" + "z" * 40,
        "transparency_key": "tk-" + "k" * 40,
        "payer_name": "上海市财政局",
        "payer_account": "31001500000050000001",
        "payer_bank_code": "105290061012",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def test_production_refuses_private_callbacks() -> None:
    _production()  # the same settings without the flag are accepted
    with pytest.raises(ValidationError, match="GRANTLINE_ALLOW_PRIVATE_CALLBACKS"):
        _production(allow_private_callbacks=True)


def test_production_refuses_private_callbacks_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRANTLINE_ALLOW_PRIVATE_CALLBACKS", "1")
    with pytest.raises(ValidationError, match="GRANTLINE_ALLOW_PRIVATE_CALLBACKS"):
        _production()
