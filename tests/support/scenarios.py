"""A load under fire: 240 GT-EQUITY applications over 20 enterprises posted by a careful partner
while a fault is injected, then every invariant checked on the final state (the fault and
scale-out tests share it); and holds under review settled by reviewers while a fault is injected."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from shared.db.engine import make_engine
from shared.kernel.money import format_fen, parse_amount
from shared.kernel.subjects import subject_key
from tests.support.auth import AUD, OPERATOR_TOKEN
from tests.support.client import FINAL, Partner, create_partner, random_uscc
from tests.support.processes import Stack, four_services
from tests.support.receiver import Receiver
from tests.support.waiting import eventually_sync
from tools.samples import make_body

ENTERPRISES = 20
APPLICATIONS = 240  # 12 an enterprise of 123万 each: 1481万 asked of a 1000万 pool
CAP = "10000000.00"


@dataclass
class Scenario:
    stack: Stack
    partner: Partner
    receiver: Receiver
    accepted: dict[int, str] = field(default_factory=dict)

    @property
    def db(self) -> str:
        return self.stack.env["DATABASE_URL"]

    @property
    def namespace(self) -> str:
        return self.stack.env["GRANTLINE_TOPIC_NAMESPACE"]


@contextmanager
def open_scenario(pg_dsn: str, bootstrap: str, *, prefix: str = "fault", partitions: int = 3) -> Iterator[Scenario]:
    """A stack of the four services on its own database and topic namespace, a partner and its receiver."""
    receiver = Receiver().start()
    try:
        with four_services(pg_dsn, bootstrap, prefix, {
            "GRANTLINE_WEBHOOK_BACKOFF_SECONDS": "0.2",
            "GRANTLINE_WEBHOOK_ATTEMPTS_MAX": "30",
            "GRANTLINE_AMNESIA_CHECK_SECONDS": "1",
            "GRANTLINE_LOG_LEVEL": "WARNING",
        }, partitions=partitions) as stack:
            partner = create_partner(
                stack.services["intake"].url, OPERATOR_TOKEN, f"{receiver.url}/hook/faults", name="faults"
            )
            receiver.secrets["faults"] = partner.webhook_secret
            yield Scenario(stack, partner, receiver)
    finally:
        receiver.stop()


def load(enterprises: list[str]) -> list[dict[str, Any]]:
    """12 applications per enterprise of 1,234,567.89 each: more than its 1000万 pool holds."""
    bodies = []
    for ent in enterprises:
        for i in range(APPLICATIONS // ENTERPRISES):
            body = make_body("GT-EQUITY", applicant={"id": ent})
            body["subject"] = f"ROUND-{i:02d}"
            body["facts"]["financing_received"] = "61728394.50"
            bodies.append(body)
    random.Random(7).shuffle(bodies)
    return bodies


async def post_all(
    scenario: Scenario, bodies: list[dict[str, Any]], deadline_s: float = 150, in_applicant_order: bool = False
) -> None:
    """Post like a careful partner: retry with the same Idempotency-Key until answered.
    `in_applicant_order`: one applicant's bodies one after another, in list order (applicants concurrently)."""
    keys = [str(uuid.uuid4()) for _ in bodies]
    gate = asyncio.Semaphore(16)
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=scenario.partner.base, headers=scenario.partner.headers, timeout=10
    ) as client:

        async def one(i: int) -> None:
            async with gate:
                # A partner's retries, bounded by the deadline: a service down for the fault
                # answers nothing, or 5xx, until it is back.
                while time.monotonic() - started < deadline_s:
                    try:
                        r = await client.post(
                            "/v1/applications", json=bodies[i], headers={"Idempotency-Key": keys[i]}
                        )
                        if r.status_code == 202:
                            scenario.accepted[i] = r.json()["id"]
                            return
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)

        if not in_applicant_order:
            await asyncio.gather(*(one(i) for i in range(len(bodies))))
            return
        by_applicant: dict[str, list[int]] = defaultdict(list)
        for i, body in enumerate(bodies):
            by_applicant[body["applicant"]["id"]].append(i)

        async def in_order(indices: list[int]) -> None:
            for i in indices:
                await one(i)

        await asyncio.gather(*(in_order(indices) for indices in by_applicant.values()))


def run_with_fault(
    scenario: Scenario,
    fault: Callable[[], None],
    enterprises: list[str] | None = None,
    in_applicant_order: bool = False,
) -> list[str]:
    """Post the load, inject `fault` once a quarter of it is accepted, wait for the rest."""
    enterprises = enterprises or [random_uscc() for _ in range(ENTERPRISES)]
    bodies = load(enterprises)
    poster = threading.Thread(
        target=lambda: asyncio.run(post_all(scenario, bodies, in_applicant_order=in_applicant_order))
    )
    poster.start()
    eventually_sync(lambda: len(scenario.accepted) >= APPLICATIONS // 4 or not poster.is_alive(),
                    "a quarter of the load accepted", timeout_s=200)
    fault()
    poster.join(timeout=200)
    assert len(scenario.accepted) == APPLICATIONS, "every application is eventually accepted"
    return enterprises


