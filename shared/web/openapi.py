"""OpenAPI fragments shared by the services that take an application body."""

from __future__ import annotations

from typing import Any

APPLICATION_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["program", "year", "applicant", "subject", "facts"],
                    "properties": {
                        "program": {"type": "string", "example": "GT-EQUITY"},
                        "year": {"type": "integer", "example": 2024},
                        "applicant": {
                            "type": "object",
                            "required": ["id", "name", "kind", "registered_in_shanghai"],
                            "properties": {
                                "id": {"type": "string", "minLength": 18, "maxLength": 18},
                                "name": {"type": "string"},
                                "kind": {"type": "string", "enum": ["enterprise", "medical_institution"]},
                                "registered_in_shanghai": {"type": "boolean"},
                            },
                        },
                        "subject": {"type": "string"},
                        "requested_amount": {"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"},
                        "facts": {"type": "object", "description": "the program's facts: GET /v1/programs"},
                    },
                }
            }
        },
    }
}


# Every error is RFC 9457 problem+json (shared/errors.py); the operations declare which ones they
# answer so that clients (and schema checks) know the shape of each.
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}

_PROBLEM_DESCRIPTIONS = {
    400: "malformed JSON",
    401: "no or unknown bearer token",
    403: "the token's role may not do this",
    404: "not there, or not visible to the caller",
    409: "conflicts with the current state",
    413: "request body over the size limit",
    415: "the body is not JSON",
    422: "invalid fields, each named in `errors`",
    429: "too many requests for this API key",
    503: "a dependency (database, broker) is unavailable; retry later",
}

# What any authenticated JSON operation may answer besides its own errors.
AUTHENTICATED = (401, 403, 413, 422, 429, 503)
PUBLIC = (413, 422, 503)


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route or router: each status as problem+json."""
    return {
        status: {
            "description": _PROBLEM_DESCRIPTIONS.get(status, "error"),
            "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
        }
        for status in sorted(set(statuses))
    }


# Text that reaches PostgreSQL must not hold NUL (text and jsonb refuse it): query and path
# parameters carry this pattern, so a NUL is a 422 naming the parameter.
NO_NUL = r"^[^\x00]*$"
