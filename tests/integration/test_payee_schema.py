"""The payee routes against their own OpenAPI, fuzzed as the partner that owns a real application
(tests/integration/test_schemathesis.py fuzzes every route, but as the operator, to whom PUT payee
is a 403): no 5xx, a declared status, a body that conforms, and never an account number in full
in an answer."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from services.intake.app import create_app
from shared.config.settings import Settings
from tests.support.apps import running
from tests.support.auth import partner_headers
from tests.support.intake import equity, new_partner
from tests.support.payee import payee
from tests.support.policy import publish_sample_calls

pytestmark = pytest.mark.integration

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]


def cases_for(schema: Any, method: str, path: str, examples: int = 60) -> list[Any]:
    operation = schema[path][method]
    cases: list[Any] = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        @hsettings(max_examples=examples, derandomize=True, deadline=None, database=None,
                   phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(operation.as_strategy(generation_mode=mode))
        def collect(case: Any) -> None:
            cases.append(case)

        collect()
    return cases


async def test_put_payee_conforms_to_its_schema_for_its_own_partner(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"partner_rate_per_second": 0.0}))
    async with running(app) as client:
        await publish_sample_calls(settings, client)
        partner = await new_partner(client, "PayeeFuzzer")
        submitted = await client.post("/v1/applications", json=equity("PAYEE-FUZZ", payee=payee()),
                                      headers=partner_headers(partner, "fuzz-1"))
        assert submitted.status_code == 202, submitted.text
        app_id = submitted.json()["id"]
        schema = schemathesis.openapi.from_dict(app.openapi())
        failures: list[str] = []
        statuses: set[int] = set()
        for case in cases_for(schema, "PUT", "/v1/applications/{application_id}/payee"):
            case.path_parameters = {"application_id": app_id}
            kwargs = case.as_transport_kwargs(base_url="http://test")
            headers = {**{str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()},
                       **partner_headers(partner)}
            content = json.dumps(kwargs["json"]).encode() if "json" in kwargs else kwargs.get("data")
            headers.setdefault("Content-Type", "application/json")
            response = await client.request(kwargs["method"], kwargs["url"], headers=headers, content=content)
            statuses.add(response.status_code)
            try:
                case.validate_response(response, checks=CHECKS)
            except FailureGroup as group:
                failures += [f"{content!r} -> {response.status_code} {response.text[:200]}: {f.title}"
                             for f in group.exceptions]
            sent = kwargs.get("json")
            number = sent.get("account_number") if isinstance(sent, dict) else None
            if isinstance(number, str) and len(number) > 4 and number in response.text:
                failures.append(f"{content!r} -> the account number in full: {response.text[:200]}")
        assert not failures, "\n".join(failures[:20])
        assert {200, 422} <= statuses, statuses