def wait_all_final(scenario: Scenario, timeout_s: float = 150) -> dict[str, dict[str, Any]]:
    pending = set(scenario.accepted.values())
    final: dict[str, dict[str, Any]] = {}
    with httpx.Client(base_url=scenario.partner.base, headers=scenario.partner.headers, timeout=10) as client:

        def all_final() -> bool:
            for app_id in list(pending):
                try:
                    body = client.get(f"/v1/applications/{app_id}").json()
                except httpx.HTTPError:
                    continue
                if body.get("status") in FINAL:
                    final[app_id] = body
                    pending.discard(app_id)
            return not pending

        try:
            eventually_sync(all_final, "every application final", timeout_s=timeout_s, every_s=0.5)
        except AssertionError:
            stuck = [client.get(f"/v1/applications/{a}").json() for a in sorted(pending)[:5]]
            where = [
                (b.get("id"), b.get("status"), [e["type"] for e in b.get("timeline", [])], b.get("detail"))
                for b in stuck
            ]
            raise AssertionError(
                f"{len(pending)} applications never reached a final state, e.g. {where}"
            ) from None
    return final


def wait_for_webhooks(scenario: Scenario, app_ids: set[str], timeout_s: float = 90) -> None:
    try:
        eventually_sync(lambda: app_ids <= set(scenario.receiver.decisions()), "every decision received",
                        timeout_s=timeout_s, every_s=0.25)
    except AssertionError:
        missing = app_ids - set(scenario.receiver.decisions())
        raise AssertionError(f"{len(missing)} decisions never reached the partner") from None


def check_outcome(scenario: Scenario, enterprises: list[str]) -> dict[str, dict[str, Any]]:
    """Every invariant after a load; returns application id → its final body."""
    final = wait_all_final(scenario)
    by_enterprise: dict[str, int] = {}
    for body in final.values():
        ent = body["applicant"]["id"]
        by_enterprise[ent] = by_enterprise.get(ent, 0) + parse_amount(body["decision"]["awarded"])
    assert {e: format_fen(v) for e, v in by_enterprise.items()} == {e: CAP for e in enterprises}

    ledger = scenario.stack.services["ledger"].url
    for ent in enterprises:
        items = httpx.get(
            f"{ledger}/v1/balances", params={"beneficiary": ent}, headers=AUD, timeout=10
        ).json()
        pool = [i for i in items["items"] if i["pool"] == "GT-EQUITY/beneficiary-year"]
        assert [(p["committed"], p["cap"]) for p in pool] == [(CAP, CAP)], ent
    assert httpx.get(f"{ledger}/v1/audit/verify", headers=AUD, timeout=30).json()["ok"] is True

    async def twice() -> tuple[int, int]:
        engine = make_engine(scenario.db, "ledger")
        try:
            async with engine.connect() as conn:
                decisions = await conn.scalar(text("SELECT count(*) FROM decisions"))
                doubled = await conn.scalar(
                    text(
                        "SELECT count(*) FROM (SELECT application_id FROM journal_entries "
                        "WHERE kind = 'award' GROUP BY application_id HAVING count(*) > 1) d"
                    )
                )
        finally:
            await engine.dispose()
        return int(decisions or 0), int(doubled or 0)

    decisions, doubled = asyncio.run(twice())
    assert (decisions, doubled) == (APPLICATIONS, 0)
    wait_for_webhooks(scenario, set(final))
    assert scenario.receiver.bad_signatures == 0
    return final


# ---------------------------------------------------------------------------------------------
# Reviews under fire (issue 13): holds placed, reviewers settling them while a service is killed
# ---------------------------------------------------------------------------------------------

HELD_PRODUCTS = 12  # per enterprise, 1000万 each: ten fill its 1亿 GT-PRODUCT year (000 §五(四)), two find no room
PRODUCT_REQUEST = "10000000.00"
REDUCED = "6000000.00"


def held_load(enterprises: list[str]) -> list[dict[str, Any]]:
    bodies = []
    for ent in enterprises:
        for i in range(HELD_PRODUCTS):
            body = make_body("GT-PRODUCT", applicant={"id": ent}, requested_amount=PRODUCT_REQUEST)
            body["subject"] = f"PRODUCT-{i:02d}"
            bodies.append(body)
    return bodies


def place_holds(scenario: Scenario, enterprises: list[str]) -> dict[str, dict[str, Any]]:
    """Every application of the held load decided: application id → its body, for those held."""
    bodies = held_load(enterprises)
    asyncio.run(post_all(scenario, bodies))
    assert len(scenario.accepted) == len(bodies), "every application is accepted"
    held = {}
    for i, app_id in scenario.accepted.items():
        decided = scenario.partner.wait_decided(app_id)
        if decided["status"] == "pending_review":
            held[app_id] = bodies[i]
        else:
            assert (decided["status"], decided["decision"]["reasons"][0]["code"]) == ("rejected", "CAP_EXHAUSTED")
    assert len(held) == 10 * len(enterprises), "ten holds fill each enterprise's year"
    return held


