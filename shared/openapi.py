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
