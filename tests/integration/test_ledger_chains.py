"""Issue 12 in the ledger, against real PostgreSQL: subjects compared by key (every look-alike one
subject), pools shared by every applicant (a GT-CLIN project across hospitals, a call's budget), a
pool name two programs share, an annual cap limiting one large application, and revoking a member
of an overlap chain re-deciding the rest of it. Receipts are built as the engine builds them
(subject keys; tests/support/ledger.receipt) and go through the real consumer loop; each is also
written to eligibility's outbox, so the last test replays the whole module's history (several
catalog versions and calls) and finds it equal."""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ledger.app import create_app
from shared.config.settings import Settings
from shared.db.engine import make_engine, make_sessionmaker
from tests.support.apps import RoutesOnly, routes_only
from tests.support.auth import AUD, OP
from tests.support.ledger import (
    assessed,
    decided,
    ledger_loop,
    new_applicant,
    process,
    publish_assessments,
    receipt,
    run_replay,
    scalar,
)

pytestmark = pytest.mark.integration

SHARED_POOL = "BIO/unit-year"  # a pool name two programs of a catalog version share (POLICY.md, Interpretations)


@dataclass
class Ledger:
    settings: Settings
    maker: async_sessionmaker[AsyncSession]
    eligibility: async_sessionmaker[AsyncSession]
    client: httpx.AsyncClient

    async def decide(self, *receipts: dict[str, Any]) -> list[dict[str, Any]]:
        """Each receipt as eligibility publishes it (its outbox, the replay's source) and as the
        ledger's consumer receives it; their award.decided data, in order."""
        events = [assessed(r) for r in receipts]
        await publish_assessments(self.settings, self.eligibility, events, broker=False)
        await process(ledger_loop(self.maker, self.settings), events)
        return await self.latest([r["application_id"] for r in receipts])

    async def latest(self, application_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The last award.decided of each application (a re-decision publishes another)."""
        out = []
        for app in application_ids:
            published = await decided(self.maker, [app])
            assert published, f"{app} was not decided"
            out.append(published[-1])
        return out

    async def revoke(self, application_id: str, reason: str = "资料不实") -> dict[str, Any]:
        resp = await self.client.post(f"/v1/awards/{application_id}/revoke", json={"reason": reason}, headers=OP)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def events_caused_by(self, event_id: str) -> list[dict[str, Any]]:
        async with self.maker() as session:
            rows = await session.execute(text(
                "SELECT envelope FROM outbox WHERE envelope->>'causation_id' = :c ORDER BY seq"), {"c": event_id})
            return [r[0] for r in rows]

    async def revocation_event_id(self, application_id: str) -> str:
        return str(await scalar(self.maker, "SELECT event_id::text FROM revocations WHERE application_id = :a",
                                a=application_id))


@pytest.fixture(scope="module")
async def ledger(settings: Settings) -> AsyncIterator[Ledger]:
    engine = make_engine(settings.database_url, "ledger")
    eligibility_engine = make_engine(settings.database_url, "eligibility")
    maker = make_sessionmaker(engine)
    async with routes_only(create_app(settings), RoutesOnly(settings=settings, maker=maker)) as client:
        yield Ledger(settings, maker, make_sessionmaker(eligibility_engine), client)
    await engine.dispose()
    await eligibility_engine.dispose()


def summary(data: Sequence[dict[str, Any]]) -> list[tuple[str, str, str | None, list[str]]]:
    return [(d["status"], d["awarded"], d["limited_by"], [r["code"] for r in d["reasons"]]) for d in data]


def pools(applicant: str, *specs: tuple[str, str, str, int | None, str | None]) -> list[dict[str, Any]]:
    """Pool claims (name, scope, cap, year, subject) of one applicant."""
    return [{"pool": name, "scope": scope, "beneficiary": applicant, "year": year, "subject": subject,
             "cap": cap, "citation": f"cite {name}"} for name, scope, cap, year, subject in specs]


# ---------------------------------------------------------------------------------------------
# Subjects by key
# ---------------------------------------------------------------------------------------------

# The look-alikes of one product: full-width letters, a trailing space, lower case, a
# Cyrillic О, NFD against NFC accents (eligibility keys them all to one subject) ...
BASE_SUBJECT = "CAFÉ-O1"
LOOK_ALIKES = ["ＣＡＦÉ－Ｏ１", "CAFÉ-O1 ", "café-o1", "CAFÉ-\u041e1", unicodedata.normalize("NFD", "CAFÉ-O1")]
# ... and the invisible ones, which eligibility refuses (422 naming subject): only history from
# before subjects were keyed carries them, as written; the ledger folds them all the same.
INVISIBLE = ["CAF\u200dÉ-O1", "CAFÉ\u200b-O1"]


def as_written(data: dict[str, Any], subject: str) -> dict[str, Any]:
    """A receipt as eligibility wrote it before subjects were keyed: the subject as typed everywhere."""
    data["subject"] = subject
    data["overlap"]["subject"] = subject
    for claim in data["pools"]:
        if claim["subject"] is not None:
            claim["subject"] = subject
    return data


async def test_every_look_alike_is_one_subject_a_duplicate_or_a_top_up(ledger: Ledger) -> None:
    ent = new_applicant()
    first = receipt("GT-PRODUCT", ent, BASE_SUBJECT, "8000000.00")
    same = [receipt("GT-PRODUCT", ent, s, "8000000.00") for s in LOOK_ALIKES]
    higher = receipt("CT-PRODUCT", ent, LOOK_ALIKES[0], "9000000.00")
    old = [as_written(receipt("GT-PRODUCT", ent, BASE_SUBJECT, "8000000.00"), s) for s in INVISIBLE]
    out = await ledger.decide(first, *same, higher, *old)
    assert summary(out) == [
        ("approved", "8000000.00", None, []),
        *[("rejected", "0.00", None, ["DUPLICATE"])] * len(LOOK_ALIKES),
        ("approved", "1000000.00", None, ["TOP_UP"]),
        *[("rejected", "0.00", None, ["DUPLICATE"])] * len(INVISIBLE),
    ]
    assert out[len(LOOK_ALIKES) + 1]["top_up_of"] == first["application_id"]
    assert [d["subject"] for d in out[1:len(LOOK_ALIKES) + 1]] == LOOK_ALIKES  # shown as typed
    live = await scalar(ledger.maker, "SELECT sum(amount_fen) FROM awards WHERE beneficiary = :b AND NOT revoked",
                        b=ent)
    assert live == 9_000_000_00  # never a second full award
    subject_pools = await scalar(ledger.maker, "SELECT count(*) FROM pools WHERE beneficiary = :b "
                                               "AND pool = 'GT-PRODUCT/subject'", b=ent)
    assert subject_pools == 1


async def test_a_subject_pool_opened_under_another_spelling_is_the_same_pool(ledger: Ledger) -> None:
    ent = new_applicant()
    # History: a pool opened as written, then an application keyed as eligibility keys it now.
    old = as_written(receipt("GT-INSURANCE", ent, "POLICY-7", "300000.00"), "POLICY-7")
    old["overlap"]["milestone"] = "premium-2023"
    new = receipt("GT-INSURANCE", ent, "policy 7", "300000.00")
    new["overlap"]["milestone"] = "premium-2024"  # another milestone: no overlap, the pool alone caps
    out = await ledger.decide(old, new)
    assert summary(out) == [("approved", "300000.00", None, []),
                            ("partially_approved", "200000.00", "GT-INSURANCE/subject", ["CAP_PARTLY_USED"])]
    assert out[1]["draws"][0]["subject"] == "POLICY-7"  # the row the history opened
    rows = await scalar(ledger.maker, "SELECT count(*) FROM pools WHERE beneficiary = :b", b=ent)
    assert rows == 1


# ---------------------------------------------------------------------------------------------
# Pools every applicant shares
# ---------------------------------------------------------------------------------------------


async def test_two_hospitals_on_one_clinical_project_are_capped_at_50_wan_together(ledger: Ledger) -> None:
    first, second = "1231" + new_applicant()[4:], "1231" + new_applicant()[4:]
    trial = f"CTR2024{new_applicant()[-6:]}"
    out = await ledger.decide(receipt("GT-CLIN", first, trial, "300000.00"),
                              receipt("GT-CLIN", second, trial.lower(), "400000.00"),
                              receipt("GT-CLIN", second, f"{trial}-B", "400000.00"))
    assert summary(out) == [
        ("approved", "300000.00", None, []),
        ("partially_approved", "200000.00", "GT-CLIN/project", ["CAP_PARTLY_USED"]),
        ("approved", "400000.00", None, []),  # another project: a pool of its own
    ]
    assert "every applicant" in out[1]["reasons"][0]["message"]
    (project,) = [d for d in out[1]["draws"] if d["pool"] == "GT-CLIN/project"]
    assert project["beneficiary"] == "*" and project["year"] is None
    listed = (await ledger.client.get("/v1/balances", params={"beneficiary": "*", "program": "GT-CLIN"},
                                      headers=AUD)).json()["items"]
    (mine,) = [b for b in listed if b["subject"] == project["subject"]]
    assert (mine["cap"], mine["committed"], mine["available"]) == ("500000.00", "500000.00", "0.00")


async def test_a_call_budget_limits_an_award_and_is_one_pool_for_every_award_under_the_call(
    ledger: Ledger,
) -> None:
    call = (f"call_{new_applicant()[-8:].lower()}", "1000000.00")
    a, b, c = new_applicant(), new_applicant(), new_applicant()
    out = await ledger.decide(receipt("GT-EQUITY", a, "ROUND-1", "600000.00", year=2026, call=call),
                              receipt("GT-EQUITY", b, "ROUND-1", "600000.00", year=2026, call=call),
                              receipt("GT-EQUITY", c, "ROUND-1", "600000.00", year=2026, call=call))
    assert summary(out) == [
        ("approved", "600000.00", None, []),
        ("partially_approved", "400000.00", "call-budget", ["CAP_PARTLY_USED"]),
        ("rejected", "0.00", "call-budget", ["CAP_EXHAUSTED"]),
    ]
    assert out[1]["reasons"][0]["citation"] == f"call {call[0]}"
    assert f"call {call[0]}, 2026" in out[1]["reasons"][0]["message"]
    listed = (await ledger.client.get("/v1/balances", params={"beneficiary": "*", "year": 2026},
                                      headers=AUD)).json()["items"]
    assert [x for x in listed if x.get("subject") == call[0]] == [
        {"pool": "call-budget", "beneficiary": "*", "year": 2026, "subject": call[0], "cap": "1000000.00",
         "committed": "1000000.00", "held": "0.00", "available": "0.00"}]


async def test_two_programs_naming_one_pool_share_it(ledger: Ledger) -> None:
    ent = new_applicant()
    shared = (SHARED_POOL, "beneficiary_year", "10000000.00", 2026, None)
    drug = receipt("BIO-INNOV-DRUG", ent, "DRUG-1", "7000000.00", year=2026, pools=pools(ent, shared))
    gene = receipt("GT-PRODUCT", ent, "GENE-1", "7000000.00", year=2026, pools=pools(ent, shared))
    assert summary(await ledger.decide(drug, gene)) == [
        ("approved", "7000000.00", None, []),
        ("partially_approved", "3000000.00", SHARED_POOL, ["CAP_PARTLY_USED"]),
    ]
    assert await scalar(ledger.maker, "SELECT count(*) FROM pools WHERE beneficiary = :b", b=ent) == 1


async def test_an_annual_cap_limiting_one_large_application_is_a_partial_award_not_a_smaller_entitlement(
    ledger: Ledger,
) -> None:
    # 2% of 7.5亿 = 1500万 due; the enterprise's 1000万 a year holds (000 §五(六)).
    (d,) = await ledger.decide(receipt("GT-EQUITY", new_applicant(), "ROUND-BIG", "15000000.00", year=2026))
    assert (d["status"], d["entitlement"], d["awarded"], d["limited_by"]) == (
        "partially_approved", "15000000.00", "10000000.00", "GT-EQUITY/beneficiary-year")
    assert [r["code"] for r in d["reasons"]] == ["CAP_PARTLY_USED"]


# ---------------------------------------------------------------------------------------------
# Revoking a member of an overlap chain
# ---------------------------------------------------------------------------------------------


async def test_revoking_a_chain_member_re_decides_the_rest_in_order(ledger: Ledger) -> None:
    ent = new_applicant()
    a = receipt("GT-PRODUCT", ent, "PRODUCT-Z", "8000000.00")
    b = receipt("CT-PRODUCT", ent, "product z", "12000000.00")
    c = receipt("GT-PRODUCT", ent, "PRODUCT Z", "5000000.00")
    d = receipt("CT-PRODUCT", ent, "Product-Z", "15000000.00")
    assert summary(await ledger.decide(a, b, c, d)) == [
        ("approved", "8000000.00", None, []),
        ("approved", "4000000.00", None, ["TOP_UP"]),
        ("rejected", "0.00", None, ["DUPLICATE"]),
        ("approved", "3000000.00", None, ["TOP_UP"]),
    ]
    ids = [r["application_id"] for r in (a, b, c, d)]

    # Without A, B is the base (12M, +8M), C still a duplicate (5M < 12M), D a top-up of B (3M).
    revoked = await ledger.revoke(ids[0])
    assert revoked["amount"] == "8000000.00"
    _, b_now, c_now, d_now = await ledger.latest(ids)
    assert summary([b_now, c_now, d_now]) == [
        ("approved", "12000000.00", None, ["REDECIDED"]),
        ("rejected", "0.00", None, ["DUPLICATE"]),
        ("approved", "3000000.00", None, ["REDECIDED", "TOP_UP"]),
    ]
    assert (b_now["top_up_of"], d_now["top_up_of"]) == (None, ids[1])
    caused = await ledger.events_caused_by(await ledger.revocation_event_id(ids[0]))
    assert [(e["type"], e["subject"]) for e in caused] == [("award.decided", ids[1]), ("award.decided", ids[3])]
    assert all(e["correlation_id"] != caused[0]["causation_id"] for e in caused)
    entries = (await ledger.client.get("/v1/journal", params={"after": 0, "limit": 1000},
                                       headers=AUD)).json()["items"]
    mine = [(e["kind"], e["application_id"]) for e in entries if e["application_id"] in ids]
    assert mine[-2:] == [("revocation", ids[0]), ("redecision", ids[1])]  # D moved no money

    # Without B too, C is the base (5M, granted now) and D tops it up to 15M (+7M).
    await ledger.revoke(ids[1])
    c_now, d_now = await ledger.latest(ids[2:])
    assert summary([c_now, d_now]) == [
        ("approved", "5000000.00", None, ["REDECIDED"]),
        ("approved", "10000000.00", None, ["REDECIDED", "TOP_UP"]),
    ]
    assert d_now["top_up_of"] == ids[2]
    live = await scalar(ledger.maker, "SELECT sum(amount_fen) FROM awards WHERE beneficiary = :b AND NOT revoked",
                        b=ent)
    assert live == 15_000_000_00  # the chain holds the highest entitlement left, once
    committed = await scalar(ledger.maker, "SELECT committed_fen FROM pools WHERE beneficiary = :b "
                                           "AND pool = 'CT-PRODUCT/subject'", b=ent)
    assert committed == 10_000_000_00  # D's 10M; B's 12M went back
    verify = (await ledger.client.get("/v1/audit/verify", headers=AUD)).json()
    assert verify["ok"] is True, verify


async def test_a_re_decided_member_left_with_nothing_is_revoked_by_the_ledger(ledger: Ledger) -> None:
    ent = new_applicant()
    tight = ("TIGHT/beneficiary-year", "beneficiary_year", "10.00", 2026, None)
    wide = ("WIDE/beneficiary-year", "beneficiary_year", "100.00", 2026, None)

    def app(subject: str, entitlement: str, *specs: tuple[str, str, str, int | None, str | None]) -> dict[str, Any]:
        return receipt("GT-PRODUCT", ent, subject, entitlement, year=2026, pools=pools(ent, *specs))

    a, b = app("KIT-9", "8.00", wide), app("kit 9", "10.00", tight)
    other = app("OTHER-1", "6.00", tight)  # fills the tight pool outside the chain
    c = app("Kit-9", "12.00", tight)
    assert [x[:2] for x in summary(await ledger.decide(a, b, other, c))] == [
        ("approved", "8.00"), ("approved", "2.00"), ("approved", "6.00"), ("approved", "2.00")]

    # Without A: B is due 10 but the tight pool has 4 (its own 2 and C's 2); C is due 8 and gets nothing.
    await ledger.revoke(a["application_id"])
    b_now, c_now = await ledger.latest([b["application_id"], c["application_id"]])
    assert summary([b_now]) == [("partially_approved", "4.00", "TIGHT/beneficiary-year",
                                 ["REDECIDED", "CAP_PARTLY_USED"])]
    assert c_now["status"] == "approved"  # its last decision stands; the award itself went back:
    withdrawn = await ledger.client.get("/v1/awards", params={"beneficiary": ent}, headers=AUD)
    by_app = {x["application_id"]: x for x in withdrawn.json()["items"]}
    assert by_app[c["application_id"]]["status"] == "revoked"
    assert by_app[c["application_id"]]["revocation"]["revoked_by"] == "ledger"
    caused = await ledger.events_caused_by(await ledger.revocation_event_id(a["application_id"]))
    assert [(e["type"], e["subject"]) for e in caused] == [("award.decided", b["application_id"]),
                                                           ("award.revoked", c["application_id"])]
    assert "re-decided after award" in caused[1]["data"]["reason"]
    tight_committed = await scalar(ledger.maker, "SELECT committed_fen FROM pools WHERE beneficiary = :b "
                                                 "AND pool = 'TIGHT/beneficiary-year'", b=ent)
    assert tight_committed == 10_00  # B's 4 and the other application's 6
    # An operator revoking C now finds it revoked already.
    again = await ledger.client.post(f"/v1/awards/{c['application_id']}/revoke", json={"reason": "x"}, headers=OP)
    assert again.status_code == 200 and again.json()["revoked_by"] == "ledger"


# ---------------------------------------------------------------------------------------------
# Replay, after all of the above and under several catalog versions and calls
# ---------------------------------------------------------------------------------------------


async def test_replay_is_equal_after_all_of_it_across_catalog_versions_and_calls(ledger: Ledger) -> None:
    ent = new_applicant()
    calls = [(f"call_{new_applicant()[-8:].lower()}", "5000000.00") for _ in range(2)]
    first = receipt("GT-EQUITY", ent, "ROUND-V1", "3000000.00", year=2026, call=calls[0])
    second = receipt("GT-EQUITY", ent, "ROUND-V2", "3000000.00", year=2026, call=calls[1])
    second["catalog_version"] = "sha256:" + "2" * 64  # a later version, pinned by the later call
    top = receipt("GT-EQUITY", ent, "round v1", "4000000.00", year=2026, call=calls[1])
    out = await ledger.decide(first, second, top)
    assert [d["catalog_version"] for d in out] == [first["catalog_version"], "sha256:" + "2" * 64,
                                                  first["catalog_version"]]
    await ledger.revoke(first["application_id"])
    (top_now,) = await ledger.latest([top["application_id"]])
    # The base now, due 4M: the second call's budget has 2M left once its 1M top-up went back.
    assert (top_now["status"], top_now["awarded"], top_now["top_up_of"], top_now["limited_by"]) == (
        "partially_approved", "2000000.00", None, "call-budget")

    code, report, err = await run_replay(ledger.settings, "--source", "outbox")
    assert code == 0, report + err
    assert "replay EQUAL" in report
    revocations = await scalar(ledger.maker, "SELECT count(*) FROM revocations WHERE revoked_by <> 'ledger'")
    assert f"{revocations} revocations" in report
    assert await scalar(ledger.maker, "SELECT count(*) FROM journal_entries WHERE kind = 'redecision'") >= 4