def verdict_for(app_id: str) -> dict[str, str]:
    """What the reviewers decide on a hold (stable per application): all, less, or nothing."""
    pick = int(uuid.uuid5(uuid.NAMESPACE_URL, app_id)) % 3
    if pick == 0:
        return {"decision": "approve", "reason": "全额核定"}
    if pick == 1:
        return {"decision": "approve", "amount": REDUCED, "reason": "核减"}
    return {"decision": "reject", "reason": "不予支持"}


def awarded_for(app_id: str) -> int:
    verdict = verdict_for(app_id)
    return 0 if verdict["decision"] == "reject" else parse_amount(verdict.get("amount", PRODUCT_REQUEST))


async def review_with_fault(ledger: str, app_ids: list[str], fault: Callable[[], None],
                            deadline_s: float = 150) -> tuple[dict[str, int], int]:
    """Review every hold like careful reviewers (eight at a time), retrying until answered (a 409
    after a retry: the first try had settled it before the service went down); once a quarter are
    answered, `fault` runs while the other reviews go on. The answers, and how many there were
    when the fault began."""
    gate = asyncio.Semaphore(8)
    answered: dict[str, int] = {}
    at_fault: list[int] = []
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=ledger, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
                                 timeout=10) as client:

        async def one(app_id: str) -> None:
            async with gate:
                while time.monotonic() - started < deadline_s:
                    try:
                        r = await client.post(f"/v1/awards/{app_id}/review", json=verdict_for(app_id))
                        if r.status_code in (200, 409):
                            answered[app_id] = r.status_code
                            break
                    except httpx.HTTPError:
                        pass
                    await asyncio.sleep(0.2)
            if not at_fault and len(answered) >= len(app_ids) // 4:
                at_fault.append(len(answered))
                await asyncio.to_thread(fault)  # the other reviewers keep sending meanwhile

        await asyncio.gather(*(one(app_id) for app_id in app_ids))
    assert len(answered) == len(app_ids), "every review is eventually answered"
    return answered, at_fault[0]


def check_reviews(scenario: Scenario, enterprises: list[str], held: dict[str, dict[str, Any]],
                  answered: dict[str, int]) -> None:
    """After reviews under fire: each hold reviewed exactly once, as asked; pools, holds and journal
    exact; verify ok."""
    ledger = scenario.stack.services["ledger"].url

    async def rows() -> tuple[dict[str, int], dict[str, int], dict[str, list[str]]]:
        engine = make_engine(scenario.db, "ledger")
        try:
            async with engine.connect() as conn:
                reviews = dict((await conn.execute(text("SELECT application_id, awarded_fen FROM reviews"))).all())
                events = dict((await conn.execute(text(
                    "SELECT subject, count(*) FROM outbox WHERE type = 'award.reviewed' GROUP BY subject"))).all())
                kinds: dict[str, list[str]] = defaultdict(list)
                for app_id, kind in await conn.execute(text(
                        "SELECT application_id, kind FROM journal_entries ORDER BY seq")):
                    kinds[app_id].append(kind)
        finally:
            await engine.dispose()
        return reviews, events, kinds

    reviews, events, kinds = asyncio.run(rows())
    assert reviews == {app_id: awarded_for(app_id) for app_id in held}, "each hold reviewed once, as asked"
    assert events == dict.fromkeys(held, 1), "one award.reviewed per hold"
    for app_id in held:
        expected = ["hold", "approval"] if verdict_for(app_id).get("amount") is None else ["hold", "approval", "release"]
        if verdict_for(app_id)["decision"] == "reject":
            expected = ["hold", "rejection"]
        assert kinds[app_id] == expected, (app_id, answered[app_id])
    for ent in enterprises:
        mine = [app_id for app_id, body in held.items() if body["applicant"]["id"] == ent]
        items = httpx.get(f"{ledger}/v1/balances", params={"beneficiary": ent, "limit": 200}, headers=AUD,
                          timeout=10).json()["items"]
        by_pool = {(b["pool"], b.get("subject")): (b["committed"], b["held"]) for b in items}
        total = sum(awarded_for(app_id) for app_id in mine)
        assert by_pool[("GT-PRODUCT/beneficiary-year", None)] == (format_fen(total), "0.00"), ent
        for app_id in mine:
            subject = subject_key(held[app_id]["subject"])
            assert by_pool[("GT-PRODUCT/subject", subject)] == (format_fen(awarded_for(app_id)), "0.00"), app_id
    assert httpx.get(f"{ledger}/v1/audit/verify", headers=AUD, timeout=30).json()["ok"] is True
