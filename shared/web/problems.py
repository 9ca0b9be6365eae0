"""RFC 9457 problem+json: renders the kernel's exception hierarchy, once for every service."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.db.transient import is_transient
from shared.kernel.errors import FieldProblem, MalformedJson, Problem, Unavailable, ValidationFailed

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"


class EdgeRefusal(StarletteHTTPException):
    """A problem found as a request's body is first read (401, 403, 413, 415, 429: see
    shared.web.edges). It travels as Starlette's HTTPException because FastAPI turns anything
    else raised while it reads a body into a 400; it is rendered as its `problem`."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.status, problem.detail, headers=problem.headers or None)
        self.problem = problem


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
        if isinstance(exc, EdgeRefusal):
            return problem_response(exc.problem)
        problem = Problem(str(exc.detail))
        problem.status = exc.status_code
        problem.title = str(exc.detail)
        problem.slug = "http-" + str(exc.status_code)
        return problem_response(problem)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        if is_transient(exc):
            log.warning("dependency unavailable", exc_info=True)
            return problem_response(Unavailable("a dependency is unavailable; retry later"))
        log.exception("unhandled error")
        problem = Problem("an unexpected error occurred")
        problem.status, problem.slug, problem.title = 500, "internal", "Internal error"
        return problem_response(problem)
