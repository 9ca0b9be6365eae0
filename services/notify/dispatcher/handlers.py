"""What the dispatcher does: the worker that sends webhooks, and the operators' commands on
deliveries (list, show, re-drive).

The worker claims due delivery rows in batches with FOR UPDATE SKIP LOCKED (several instances
share the table), leases them by moving `next_attempt_at` past the time they may wait here plus
the send timeout and stamping a claim token, sends concurrently (bounded globally and per
partner, so one dead partner can use at most its own slots), and records every attempt; the
outcomes of many sends are recorded together in one statement. A crash mid-send only lets the
lease expire: the row is due again and is re-sent (partners dedupe by event id). Nothing lives
only in memory. It survives database outages (log, back off, continue) and stops promptly on
`stop()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify import domain as webhooks
from services.notify.dispatcher import domain
from services.notify.dispatcher.domain import Claimed, SendResult
from services.notify.dispatcher.repository import DispatcherRepository
from services.notify.dispatcher.schemas import DeliveryAttempt, DeliveryPage, DeliveryRedrive, DeliveryView
from services.notify.domain import Position
from shared.config.settings import Settings
from shared.kernel.cursors import next_page, page_after
from shared.kernel.errors import Conflict, NotFound
from shared.kernel.retry import Backoff
from shared.observability.metrics import WEBHOOK_ATTEMPTS
from shared.web.auth import webhook_secret_for
from shared.web.ssrf import Resolver, UnsafeCallback, check_url_shape, pinned_transport, system_resolver

log = logging.getLogger(__name__)

USER_AGENT = "Grantline-Webhooks/1"
# Outcomes not recorded after this many tries are left to their leases (they are sent again).
_RECORD_TRIES = 5


# A response read to its end leaves the connection reusable (keep-alive): one connect per partner
# instead of one per delivery. Partners' bodies are not needed; one this long is not read further.
_KEEPALIVE_READ = 64 * 1024


async def _read_some(response: httpx.Response, limit: int) -> bytes:
    """Up to `limit` bytes of the body (all of it, when shorter)."""
    got = b""
    async for chunk in response.aiter_bytes():
        got += chunk
        if len(got) >= limit:
            break
    return got


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
        depth: int = 4,
        record_batch_max: int = 500,
        record_linger_s: float = 0.01,
        client_factory: Callable[[], httpx.AsyncClient] | None = None,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._maker = maker
        self._settings = settings
        self._timeout_s = timeout_s
        self._per_partner = per_partner_concurrency
        self._poll_s = poll_s
        # Concurrency bounds requests in flight; `depth` rows per request slot are held (claimed,
        # waiting for a slot, or sent and waiting to be recorded), so claims and records come in
        # batches while the slots stay busy. The ratio of global to per-partner holdings is the
        # same as for requests: a dead partner can still take only its own share.
        self._global = global_concurrency
        self._global_hold = global_concurrency * depth
        self._partner_hold = per_partner_concurrency * depth
        # A held row may wait for `depth` sends of its partner before its own: the lease covers that.
        self._lease_s = timeout_s * depth + 30.0
        self._record_batch_max = record_batch_max
        self._record_linger_s = record_linger_s
        self._resolver = resolver
        self._client_factory = client_factory or self._default_client
        self._requests = asyncio.Semaphore(global_concurrency)
        self._partner_requests: dict[str, asyncio.Semaphore] = {}
        self._held: dict[str, int] = defaultdict(int)
        self._tasks: dict[asyncio.Task[None], Claimed] = {}
        self._results: asyncio.Queue[tuple[Claimed, SendResult]] = asyncio.Queue()
        self._stopping = asyncio.Event()
        self._slot_freed = asyncio.Event()
        self._released = 0  # rows released since the last claim
        self._claim_after = 1  # releases that make the next claim worth its round trip
        self.sent = 0

    def _default_client(self) -> httpx.AsyncClient:
        # The SSRF check is the transport's: it resolves each host once and connects only to the
        # addresses it checked (shared.web.ssrf), so DNS cannot answer the check and the connect
        # differently.
        transport = pinned_transport(
            allow_private=self._settings.allow_private_callbacks,
            resolver=self._resolver,
            limits=httpx.Limits(max_connections=self._global, max_keepalive_connections=self._global),
        )
        return httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(self._timeout_s),
            follow_redirects=False,  # a redirect could point anywhere, past the SSRF check
            headers={"User-Agent": USER_AGENT},
            trust_env=False,  # never route partner callbacks through an environment proxy
        )

    def stop(self) -> None:
        self._stopping.set()
        self._slot_freed.set()

    async def run(self) -> None:
        backoff = Backoff()
        async with self._client_factory() as client:
            recorder = asyncio.create_task(self._record_loop(), name="webhook-recorder")
            try:
                while not self._stopping.is_set():
                    self._slot_freed.clear()
                    self._released = 0
                    held = sum(self._held.values())
                    free = self._global_hold - held
                    try:
                        claimed = await self._claim(free) if free > 0 else []
                        backoff.reset()
                    except asyncio.CancelledError:
                        raise
                    except Exception:
                        log.warning("dispatcher could not claim deliveries; will retry", exc_info=True)
                        await self._sleep(backoff.next_delay())
                        continue
                    for row in claimed:
                        task = asyncio.create_task(self._deliver(client, row), name=f"webhook-{row.id}")
                        self._tasks[task] = row
                        task.add_done_callback(self._forget)
                    if len(claimed) < free:
                        # Nothing more is due (or partners are at their share): wait until a
                        # partner's worth of rows is done (claims in batches, not one row per
                        # freed slot), or poll for new rows.
                        self._claim_after = max(1, min(self._per_partner, held + len(claimed)))
                        await self._sleep(self._poll_s)
            finally:
                await self._drain(recorder)

    async def _sleep(self, seconds: float) -> None:
        with suppress(TimeoutError):
            await asyncio.wait_for(self._slot_freed.wait(), timeout=seconds)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    def _release(self, rows: Sequence[Claimed]) -> None:
        for row in rows:
            self._held[row.partner_id] -= 1
            if self._held[row.partner_id] <= 0:
                del self._held[row.partner_id]
                self._partner_requests.pop(row.partner_id, None)
        self._released += len(rows)
        if self._released >= self._claim_after or not self._held:
            self._slot_freed.set()

    async def _drain(self, recorder: asyncio.Task[None]) -> None:
        """On stop: give in-flight sends a moment, then cancel them and hand their rows back
        (due now), so another instance, or this one after a restart, sends again at once; then
        record the outcomes already known. Should even that fail, the leases simply expire."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=1.0)
            unfinished = [self._tasks[t] for t in pending if t in self._tasks]
            for task in pending:
                task.cancel()
            for task in pending:
                with suppress(BaseException):
                    await task
            if unfinished:
                await self._hand_back(unfinished)
        with suppress(TimeoutError):
            await asyncio.wait_for(self._results.join(), timeout=2.0)
        recorder.cancel()
        with suppress(BaseException):
            await recorder

    async def _hand_back(self, rows: Sequence[Claimed]) -> None:
        try:
            async with asyncio.timeout(2.0), self._maker() as session, session.begin():
                await DispatcherRepository(session).hand_back(rows)
        except Exception:
            log.warning("could not hand back %d in-flight deliveries; their leases will expire",
                        len(rows), exc_info=True)
        self._release(rows)

    async def _claim(self, free: int) -> list[Claimed]:
        async with self._maker() as session, session.begin():
            claimed = await DispatcherRepository(session).claim(
                token=uuid.uuid4(),
                free=free,
                # Candidates are locked (SKIP LOCKED is what lets instances share the table), so
                # look past partners at their share only a few shares deep.
                look_ahead=max(16, min(2 * free, 4 * self._partner_hold)),
                per_partner=self._partner_hold,
                held=[(p, n) for p, n in self._held.items() if n < self._partner_hold],
                busy=[p for p, n in self._held.items() if n >= self._partner_hold],
                lease_seconds=self._lease_s,
            )
        for row in claimed:
            self._held[row.partner_id] += 1
        return claimed

    def _partner_slots(self, partner_id: str) -> asyncio.Semaphore:
        slots = self._partner_requests.get(partner_id)
        if slots is None:
            slots = self._partner_requests[partner_id] = asyncio.Semaphore(self._per_partner)
        return slots

    async def _deliver(self, client: httpx.AsyncClient, row: Claimed) -> None:
        """Send when both a partner slot and a global slot are free; the recorder takes it from
        there (and releases the row once its outcome is committed)."""
        try:
            async with self._partner_slots(row.partner_id), self._requests:
                result = await self._send(client, row)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The lease expires and the delivery is tried again; nothing is lost.
            log.warning("webhook delivery %s failed before an outcome", row.id, exc_info=True)
            self._release([row])
            return
        self._results.put_nowait((row, result))

    async def _send(self, client: httpx.AsyncClient, row: Claimed) -> SendResult:
        started_at = datetime.now(UTC)
        t0 = time.monotonic()

        def result(outcome: str, url: str | None, status: int | None, error: str | None) -> SendResult:
            return SendResult(outcome, url, status, error, started_at, int((time.monotonic() - t0) * 1000))

        url = row.callback_url
        if url is None:
            return result("failed", None, None, f"partner {row.partner_id} is not in the directory (yet)")
        try:
            check_url_shape(url, allow_private=self._settings.allow_private_callbacks)
        except UnsafeCallback as exc:
            return result("refused", url, None, f"refused by the SSRF check: callback URL {exc}")
        body = row.body.encode()
        timestamp = int(time.time())
        secret = webhook_secret_for(row.partner_id, self._settings.webhook_signing_key)
        headers = {
            "Content-Type": "application/json",
            webhooks.EVENT_ID_HEADER: row.event_id,
            webhooks.SIGNATURE_HEADER: webhooks.signature_header(secret, timestamp, body),
        }
        try:
            async with asyncio.timeout(self._timeout_s):
                async with client.stream("POST", url, content=body, headers=headers) as response:
                    status = response.status_code
                    snippet = await _read_some(response, 300 if not domain.is_success(status) else _KEEPALIVE_READ)
        except UnsafeCallback as exc:  # from the transport, at connect: nothing was sent
            return result("refused", url, None, f"refused by the SSRF check: callback URL {exc}")
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

    async def _record_loop(self) -> None:
        """Records outcomes as they come: whatever finished while the last batch was being
        written goes into the next one."""
        while True:
            batch = await self._next_outcomes()
            try:
                await self._record(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The leases expire and the deliveries are tried again; nothing is lost.
                log.warning("%d webhook outcomes could not be recorded", len(batch), exc_info=True)
            finally:
                self._release([row for row, _ in batch])
                for _ in batch:
                    self._results.task_done()

    async def _next_outcomes(self) -> list[tuple[Claimed, SendResult]]:
        """The next batch to record: what is waiting, plus what finishes within a short linger
        (the rows stay held meanwhile, but their partners' request slots are already free)."""
        batch = [await self._results.get()]
        deadline = asyncio.get_running_loop().time() + self._record_linger_s
        while len(batch) < self._record_batch_max:
            if not self._results.empty():
                batch.append(self._results.get_nowait())
                continue
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._results.get(), remaining))
            except TimeoutError:
                break
        return batch

    def _decide(self, row: Claimed, res: SendResult) -> domain.AttemptOutcome:
        return domain.after_attempt(
            ok=res.outcome == "delivered",
            round_attempts=row.round_attempts + 1,
            max_attempts=self._settings.webhook_attempts_max,
            first_delay=self._settings.webhook_backoff_seconds,
        )

    async def _record(self, batch: Sequence[tuple[Claimed, SendResult]]) -> None:
        decisions = [self._decide(row, res) for row, res in batch]
        backoff = Backoff()
        for tries in range(_RECORD_TRIES):
            try:
                async with self._maker() as session, session.begin():
                    recorded = await DispatcherRepository(session).record(batch, decisions)
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                if tries == _RECORD_TRIES - 1:
                    raise
                log.warning("recording %d webhook outcomes failed; retrying", len(batch), exc_info=True)
                await backoff.sleep()
        outcomes: Counter[str] = Counter()
        for (row, res), decision in zip(batch, decisions, strict=True):
            if row.id not in recorded:
                log.warning("delivery %s was re-claimed before its outcome was recorded", row.id)
                continue
            outcomes[res.outcome] += 1  # the outcomes just recorded in delivery_attempts
            if decision.status == "delivered":
                self.sent += 1
            elif decision.status == "parked":
                log.warning("webhook delivery %s parked after %d attempts", row.id, recorded[row.id])
        for outcome, n in outcomes.items():
            WEBHOOK_ATTEMPTS.labels(outcome).inc(n)


