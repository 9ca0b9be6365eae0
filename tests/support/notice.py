"""The 公示 page and the open data in tests: a notice seeded as the ledger and the finaliser make
it (final awards, running notices, an ended one not yet final, revoked ones), and the checks
every rendering of a public page goes through (well-formed HTML5, labels, table headers)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import html5lib
from lxml import html as lxml_html
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notify.finaliser.handlers import Finaliser
from services.notify.handlers import record_award_events, record_call_opened
from services.notify.repository import SqlNotifyRepository
from shared.contracts.envelope import Event, new_event
from shared.contracts.events import new_typed_event
from tests.support.notify import applicant_id, revoked
from tests.support.policy import call_opened

# Published at 16:00 Beijing time on 1 May 2024, the notice ending an hour later.
PAST = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
HOUR = 3600

# The calls of the seeded notice (call ids sort as the page orders groups within a program's year:
# descending). EQUITY_UNTITLED is never opened in notify's replica: its title is not known there.
EQUITY_CALL = "call_2024_equity_2"
EQUITY_TITLE = "2024年度基因治疗企业股权融资资助（第二批）"
EQUITY_UNTITLED = "call_2024_equity_1"
PRODUCT_CALL = "call_2025_product_1"
PRODUCT_TITLE = "2025年度基因治疗产品上市资金支持（第一批）"


def award(
    *, program: str = "GT-EQUITY", year: int = 2024, amount: str = "400000.00", name: str = "上海某某生物科技有限公司",
    subject: str | None = None, partner_id: str = "ptn_notice", call_id: str | None = None,
) -> Event:
    """An approved `award.decided` as the ledger publishes it (with the receipt's `call_id`, last,
    when given; without, as before the ledger passed it on)."""
    app_id = "app_" + uuid.uuid4().hex
    data = {
        "application_id": app_id, "partner_id": partner_id, "program": program, "year": year,
        "applicant": {"id": applicant_id(), "name": name}, "subject": subject or f"ROUND-{app_id[-8:]}",
        "status": "approved", "entitlement": amount, "awarded": amount, "limited_by": None, "reasons": [],
        "top_up_of": None, "draws": [], "catalog_version": "test",
    }
    if call_id is not None:
        data["call_id"] = call_id
    return new_event("award.decided", source="grantline.ledger", subject=app_id, data=data)


async def record(maker: async_sessionmaker[AsyncSession], events: Sequence[Event], *, now: datetime,
                 notice_seconds: int = HOUR) -> None:
    """As notify's award consumer writes them: published at `now`, the notice `notice_seconds` long."""
    def refuse(event: Event, error: BaseException | str) -> None:
        raise AssertionError(f"{event.type} dead-lettered: {error}")

    async with maker() as session, session.begin():
        await record_award_events(SqlNotifyRepository(session), list(events), refuse,
                                  notice_period_seconds=notice_seconds, now=now)


async def open_calls(maker: async_sessionmaker[AsyncSession], *calls: tuple[str, str, int, str]) -> None:
    """`call.opened` for each (id, program, year, title), through notify's policy consumer."""
    async with maker() as session, session.begin():
        for call_id, program, year, title in calls:
            data = call_opened(program, year, call_id=call_id, title=title)
            await record_call_opened(session, new_typed_event(data, source="grantline.eligibility", subject=call_id))


async def finalize(maker: async_sessionmaker[AsyncSession]) -> int:
    """The finaliser's ticks until nothing more is due: every ended notice without an objection is final."""
    finaliser, total = Finaliser(maker), 0
    while count := await finaliser.tick():
        total += count
    return total


@dataclass
class Seeded:
    """What `seed` put on the notice, by subject."""

    final: list[Event] = field(default_factory=list)  # ended in 2024 and finalized
    running: list[Event] = field(default_factory=list)  # published now, notice runs a day
    ended: list[Event] = field(default_factory=list)  # ended, not finalized (no finaliser tick since)
    revoked_final: list[Event] = field(default_factory=list)  # final, then revoked: off the notice
    revoked_running: list[Event] = field(default_factory=list)

    @staticmethod
    def subjects(events: Sequence[Event]) -> set[str]:
        return {str(e.data["subject"]) for e in events}


