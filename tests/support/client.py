"""A small partner/operator client for end-to-end tests, and random test identities."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from shared.kernel.uscc import ALPHABET, with_check_character
from tests.support.waiting import eventually_sync

FINAL = {"ineligible", "approved", "partially_approved", "rejected", "revoked"}
DECIDED = FINAL | {"pending_review"}  # held for a reviewer (核定) counts as decided by the ledger


def random_uscc(kind: str = "enterprise") -> str:
    """A valid code: 91 (enterprise) or 12 (public institution), Shanghai Pudong region, random body."""
    head = "91" if kind == "enterprise" else "12"
    body = "".join(random.choice(ALPHABET) for _ in range(9))
    return with_check_character(f"{head}310115{body}")


@dataclass
class Partner:
    base: str
    id: str
    api_key: str
    webhook_secret: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def post(self, body: dict[str, Any], key: str | None = None) -> httpx.Response:
        headers = {**self.headers, "Idempotency-Key": key or str(uuid.uuid4())}
        return httpx.post(f"{self.base}/v1/applications", json=body, headers=headers, timeout=30)

    def get(self, app_id: str) -> dict[str, Any]:
        r = httpx.get(f"{self.base}/v1/applications/{app_id}", headers=self.headers, timeout=30)
        r.raise_for_status()
        return r.json()  # type: ignore[no-any-return]

    def wait_final(self, app_id: str, timeout_s: float = 60) -> dict[str, Any]:
        return dict(eventually_sync(lambda: self.get(app_id), f"{app_id} final", timeout_s=timeout_s,
                                    every_s=0.1, until=lambda body: body["status"] in FINAL))

    def wait_decided(self, app_id: str, timeout_s: float = 60) -> dict[str, Any]:
        """The application once the ledger decided it: final, or held for review."""
        return dict(eventually_sync(lambda: self.get(app_id), f"{app_id} decided", timeout_s=timeout_s,
                                    every_s=0.1, until=lambda body: body["status"] in DECIDED))

    async def post_many(self, bodies: list[dict[str, Any]], concurrency: int = 16) -> list[str]:
        """POST concurrently, at most `concurrency` in flight; returns the application ids in order."""
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=self.base, headers=self.headers, timeout=60) as client:

            async def one(body: dict[str, Any]) -> str:
                async with gate:
                    r = await client.post(
                        "/v1/applications", json=body, headers={"Idempotency-Key": str(uuid.uuid4())}
                    )
                    r.raise_for_status()
                    return str(r.json()["id"])

            return list(await asyncio.gather(*(one(b) for b in bodies)))


def create_partner(intake_url: str, operator_token: str, callback_url: str, name: str = "Partner") -> Partner:
    r = httpx.post(
        f"{intake_url}/v1/partners",
        json={"name": name, "callback_url": callback_url},
        headers={"Authorization": f"Bearer {operator_token}"},
        timeout=30,
    )
    r.raise_for_status()
    body = r.json()
    return Partner(intake_url, body["id"], body["api_key"], body["webhook_secret"])
