"""Background work of notify: the webhook dispatcher and the finaliser.

Dispatcher: claims due delivery rows with FOR UPDATE SKIP LOCKED (several instances share
the table), leases them by moving `next_attempt_at` past the send timeout and stamping a
claim token, sends concurrently (bounded globally and per partner, so one dead partner can
use at most its own slots), and records every attempt. A crash mid-send only lets the lease
expire: the row is due again and is re-sent (partners dedupe by event id). Nothing lives
only in memory.

Finaliser: every tick, finalises announcements whose notice has ended (handlers.finalize_due).

Both survive database outages (log, back off, continue) and stop promptly on `stop()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import domain
from services.notify.handlers import finalize_due
from shared.auth import webhook_secret_for
from shared.metrics import WEBHOOK_ATTEMPTS
from shared.settings import Settings
from shared.ssrf import UnsafeCallback, check_callback_url

log = logging.getLogger(__name__)

USER_AGENT = "Grantline-Webhooks/1"


@dataclass(frozen=True)
class Claimed:
    id: str
    event_id: str
    partner_id: str
    body: str
    attempts: int
    round_attempts: int
    token: uuid.UUID


@dataclass(frozen=True)
class SendResult:
    outcome: str  # delivered | failed | refused
    url: str | None
    status_code: int | None
    error: str | None
    started_at: datetime
    duration_ms: int


class Dispatcher:
    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        settings: Settings,
        *,
        timeout_s: float = 5.0,
        global_concurrency: int = 32,
        per_partner_concurrency: int = 4,
        poll_s: float = 0.1,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
    ) -> None:
        self._maker = maker
        self._settings = settings
        self._timeout_s = timeout_s
        self._global = global_concurrency
        self._per_partner = per_partner_concurrency
        self._poll_s = poll_s
        self._lease_s = timeout_s + 30.0
        self._client_factory = client_factory or self._default_client
        self._inflight: dict[str, int] = defaultdict(int)
        self._tasks: dict[asyncio.Task[None], Claimed] = {}
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self.sent = 0

    def _default_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout_s),
            follow_redirects=False,  # a redirect could point anywhere, past the SSRF check
            limits=httpx.Limits(max_connections=self._global, max_keepalive_connections=self._global),
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # never route partner callbacks through an environment proxy
        )

    def stop(self) -> None:
        self._stopping.set()
        self._slot_freed.set()

    async def run(self) -> None:
        backoff = 0.2
        async with self._client_factory() as client:
            try:
                while not self._stopping.is_set():
                    try:
                        claimed = await self._claim()
                        backoff = 0.2
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.warning("dispatcher could not claim deliveries; will retry", exc_info=True)
                        await self._sleep(backoff)
                        backoff = min(backoff * 2, 5.0)
                        continue
                    for row in claimed:
                        self._inflight[row.partner_id] += 1
                        task = asyncio.create_task(self._deliver(client, row), name=f"webhook-{row.id}")
                        self._tasks[task] = row
                        task.add_done_callback(self._forget)
                    if not claimed:
                        self._slot_freed.clear()
                        await self._sleep(self._poll_s)
            finally:
                await self._drain()

    async def _sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._slot_freed.wait(), timeout=seconds)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def _drain(self) -> None:
        """On stop: give in-flight sends a moment, then cancel them and hand their rows back
        (due now), so another instance, or this one after a restart, sends again at once.
        Should even that fail, the leases simply expire."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(set(self._tasks), timeout=1.0)
        unfinished = [self._tasks[t] for t in pending if t in self._tasks]
        for task in pending:
            task.cancel()
        for task in pending:
            with suppress(BaseException):
                await task
        if unfinished:
            try:
                async with asyncio.timeout(2.0), self._maker() as session, session.begin():
                    await session.execute(
                        text(
                            "UPDATE deliveries SET claim_token = NULL, next_attempt_at = now(), updated_at = now() "
                            "WHERE id = ANY(CAST(:ids AS text[])) AND claim_token = ANY(CAST(:tokens AS uuid[]))"
                        ),
                        {"ids": [r.id for r in unfinished], "tokens": list({str(r.token) for r in unfinished})},
                    )
            except Exception:
                log.warning("could not hand back %d in-flight deliveries; their leases will expire",
                            len(unfinished), exc_info=True)

    def _busy_partners(self) -> list[str]:
        return [p for p, n in self._inflight.items() if n >= self._per_partner]

    async def _claim(self) -> list[Claimed]:
        free = self._global - sum(self._inflight.values())
        if free <= 0:
            return []
        token = uuid.uuid4()
        async with self._maker() as session, session.begin():
            candidates = (
                await session.execute(
                    text(
                        "SELECT id, partner_id FROM deliveries "
                        "WHERE status = 'pending' AND next_attempt_at <= now() "
                        "AND NOT (partner_id = ANY(CAST(:busy AS text[]))) "
                        "ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED"
                    ),
                    {"busy": self._busy_partners(), "n": max(free * 4, 16)},
                )
            ).all()
            chosen: list[str] = []
            taken: dict[str, int] = defaultdict(int)
            for row in candidates:
                if len(chosen) >= free:
                    break
                if self._inflight.get(row.partner_id, 0) + taken[row.partner_id] >= self._per_partner:
                    continue
                taken[row.partner_id] += 1
                chosen.append(row.id)
            if not chosen:
                return []
            rows = (
                await session.execute(
                    text(
                        "UPDATE deliveries SET claim_token = :t, updated_at = now(), "
                        "next_attempt_at = now() + make_interval(secs => :lease) "
                        "WHERE id = ANY(CAST(:ids AS text[])) "
                        "RETURNING id, event_id, partner_id, body, attempts, round_attempts"
                    ),
                    {"t": token, "lease": self._lease_s, "ids": chosen},
                )
            ).all()
        return [
            Claimed(r.id, str(r.event_id), r.partner_id, r.body, r.attempts, r.round_attempts, token)
            for r in rows
        ]

    async def _deliver(self, client: httpx.AsyncClient, row: Claimed) -> None:
        try:
            result = await self._send(client, row)
            await self._record(row, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease expires and the delivery is tried again; nothing is lost.
            log.warning("webhook delivery %s could not be recorded", row.id, exc_info=True)
        finally:
            self._inflight[row.partner_id] -= 1
            if self._inflight[row.partner_id] <= 0:
                del self._inflight[row.partner_id]
            self._slot_freed.set()

    async def _callback_url(self, partner_id: str) -> str | None:
        async with self._maker() as session:
            url = await session.scalar(text("SELECT callback_url FROM partners WHERE id = :p"), {"p": partner_id})
        return None if url is None else str(url)

    async def _send(self, client: httpx.AsyncClient, row: Claimed) -> SendResult:
        started_at = datetime.now(UTC)
        t0 = time.monotonic()

        def result(outcome: str, url: str | None, status: int | None, error: str | None) -> SendResult:
            return SendResult(outcome, url, status, error, started_at, int((time.monotonic() - t0) * 1000))

        url = await self._callback_url(row.partner_id)
        if url is None:
            return result("failed", None, None, f"partner {row.partner_id} is not in the directory (yet)")
        try:
            await check_callback_url(url, allow_private=self._settings.allow_private_callbacks)
        except UnsafeCallback as exc:
            return result("refused", url, None, f"refused by the SSRF check: callback URL {exc}")
        body = row.body.encode()
        timestamp = int(time.time())
        secret = webhook_secret_for(row.partner_id, self._settings.webhook_signing_key)
        headers = {
            "Content-Type": "application/json",
            domain.EVENT_ID_HEADER: row.event_id,
            domain.SIGNATURE_HEADER: domain.signature_header(secret, timestamp, body),
        }
        try:
            async with asyncio.timeout(self._timeout_s):
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    snippet = b""
                    if not domain.is_success(status):
                        async for chunk in response.aiter_bytes():
                            snippet += chunk
                            if len(snippet) >= 300:
                                break
        except TimeoutError:
            return result("failed", url, None, f"timed out after {self._timeout_s:g} s")
        except httpx.HTTPError as exc:
            return result("failed", url, None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
        except OSError as exc:
            return result("failed", url, None, f"{type(exc).__name__}: {exc}"[:500])
        if domain.is_success(status):
            return result("delivered", url, status, None)
        detail = snippet[:300].decode("utf-8", "replace").replace("\x00", "")
        return result("failed", url, status, f"HTTP {status}" + (f": {detail}" if detail else ""))

    async def _record(self, row: Claimed, res: SendResult) -> None:
        attempt = row.attempts + 1
        decision = domain.after_attempt(
            ok=res.outcome == "delivered",
            round_attempts=row.round_attempts + 1,
            max_attempts=self._settings.webhook_max_attempts,
            first_delay=self._settings.webhook_backoff,
        )
        backoff = 0.2
        for tries in range(5):
            try:
                async with self._maker() as session, session.begin():
                    updated = await session.scalar(
                        text(
                            "UPDATE deliveries SET attempts = attempts + 1, round_attempts = round_attempts + 1, "
                            "status = :st, claim_token = NULL, last_status_code = :code, last_error = :err, "
                            "updated_at = now(), "
                            "next_attempt_at = CASE WHEN :st = 'pending' "
                            "  THEN now() + make_interval(secs => :retry) ELSE next_attempt_at END, "
                            "delivered_at = CASE WHEN :st = 'delivered' THEN now() ELSE delivered_at END, "
                            "parked_at = CASE WHEN :st = 'parked' THEN now() ELSE parked_at END "
                            "WHERE id = :id AND claim_token = :t RETURNING attempts"
                        ),
                        {
                            "st": decision.status,
                            "code": res.status_code,
                            "err": res.error,
                            "retry": decision.retry_in or 0.0,
                            "id": row.id,
                            "t": row.token,
                        },
                    )
                    if updated is None:
                        log.warning("delivery %s was re-claimed before its outcome was recorded", row.id)
                        return
                    await session.execute(
                        text(
                            "INSERT INTO delivery_attempts (delivery_id, attempt, url, started_at, duration_ms, "
                            "outcome, status_code, error) VALUES (:d, :n, :u, :s, :ms, :o, :c, :e) "
                            "ON CONFLICT (delivery_id, attempt) DO NOTHING"
                        ),
                        {
                            "d": row.id,
                            "n": attempt,
                            "u": res.url,
                            "s": res.started_at,
                            "ms": res.duration_ms,
                            "o": res.outcome,
                            "c": res.status_code,
                            "e": res.error,
                        },
                    )
                WEBHOOK_ATTEMPTS.labels(res.outcome).inc()  # the outcome just recorded in delivery_attempts
                if decision.status == "delivered":
                    self.sent += 1
                if decision.status == "parked":
                    log.warning("webhook delivery %s parked after %d attempts", row.id, attempt)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if tries == 4:
                    raise
                log.warning("recording delivery %s failed; retrying", row.id, exc_info=True)
                await asyncio.sleep(backoff)
                backoff *= 2


class Finaliser:
    def __init__(
        self,
        maker: async_sessionmaker[AsyncSession],
        *,
        poll_s: float = 0.25,
        on_commit: Callable[[], None] = lambda: None,
    ) -> None:
        self._maker = maker
        self._poll_s = poll_s
        self._on_commit = on_commit
        self._stopping = asyncio.Event()
        self.finalized = 0

    def stop(self) -> None:
        self._stopping.set()

    async def tick(self) -> int:
        async with self._maker() as session, session.begin():
            events = await finalize_due(session)
        if events:
            self.finalized += len(events)
            self._on_commit()
        return len(events)

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping.is_set():
            try:
                count = await self.tick()
                backoff = 0.2
                if count:
                    continue
                wait = self._poll_s
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("finaliser failed; will retry", exc_info=True)
                wait = backoff
                backoff = min(backoff * 2, 5.0)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=wait)