async def seed(maker: async_sessionmaker[AsyncSession], now: datetime, *, finaliser_running: bool = False) -> Seeded:
    """Final awards of GT-EQUITY and GT-CLIN (2024) from before calls were passed on (no call),
    revoked ones, an ended notice not final yet under a call whose title notify does not know
    (final too when a notify instance runs its finaliser on the schema: `finaliser_running`),
    and running notices of a GT-EQUITY 2024 call and a GT-PRODUCT 2025 call."""
    s = Seeded()
    await open_calls(maker, (EQUITY_CALL, "GT-EQUITY", 2024, EQUITY_TITLE),
                     (PRODUCT_CALL, "GT-PRODUCT", 2025, PRODUCT_TITLE))
    s.final = [
        award(amount="30000000.00", subject="FINAL-EQ-3000W", name="上海甲基因科技有限公司"),
        award(amount="1234567.89", subject="FINAL-EQ-ODD", name='=HYPERLINK("x"), "乙" 公司'),
        award(program="GT-CLIN", amount="500000.00", subject="FINAL-CLIN-50W", name="复旦某某医院"),
        award(program="GT-CLIN", amount="150000000.00", subject="FINAL-CLIN-1.5Y", name="上海丙医院"),
    ]
    s.revoked_final = [award(amount="800000.00", subject="REVOKED-AFTER-FINAL")]
    await record(maker, s.final + s.revoked_final, now=PAST)
    finalized = await finalize(maker)  # a running instance's finaliser may take some first
    assert finalized == len(s.final) + len(s.revoked_final) or finaliser_running
    await record(maker, [revoked(s.revoked_final[0])], now=PAST + timedelta(days=1))
    s.ended = [award(amount="200000.00", subject="ENDED-NOT-FINAL", call_id=EQUITY_UNTITLED)]
    await record(maker, s.ended, now=PAST + timedelta(days=2))
    s.running = [
        award(amount="600000.00", subject="RUNNING-EQ-A", call_id=EQUITY_CALL),
        award(amount="700000.00", subject="RUNNING-EQ-B", call_id=EQUITY_CALL),
        award(program="GT-PRODUCT", year=2025, amount="20000000.00", subject="RUNNING-PRODUCT-2025",
              call_id=PRODUCT_CALL),
    ]
    s.revoked_running = [award(amount="900000.00", subject="REVOKED-RUNNING", call_id=EQUITY_CALL)]
    await record(maker, s.running + s.revoked_running, now=now, notice_seconds=24 * HOUR)
    await record(maker, [revoked(s.revoked_running[0])], now=now)
    return s


# --- checks of a rendered page ------------------------------------------------------------------


def html5_errors(text: str) -> list[str]:
    """Every parse error the WHATWG HTML parsing algorithm reports (html5lib): unclosed or
    misplaced elements, stray end tags, bad attributes, a missing doctype, content a table
    would push out of itself."""
    parser = html5lib.HTMLParser(strict=False)
    parser.parse(text)
    return [f"line {pos[0]} col {pos[1]}: {code} {data}" for pos, code, data in parser.errors]


def accessibility_problems(text: str) -> list[str]:
    """What a screen reader user would miss: the language, a table's caption, header cells'
    scope, a label for every form control, unique ids."""
    doc = lxml_html.document_fromstring(text)
    problems = []
    if doc.get("lang") != "zh-CN":
        problems.append(f"html lang is {doc.get('lang')!r}")
    for table in doc.iter("table"):
        if table.find("caption") is None:
            problems.append(f"table {table.get('id')} has no caption")
        for th in table.iter("th"):
            if th.get("scope") not in ("col", "row", "rowgroup", "colgroup"):
                problems.append(f"th without scope: {th.text_content()[:40]!r}")
    labelled = {label.get("for") for label in doc.iter("label") if label.get("for")}
    for control in doc.xpath("//input[not(@type='hidden')] | //select | //textarea"):
        wrapped = any(a.tag == "label" for a in control.iterancestors())
        if not (wrapped or control.get("id") in labelled or control.get("aria-label")):
            problems.append(f"{control.tag} {control.get('name')!r} has no label")
    ids = [e.get("id") for e in doc.iter() if isinstance(e.tag, str) and e.get("id")]
    problems += [f"duplicate id {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    return problems
