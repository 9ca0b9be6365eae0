"""The exception hierarchy every layer raises: each class carries its HTTP status and RFC 9457
problem type; `shared.web.problems` renders them, so this module knows nothing of the web."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_TYPE_BASE = "https://grantline.example/problems/"


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class Problem(Exception):
    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self, detail: str, *, errors: list[FieldProblem] | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": _TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            out["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return out


class MalformedJson(Problem):
    status, slug, title = 400, "malformed-json", "Malformed JSON"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str = "a valid bearer token is required") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Payload too large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class ValidationFailed(Problem):
    status, slug, title = 422, "validation-failed", "Validation failed"


class TooManyRequests(Problem):
    status, slug, title = 429, "rate-limited", "Too many requests"


class Unavailable(Problem):
    status, slug, title = 503, "unavailable", "Service unavailable"
