"""The tokens every test stack is configured with (in process or as processes), and the
headers that carry them."""

from __future__ import annotations

from typing import Any

OPERATOR_TOKEN = "operator-token-for-tests-0123456789"
AUDITOR_TOKEN = "auditor-token-for-tests-0123456789"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


OP = bearer(OPERATOR_TOKEN)
AUD = bearer(AUDITOR_TOKEN)


def partner_headers(partner: dict[str, Any], key: str | None = None) -> dict[str, str]:
    """A partner's bearer header (its answer from POST /v1/partners), with an Idempotency-Key when given."""
    headers = bearer(partner["api_key"])
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers
