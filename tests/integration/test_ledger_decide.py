"""The ledger against real PostgreSQL and the broker: caps, overlap, revocation, redelivery, DLQ,
driven through the real consumer loop (ConsumerLoop.process, and once end to end over Kafka)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.contracts.topics import ASSESSMENTS
from shared.db.engine import make_engine, make_sessionmaker
from shared.messaging.consumer import ConsumerLoop
from tests.support.apps import running
from tests.support.auth import AUD, OP
from tests.support.ledger import (
    again,
    assessed,
    decided,
    ledger_loop,
    new_applicant,
    process,
    receipt,
    scalar,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def maker(settings: Settings) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(settings.database_url, "ledger")
    yield make_sessionmaker(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
def loop(maker: async_sessionmaker[AsyncSession], settings: Settings) -> ConsumerLoop:
    return ledger_loop(maker, settings)


def summary(data: list[dict]) -> list[tuple[str, str, str | None, list[str]]]:
    return [(d["status"], d["awarded"], d["limited_by"], [r["code"] for r in d["reasons"]]) for d in data]


async def test_three_equity_rounds_fill_the_enterprise_year_then_a_new_year_starts_fresh(
    maker: async_sessionmaker[AsyncSession], loop: ConsumerLoop
) -> None:
    ent = new_applicant()
    rounds = [receipt("GT-EQUITY", ent, f"ROUND-2024-{c}", "6000000.00") for c in "ABC"]
    events = [assessed(r) for r in rounds]
    await process(loop, events)
    out = await decided(maker, [r["application_id"] for r in rounds])
    assert summary(out) == [
        ("approved", "6000000.00", None, []),
        ("partially_approved", "4000000.00", "GT-EQUITY/beneficiary-year", ["CAP_PARTLY_USED"]),
        ("rejected", "0.00", "GT-EQUITY/beneficiary-year", ["CAP_EXHAUSTED"]),
    ]
    first = out[0]
    assert first["applicant"]["id"] == ent and first["partner_id"] == "ptn_test"
    assert first["entitlement"] == "6000000.00" and first["top_up_of"] is None
    assert first["draws"] == [{"pool": "GT-EQUITY/beneficiary-year", "beneficiary": ent, "year": 2024,
                               "subject": None, "amount": "6000000.00"}]
    assert out[2]["reasons"][0]["citation"]

    r2025 = receipt("GT-EQUITY", ent, "ROUND-2025-A", "6000000.00", year=2025)
    await process(loop, [assessed(r2025)])
    assert summary(await decided(maker, [r2025["application_id"]])) == [("approved", "6000000.00", None, [])]
    committed = await scalar(maker, "SELECT committed_fen FROM pools WHERE beneficiary = :b AND year = 2024", b=ent)
    assert committed == 10_000_000_00


async def test_eleven_clinical_projects_stop_at_the_hospital_cap(
    maker: async_sessionmaker[AsyncSession], loop: ConsumerLoop
) -> None:
    hospital = "1231" + new_applicant()[4:]
    projects = [receipt("GT-CLIN", hospital, f"P-{i}", "500000.00") for i in range(11)]
    await process(loop, [assessed(r) for r in projects])
    out = await decided(maker, [r["application_id"] for r in projects])
    assert [d["status"] for d in out] == ["approved"] * 10 + ["rejected"]
    assert out[-1]["limited_by"] == "GT-CLIN/beneficiary-year"
    total = await scalar(maker, "SELECT sum(amount_fen) FROM awards WHERE beneficiary = :b", b=hospital)
    assert total == 5_000_000_00


async def test_overlap_across_programs_tops_up_the_difference_and_rejects_a_lower_duplicate(
    maker: async_sessionmaker[AsyncSession], loop: ConsumerLoop
) -> None:
    ent = new_applicant()
    gt = receipt("GT-PRODUCT", ent, "PRODUCT-X", "8000000.00")
    ct = receipt("CT-PRODUCT", ent, "PRODUCT-X", "12000000.00")
    lower = receipt("CT-PRODUCT", ent, "PRODUCT-X", "9000000.00")
    await process(loop, [assessed(gt)])
    await process(loop, [assessed(ct), assessed(lower)])
    out = await decided(maker, [gt["application_id"], ct["application_id"], lower["application_id"]])
    assert summary(out) == [
        ("approved", "8000000.00", None, []),
        ("approved", "4000000.00", None, ["TOP_UP"]),
        ("rejected", "0.00", None, ["DUPLICATE"]),
    ]
    assert out[1]["top_up_of"] == gt["application_id"]
    assert {d["pool"] for d in out[1]["draws"]} == {"CT-PRODUCT/subject", "CT-PRODUCT/beneficiary-year"}
    assert all(d["amount"] == "4000000.00" for d in out[1]["draws"])
    gt_committed = await scalar(
        maker, "SELECT sum(committed_fen) FROM pools WHERE beneficiary = :b AND pool LIKE 'GT-%'", b=ent)
    assert gt_committed == 2 * 8_000_000_00


async def test_ineligible_assessments_are_decided_too(
    maker: async_sessionmaker[AsyncSession], loop: ConsumerLoop
) -> None:
    r = receipt("GT-EQUITY", new_applicant(), "ROUND-Z", "0.00", eligible=False)
    await process(loop, [assessed(r)])
    (d,) = await decided(maker, [r["application_id"]])
    assert d["status"] == "ineligible" and d["awarded"] == "0.00"
    assert [x["code"] for x in d["reasons"]] == ["RULE_FAILED"]
    assert await scalar(maker, "SELECT count(*) FROM awards WHERE application_id = :a", a=r["application_id"]) == 0


async def test_redelivery_and_a_copy_under_a_new_event_id_decide_nothing_twice(
    maker: async_sessionmaker[AsyncSession], loop: ConsumerLoop
) -> None:
    ent = new_applicant()
    r = receipt("GT-EQUITY", ent, "ROUND-R", "1000000.00")
    event = assessed(r)
    await process(loop, [event])
    await process(loop, [event, again(event)])  # same id, and same assessment under another id
    await process(loop, [again(event), again(event)])
    assert len(await decided(maker, [r["application_id"]])) == 1
    assert await scalar(maker, "SELECT committed_fen FROM pools WHERE beneficiary = :b", b=ent) == 1_000_000_00
    entries = await scalar(maker, "SELECT count(*) FROM journal_entries WHERE application_id = :a",
                           a=r["application_id"])
    assert entries == 1


async def test_a_malformed_receipt_is_dead_lettered_and_the_rest_of_the_batch_is_decided(
    maker: async_sessionmaker[AsyncSession], loop: ConsumerLoop
) -> None:
    ent = new_applicant()
    good1 = receipt("GT-EQUITY", ent, "ROUND-G1", "1000000.00")
    bad = receipt("GT-EQUITY", ent, "ROUND-BAD", "1000000.00")
    bad["entitlement"] = "12.345"
    good2 = receipt("GT-EQUITY", ent, "ROUND-G2", "1000000.00")
    bad_event = assessed(bad)
    await process(loop, [assessed(good1), bad_event, b"{not json", assessed(good2)])
    out = await decided(maker, [good1["application_id"], bad["application_id"], good2["application_id"]])
    assert [d["application_id"] for d in out] == [good1["application_id"], good2["application_id"]]
    async with maker() as session:
        from sqlalchemy import text

        dead = (await session.execute(
            text("SELECT envelope FROM outbox WHERE type = 'event.dead_lettered' AND subject = :s"),
            {"s": bad["application_id"]})).scalars().all()
    assert len(dead) == 1
    assert "receipt.entitlement" in dead[0]["data"]["error"]
    assert dead[0]["causation_id"] == str(bad_event.id)


async def test_end_to_end_over_kafka_then_revoke_frees_the_pools(settings: Settings) -> None:
    """Produce assessments to the topic; the running service decides, the API revokes."""
    ent = new_applicant()
    first = receipt("GT-EQUITY", ent, "ROUND-K1", "6000000.00")
    second = receipt("GT-EQUITY", ent, "ROUND-K2", "6000000.00")
    third = receipt("GT-EQUITY", ent, "ROUND-K3", "6000000.00")
    app = create_app(settings)
    maker = make_sessionmaker(make_engine(settings.database_url, "ledger"))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        async with running(app) as client:
            for r in (first, second):
                await producer.send_and_wait(settings.topic_namespace + ASSESSMENTS, assessed(r).to_bytes(),
                                             key=ent.encode())
            ids = [first["application_id"], second["application_id"]]
            out = await _wait_decided(maker, ids)
            assert [d["awarded"] for d in out] == ["6000000.00", "4000000.00"]

            bal = (await client.get("/v1/balances", params={"beneficiary": ent}, headers=AUD)).json()
            assert bal["items"] == [{"pool": "GT-EQUITY/beneficiary-year", "beneficiary": ent, "year": 2024,
                                     "cap": "10000000.00", "committed": "10000000.00", "held": "0.00",
                                     "available": "0.00"}]

            url = f"/v1/awards/{first['application_id']}/revoke"
            assert (await client.post(url, json={"reason": "x"}, headers=AUD)).status_code == 403
            assert (await client.post(url, json={"reason": ""}, headers=OP)).status_code == 422
            assert (await client.post(url, json={}, headers=OP)).status_code == 422
            assert (await client.post(url, json={"reason": "r" * 501}, headers=OP)).status_code == 422
            resp = await client.post(url, json={"reason": "financing not received"}, headers=OP)
            assert resp.status_code == 200, resp.text
            revocation = resp.json()
            assert revocation["amount"] == "6000000.00" and revocation["revoked_by"] == "operator"
            again_resp = await client.post(url, json={"reason": "another reason"}, headers=OP)
            assert again_resp.status_code == 200 and again_resp.json() == revocation
            missing = await client.post("/v1/awards/app_nope/revoke", json={"reason": "x"}, headers=OP)
            assert missing.status_code == 404

            bal = (await client.get("/v1/balances", params={"beneficiary": ent, "year": 2024,
                                                            "program": "GT-EQUITY"}, headers=OP)).json()
            assert bal["items"][0]["committed"] == "4000000.00"
            await producer.send_and_wait(settings.topic_namespace + ASSESSMENTS, assessed(third).to_bytes(),
                                         key=ent.encode())
            (d3,) = await _wait_decided(maker, [third["application_id"]])
            assert (d3["status"], d3["awarded"]) == ("approved", "6000000.00")

            awards = (await client.get("/v1/awards", params={"beneficiary": ent}, headers=AUD)).json()["items"]
            assert [(a["amount"], a["status"]) for a in awards] == [
                ("6000000.00", "revoked"), ("4000000.00", "live"), ("6000000.00", "live")]
            journal = (await client.get("/v1/journal", params={"after": 0, "limit": 1000}, headers=AUD)).json()
            ours = [e for e in journal["items"] if e["application_id"] == first["application_id"]]
            assert [e["kind"] for e in ours] == ["award", "revocation"]
            assert ours[1]["postings"] == [{"account": p["account"], "amount": _neg(p["amount"])}
                                           for p in ours[0]["postings"]]
            verify = (await client.get("/v1/audit/verify", headers=AUD)).json()
            assert verify["ok"] is True, verify
            assert verify["head"] == journal["items"][-1]["hash"]
            assert (await client.get("/v1/audit/verify", headers=OP)).status_code == 200
            assert (await client.get("/v1/journal")).status_code == 401

            # award.revoked reached the awards topic through the outbox relay.
            revoked_rows = await _wait_published(maker, first["application_id"], "award.revoked")
            assert revoked_rows[0]["data"]["reason"] == "financing not received"
            assert await scalar(maker, "SELECT count(*) FROM revocations WHERE application_id = :a",
                                a=first["application_id"]) == 1
    finally:
        await producer.stop()


def _neg(amount: str) -> str:
    return amount[1:] if amount.startswith("-") else "-" + amount


async def _wait_decided(maker: async_sessionmaker[AsyncSession], ids: list[str], timeout_s: float = 30) -> list[dict]:
    return list(await eventually(lambda: decided(maker, ids), f"{len(ids)} decisions", timeout_s=timeout_s,
                                 until=lambda out: len(out) >= len(ids)))


async def _wait_published(maker: async_sessionmaker[AsyncSession], subject: str, type_: str) -> list[dict]:
    from sqlalchemy import text

    async def published() -> list[dict]:
        async with maker() as session:
            return list((await session.execute(
                text("SELECT envelope FROM outbox WHERE subject = :s AND type = :t AND published_at IS NOT NULL"),
                {"s": subject, "t": type_})).scalars().all())

    return list(await eventually(published, f"{type_} published for {subject}", timeout_s=10))
