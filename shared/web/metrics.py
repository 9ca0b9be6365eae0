"""GET /metrics for every service: the observability registry, with the gauges that need the
service's own database and consumers refreshed at scrape time. (Requests are counted where
they come in: shared.web.app.RequestEdge.)"""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from shared.messaging.outbox import outbox_backlog
from shared.observability.metrics import CONSUMER_LAG, OUTBOX_BACKLOG, REGISTRY
from shared.web.context import ServiceContext


def instrument(app: FastAPI) -> None:
    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        ctx: ServiceContext = request.app.state.ctx
        await _refresh_gauges(ctx)
        return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


async def _refresh_gauges(ctx: ServiceContext) -> None:
    try:
        async with ctx.maker() as session:
            backlog = await outbox_backlog(session)
        OUTBOX_BACKLOG.labels(ctx.name).set(float(backlog))
    except Exception:
        OUTBOX_BACKLOG.labels(ctx.name).set(float("nan"))
    for loop in ctx.loops:
        CONSUMER_LAG.labels(ctx.name, loop.consumer_name).set(float(await loop.lag()))
