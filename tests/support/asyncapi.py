"""The official AsyncAPI 3.0.0 JSON Schema (vendored: tests/support/asyncapi_schema/README.md) as a
Draft 7 validator, and payload validation against a document's own message schemas."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

SCHEMA_PATH = Path(__file__).parent / "asyncapi_schema" / "3.0.0.json"


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")

# jsonschema checks neither of these for Draft 7 without optional packages: the events use both.
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        raise ValueError(f"{value!r}: not an RFC 3339 time")
    datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    return True


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    if isinstance(value, str):
        uuid.UUID(value)
    return True


@cache
def asyncapi_validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def asyncapi_errors(document: dict[str, Any]) -> list[str]:
    """Every way `document` breaks the AsyncAPI 3.0.0 schema (empty: valid), each with where."""
    # best_match goes down into a oneOf's branches, to the error that says what is wrong.
    return [_where(best_match([error])) for error in asyncapi_validator().iter_errors(document)]


def _where(error: ValidationError) -> str:
    return f"{'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"


def payload_errors(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> list[str]:
    """Every way `instance` breaks `schema`, a schema inside `document` whose `$ref`s point into the
    document (`#/components/schemas/…`); formats are checked too (uuid, date-time, date)."""
    rooted = {**schema, "components": document["components"]}
    validator = jsonschema.Draft7Validator(rooted, format_checker=FORMATS)
    return [_where(error) for error in validator.iter_errors(instance)]


def local_refs(node: Any) -> list[str]:
    """Every `$ref` in `node` (a document or part of it)."""
    found: list[str] = []
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            found.append(node["$ref"])
        for value in node.values():
            found += local_refs(value)
    elif isinstance(node, list):
        for value in node:
            found += local_refs(value)
    return found


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The node a local `#/…` reference names; KeyError when there is none."""
    assert ref.startswith("#/"), f"{ref}: not a local reference"
    node: Any = document
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node
