"""A partner's day, against the four services running as processes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.auth import OP
from tests.support.processes import SERVICES, Stack
from tests.support.waiting import eventually_sync
from tools.samples import make_body

pytestmark = pytest.mark.e2e


def test_every_service_answers_healthz(stack: Stack) -> None:
    for name in SERVICES:
        r = httpx.get(stack.services[name].url + "/healthz", timeout=5)
        assert r.status_code == 200 and r.json()["status"] == "ok", name


def test_a_partner_posts_an_application_and_follows_it(stack: Stack) -> None:
    intake = stack.services["intake"].url
    partner = httpx.post(
        intake + "/v1/partners", json={"name": "E2E", "callback_url": "http://127.0.0.1:9/hook"}, headers=OP
    ).json()
    headers = {"Authorization": f"Bearer {partner['api_key']}", "Idempotency-Key": "e2e-1"}
    accepted = httpx.post(intake + "/v1/applications", json=make_body("GT-EQUITY"), headers=headers)
    assert accepted.status_code == 202, accepted.text
    url = intake + accepted.json()["links"]["self"]

    def assessed() -> dict[str, Any] | None:
        body = httpx.get(url, headers=headers).json()
        types = [e["type"] for e in body["timeline"]]
        return body if "application.assessed" in types else None

    body = eventually_sync(assessed, "the application assessed")
    assert body["timeline"][0]["type"] == "application.received"
    assert body["decision"]["entitlement"] == "1600000.00"