# --- operators: deliveries and re-drives ------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def delivery_views(repo: DispatcherRepository, rows: Sequence[Row[Any]]) -> list[DeliveryView]:
    """Each delivery with every attempt and re-drive (two statements for the whole page)."""
    ids = [r.id for r in rows]
    attempts: dict[str, list[DeliveryAttempt]] = {i: [] for i in ids}
    redrives: dict[str, list[DeliveryRedrive]] = {i: [] for i in ids}
    for a in await repo.attempts_of(ids):
        attempts[a.delivery_id].append(
            DeliveryAttempt(
                attempt=a.attempt,
                at=_iso(a.started_at),
                url=a.url,
                outcome=a.outcome,
                status_code=a.status_code,
                error=a.error,
                duration_ms=a.duration_ms,
            )
        )
    for r in await repo.redrives_of(ids):
        redrives[r.delivery_id].append(
            DeliveryRedrive(by=r.redriven_by, by_name=r.redriven_by_name, at=_iso(r.redriven_at),
                            previous_status=r.previous_status)
        )
    return [
        DeliveryView(
            id=row.id,
            event_id=str(row.event_id),
            event_type=row.event_type,
            application_id=row.application_id,
            partner_id=row.partner_id,
            status=row.status,
            attempt_count=row.attempts,
            next_attempt_at=_iso(row.next_attempt_at) if row.status == "pending" else None,
            last_status_code=row.last_status_code,
            last_error=row.last_error,
            created_at=_iso(row.created_at),
            delivered_at=_iso(row.delivered_at),
            parked_at=_iso(row.parked_at),
            redriven_by=row.redriven_by,
            redriven_at=_iso(row.redriven_at),
            attempts=attempts[row.id],
            redrives=redrives[row.id],
        )
        for row in rows
    ]


