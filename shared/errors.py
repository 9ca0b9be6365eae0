"""RFC 9457 problem+json: a small exception hierarchy, rendered once for every service."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
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


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, media_type=PROBLEM, headers=problem.headers
    )


def _loc_to_field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or ".".join(str(p) for p in loc)


def add_exception_handlers(app: FastAPI) -> None:
    @app.exception_handler(Problem)
    async def _problem(_: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return problem_response(MalformedJson("the request body is not valid JSON"))
        fields = [FieldProblem(_loc_to_field(tuple(e.get("loc", ()))), str(e.get("msg"))) for e in errors]
        return problem_response(ValidationFailed("some fields are invalid", errors=fields))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        problem = Problem(str(exc.detail))
        problem.status = exc.status_code
        problem.title = str(exc.detail)
        problem.slug = "http-" + str(exc.status_code)
        return problem_response(problem)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        from shared.consumer import is_transient

        if is_transient(exc):
            log.warning("dependency unavailable", exc_info=True)
            return problem_response(Unavailable("a dependency is unavailable; retry later"))
        log.exception("unhandled error")
        problem = Problem("an unexpected error occurred")
        problem.status, problem.slug, problem.title = 500, "internal", "Internal error"
        return problem_response(problem)
