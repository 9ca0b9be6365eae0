"""The hardened edges every service shares (shared.web.edges, in process): a route's caller is
authenticated before one byte of its body is read; a body is counted while it is read, chunked
or not, and refused at the limit; bodies are taken only as the exact media type; amounts are
matched in full; every answer carries the security headers, and answers to a credential are
never stored; a partner key on a staff-only ledger route is 403, not 401. (The 200 MB body
against a uvicorn process, and its memory: tests/e2e/test_edges_process.py.)"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import orjson
import pytest

from services.intake.app import create_app as intake_app
from services.ledger.app import create_app as ledger_app
from services.notify.app import create_app as notify_app
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from tests.support.apps import running, running_services
from tests.support.auth import OP, bearer
from tests.support.edges import CountingBody
from tests.support.ledger import known_staff
from tests.support.policy import publish_sample_calls
from tests.support.waiting import eventually
from tools.bank_simulator import Initiation, Transfer, camt054_for
from tools.samples import make_body

pytestmark = pytest.mark.integration

CALLBACK = "https://93.184.216.34/hook"
MB = 1024 * 1024


@pytest.fixture(scope="module")
async def intake(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(intake_app(settings)) as client:
        await publish_sample_calls(settings, client)
        yield client


@pytest.fixture(scope="module")
async def partner(intake: httpx.AsyncClient) -> dict[str, str]:
    r = await intake.post("/v1/partners", json={"name": "Edges", "callback_url": CALLBACK}, headers=OP)
    assert r.status_code == 201, r.text
    return bearer(r.json()["api_key"])


def assert_problem(r: httpx.Response, status: int) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    assert r.json()["status"] == status


# --- authentication before the body ---------------------------------------------------------


@pytest.mark.parametrize(("path", "credential", "status"), [
    ("/v1/partners", {}, 401),
    ("/v1/partners", {"Authorization": "Bearer glk_not-a-key"}, 401),
    ("/v1/staff", {}, 401),
    ("/v1/applications", {}, 401),
])
async def test_no_valid_credential_is_refused_before_the_body_is_read(
    intake: httpx.AsyncClient, path: str, credential: dict[str, str], status: int
) -> None:
    body = CountingBody(total=10 * MB)
    r = await intake.post(path, content=body.chunks(), headers={**credential, "Content-Type": "application/json",
                                                          "Idempotency-Key": str(uuid.uuid4())})
    assert_problem(r, status)
    assert r.headers["www-authenticate"] == "Bearer"
    assert body.sent == 0


async def test_a_credential_without_the_role_is_403_before_the_body_is_read(
    intake: httpx.AsyncClient, partner: dict[str, str]
) -> None:
    body = CountingBody(total=10 * MB)
    r = await intake.post("/v1/partners", content=body.chunks(), headers={**partner, "Content-Type": "application/json"})
    assert_problem(r, 403)
    assert body.sent == 0


async def test_a_body_in_the_wrong_media_type_is_415_before_it_is_read(intake: httpx.AsyncClient) -> None:
    body = CountingBody(total=10 * MB)
    r = await intake.post("/v1/partners", content=body.chunks(), headers={**OP, "Content-Type": "text/plain; x=json"})
    assert_problem(r, 415)
    assert body.sent == 0


# --- the body limit, while reading ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/partners", "/v1/applications"])
async def test_a_chunked_body_past_the_limit_is_413_after_at_most_the_limit(
    intake: httpx.AsyncClient, settings: Settings, partner: dict[str, str], path: str
) -> None:
    credential = OP if path == "/v1/partners" else partner
    body = CountingBody(total=200 * MB, chunk=16 * 1024)
    r = await intake.post(path, content=body.chunks(), headers={**credential, "Content-Type": "application/json",
                                                          "Idempotency-Key": str(uuid.uuid4())})
    assert_problem(r, 413)
    assert str(settings.body_max_bytes) in r.json()["detail"]
    assert r.headers["connection"] == "close"
    assert body.sent <= settings.body_max_bytes + body.chunk


async def test_public_posts_are_bounded_too(settings: Settings) -> None:
    async with running(notify_app(settings)) as notify:
        for path, content_type in [("/v1/announcements/ann_x/objections", "application/json"),
                                   ("/announcements/ann_x/objections", "application/x-www-form-urlencoded")]:
            body = CountingBody(total=200 * MB, chunk=16 * 1024)
            r = await notify.post(path, content=body.chunks(), headers={"Content-Type": content_type})
            assert r.status_code == 413, (path, r.text)
            assert body.sent <= settings.body_max_bytes + body.chunk
    async with running(ledger_app(settings)) as ledger:
        body = CountingBody(total=200 * MB, chunk=16 * 1024)
        r = await ledger.post("/dashboard/login", content=body.chunks(),
                              headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert_problem(r, 413)
        assert body.sent <= settings.body_max_bytes + body.chunk


async def test_a_declared_length_past_the_limit_is_413_unread(intake: httpx.AsyncClient, settings: Settings) -> None:
    r = await intake.post("/v1/partners", content=b"x" * (settings.body_max_bytes + 1),
                          headers={**OP, "Content-Type": "application/json"})
    assert_problem(r, 413)
    assert r.headers["connection"] == "close"


# --- exact media types -------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "text/plain; x=json", "application/jsonx", "application/json-patch+json", "text/json", "application/json; x=1",
    "application/json; charset=latin-1", "application/json, text/plain", "application/xml", "json",
])
async def test_json_routes_take_only_application_json(
    intake: httpx.AsyncClient, partner: dict[str, str], content_type: str
) -> None:
    raw = orjson.dumps({"name": "ct", "callback_url": CALLBACK})
    assert_problem(await intake.post("/v1/partners", content=raw, headers={**OP, "Content-Type": content_type}), 415)
    raw = orjson.dumps(make_body("GT-EQUITY"))
    r = await intake.post("/v1/applications", content=raw,
                          headers={**partner, "Content-Type": content_type, "Idempotency-Key": str(uuid.uuid4())})
    assert_problem(r, 415)


async def test_a_form_without_a_content_type_is_415(settings: Settings) -> None:
    async with running(ledger_app(settings)) as ledger:
        assert_problem(await ledger.post("/dashboard/login", content=b"token=x"), 415)


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", "application/json; charset=utf-8",
                                          'application/json; charset="UTF-8"'])
async def test_application_json_with_a_utf8_charset_is_taken(intake: httpx.AsyncClient, content_type: str) -> None:
    raw = orjson.dumps({"name": "ct", "callback_url": CALLBACK})
    r = await intake.post("/v1/partners", content=raw, headers={**OP, "Content-Type": content_type})
    assert r.status_code == 201, r.text


async def test_a_staff_sign_in_takes_only_a_form(settings: Settings) -> None:
    async with running(ledger_app(settings)) as ledger:
        r = await ledger.post("/dashboard/login", content=b'{"token": "x"}', headers={"Content-Type": "application/json"})
        assert_problem(r, 415)
        r = await ledger.post("/dashboard/login", content=b"token=nope",
                              headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
        assert r.status_code == 401  # a form, read: the token is not accepted


# --- amounts in full -------------------------------------------------------------------------


async def test_an_amount_with_a_trailing_newline_is_422_naming_the_field(
    intake: httpx.AsyncClient, partner: dict[str, str]
) -> None:
    body = make_body("BIO-INNOV-DRUG", requested_amount="100.00\n")
    r = await intake.post("/v1/applications", json=body, headers={**partner, "Idempotency-Key": str(uuid.uuid4())})
    assert_problem(r, 422)
    assert [e["field"] for e in r.json()["errors"]] == ["requested_amount"]


# --- security headers ------------------------------------------------------------------------


def assert_security_headers(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] in ("no-referrer", "same-origin", "strict-origin-when-cross-origin")
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


async def test_a_public_api_answer_carries_the_headers_and_may_be_cached(intake: httpx.AsyncClient) -> None:
    r = await intake.get("/v1/programs")
    assert r.status_code == 200
    assert_security_headers(r)
    assert r.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert "cache-control" not in r.headers


async def test_answers_to_a_credential_are_never_stored(intake: httpx.AsyncClient, partner: dict[str, str]) -> None:
    for r in [await intake.get("/v1/applications", headers=partner),
              await intake.get("/v1/applications", headers={"Authorization": "Bearer wrong"}),  # a problem
              await intake.get("/v1/programs", headers=OP),
              await intake.get("/v1/applications/nope", headers=OP)]:
        assert r.status_code in (200, 401, 404), r.text
        assert_security_headers(r)
        assert r.headers["cache-control"] == "no-store", r.request.url


async def test_pages_carry_a_policy_that_refuses_framing(settings: Settings) -> None:
    async with running(notify_app(settings)) as notify:
        page = await notify.get("/announcements")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert_security_headers(page)
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "cache-control" not in page.headers
        assert_security_headers(await notify.get("/staff/objections"))
    async with running(ledger_app(settings)) as ledger:
        login = await ledger.get("/dashboard")
        assert login.headers["content-type"].startswith("text/html")
        assert_security_headers(login)
        assert login.headers["cache-control"] == "no-store"
        docs = await ledger.get("/docs")
        assert docs.headers["content-security-policy"] == "frame-ancestors 'none'"
        assert docs.headers["x-frame-options"] == "DENY"


# --- a partner key on the ledger ---------------------------------------------------------------


async def test_a_partner_key_on_the_ledgers_staff_routes_is_403(settings: Settings) -> None:
    async with running_services(settings, ["intake", "ledger"]) as clients:
        r = await clients["intake"].post("/v1/partners", json={"name": "Not staff", "callback_url": CALLBACK},
                                         headers=OP)
        assert r.status_code == 201, r.text
        key = bearer(r.json()["api_key"])

        async def ledger_knows_the_key() -> bool:
            return (await clients["ledger"].get("/v1/balances", headers=key)).status_code != 401

        await eventually(ledger_knows_the_key, "the ledger's directory has the partner")
        for path in ("/v1/balances", "/v1/journal", "/v1/awards"):
            r = await clients["ledger"].get(path, headers=key)
            assert_problem(r, 403)
            assert "www-authenticate" not in r.headers
        assert_problem(await clients["ledger"].get("/v1/journal", headers=bearer("glk_no-such-key")), 401)


# --- a route's own body limit (shared.web.edges.body_limit): the bank's documents ------------------


@pytest.fixture(scope="module")
async def ledger_officer(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    engine = make_engine(settings.database_url, "ledger")
    try:
        officer = await known_staff(make_sessionmaker(engine), "钱七", "payment_officer")
        async with running(ledger_app(settings)) as ledger:
            yield ledger, {**officer, "Content-Type": "application/xml"}
    finally:
        await engine.dispose()


def _statement_padded_to(size: int) -> bytes:
    """A valid camt.054 (one entry for no order) followed by whitespace, `size` bytes in all."""
    initiation = Initiation("bat_edges", "bat_edges", "0", (Transfer("pay_edges_nobody", Decimal("1.00"), "CNY"),))
    camt = camt054_for(initiation, msg_id=f"EDGES-{uuid.uuid4().hex[:8]}")
    return camt + b"\n" * (size - len(camt))


async def test_a_9_mib_statement_passes_the_bank_routes_own_limit(
    ledger_officer: tuple[httpx.AsyncClient, dict[str, str]], settings: Settings
) -> None:
    ledger, headers = ledger_officer
    body = _statement_padded_to(9 * MB)
    assert len(body) > settings.body_max_bytes
    r = await ledger.post("/v1/bank/statements", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["outcomes"] == {"unmatched": 1}


@pytest.mark.parametrize("path", ["/v1/bank/statements", "/v1/bank/status-reports"])
async def test_an_11_mib_bank_document_is_413_unread(
    ledger_officer: tuple[httpx.AsyncClient, dict[str, str]], path: str
) -> None:
    ledger, headers = ledger_officer
    r = await ledger.post(path, content=_statement_padded_to(11 * MB), headers=headers)
    assert_problem(r, 413)
    assert str(10 * MB) in r.json()["detail"]
    assert r.headers["connection"] == "close"
    chunked = CountingBody(total=200 * MB, chunk=64 * 1024)
    r = await ledger.post(path, content=chunked.chunks(), headers=headers)
    assert_problem(r, 413)
    assert 10 * MB < chunked.sent <= 10 * MB + chunked.chunk


async def test_the_ledgers_other_routes_keep_the_service_limit(
    ledger_officer: tuple[httpx.AsyncClient, dict[str, str]], settings: Settings
) -> None:
    ledger, headers = ledger_officer
    declared = await ledger.post("/v1/payment-batches", content=b" " * (settings.body_max_bytes + 1),
                                 headers={**headers, "Content-Type": "application/json"})
    assert_problem(declared, 413)
    assert str(settings.body_max_bytes) in declared.json()["detail"]
    chunked = CountingBody(total=10 * MB, chunk=16 * 1024)
    r = await ledger.post("/v1/payment-batches", content=chunked.chunks(),
                          headers={**headers, "Content-Type": "application/json"})
    assert_problem(r, 413)
    assert chunked.sent <= settings.body_max_bytes + chunked.chunk
