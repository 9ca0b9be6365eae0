"""The intake baseline: a FastAPI hello-world POST endpoint (parses the JSON body, answers 202).

Served by the same uvicorn settings as intake (one worker, ``--no-access-log``, log level warning).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

app = FastAPI(title="hello")


@app.post("/v1/applications", status_code=202)
async def hello(body: dict[str, Any]) -> JSONResponse:
    app_id = "app_" + uuid.uuid4().hex
    return JSONResponse(
        {"id": app_id, "status": "received", "links": {"self": f"/v1/applications/{app_id}"}}, status_code=202
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
