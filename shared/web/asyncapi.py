"""GET /asyncapi.json: the service's AsyncAPI 3.0.0 document (shared.contracts.asyncapi), public
like /openapi.json. Built on the first request and kept: it depends only on the code."""

from __future__ import annotations

from functools import cache

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from shared.contracts.asyncapi import SERVICES, asyncapi_document


@cache
def _document_bytes(service: str) -> bytes:
    return orjson.dumps(asyncapi_document(service))


def asyncapi_router(service: str) -> APIRouter:
    """The route serving `service`'s document (none for an app that is not one of the services)."""
    router = APIRouter()
    if service not in SERVICES:
        return router

    @router.get("/asyncapi.json", include_in_schema=False)
    async def asyncapi() -> Response:
        return Response(_document_bytes(service), media_type="application/json")

    return router