DELIVERIES_CURSOR = "deliveries:"  # the last delivery's position


async def list_deliveries(
    repo: DispatcherRepository, *, application_id: str | None, partner_id: str | None, status: str | None,
    cursor: str | None, limit: int,
) -> DeliveryPage:
    """A page of deliveries, newest first, and the next page's cursor."""
    rows = await repo.list_deliveries(application_id=application_id, partner_id=partner_id, status=status,
                                      after=page_after(cursor, DELIVERIES_CURSOR, Position.parse), limit=limit + 1)
    page, next_cursor = next_page(rows, limit, DELIVERIES_CURSOR, lambda r: Position(r.created_at, r.id).key())
    return DeliveryPage(items=await delivery_views(repo, page), next_cursor=next_cursor)


async def get_delivery(repo: DispatcherRepository, delivery_id: str) -> DeliveryView:
    row = await repo.get_delivery(delivery_id)
    if row is None:
        raise NotFound(f"no delivery {delivery_id}")
    [view] = await delivery_views(repo, [row])
    return view


async def redrive_delivery(repo: DispatcherRepository, delivery_id: str, *, who: str) -> None:
    """Give a parked delivery a fresh round of attempts, now; only a parked one."""
    current = await repo.lock_status(delivery_id)
    if current is None:
        raise NotFound(f"no delivery {delivery_id}")
    if current != "parked":
        raise Conflict(f"delivery {delivery_id} is {current}; only parked deliveries can be re-driven")
    await repo.redrive(delivery_id, who=who, previous_status=current)
