"""The 公示 grouped by call (申报批次), pure parts: an award event's call onto its announcement, a
`call.opened` into the replica's row, the page's cursor with the call in it, groups cut at a call,
and each group's header (the call's title; its year and id when the title is unknown; the support
year without a call)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lxml import html as lxml_html

from services.notify import domain
from services.notify.notice_page.domain import Filters, NoticePage, Position, groups_of
from services.notify.notice_page.schemas import render_notice_page
from shared.contracts.envelope import new_event
from shared.contracts.events import new_typed_event
from shared.web.display import program_label
from tests.support.policy import call_opened

NOW = datetime(2025, 6, 3, 2, 0, tzinfo=UTC)
TITLE = "2025年度基因治疗企业股权融资资助（第一批）"


def decided(call_id: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "application_id": "app_1", "partner_id": "ptn_1", "program": "GT-EQUITY", "year": 2025,
        "applicant": {"id": "91310115MA1H7G0L0C", "name": "上海某某生物科技有限公司"}, "subject": "ROUND-1",
        "status": "approved", "entitlement": "400000.00", "awarded": "400000.00", "limited_by": None,
        "reasons": [], "top_up_of": None, "draws": [], "catalog_version": "v", "review": "auto",
    }
    return data if call_id is None else data | {"call_id": call_id}


@pytest.mark.parametrize("call_id", ["call_1", None])
def test_an_announcement_takes_the_award_events_call(call_id: str | None) -> None:
    event = new_event("award.decided", source="grantline.ledger", subject="app_1", data=decided(call_id))
    plan = domain.plan_award_event(event, notice_ends_at=NOW + timedelta(days=5), now=NOW)
    assert plan is not None and plan.announcement is not None
    assert plan.announcement.call_id == call_id
    assert "call_id" not in plan.announcement.published.data  # announcement.published is unchanged


def test_a_call_opened_is_the_replicas_row() -> None:
    data = call_opened("GT-EQUITY", 2025, call_id="call_x", title=f"  {TITLE} ")
    row = domain.call_title(new_typed_event(data, source="grantline.eligibility", subject="call_x"))
    assert (row.id, row.program, row.year, row.title) == ("call_x", "GT-EQUITY", 2025, TITLE)
    assert row.opened_at == datetime.fromisoformat(data.opened_at)
    bad = new_event("call.opened", source="grantline.eligibility", subject="call_x",
                    data={**data.to_data(), "title": None})
    with pytest.raises(ValueError, match="title"):
        domain.call_title(bad)


def test_the_cursor_names_the_call_and_a_cursor_from_before_is_refused() -> None:
    at = NOW
    for call in ("call_1", ""):
        position = Position(2025, "GT-EQUITY", call, at, "app_1")
        assert Position.parse(position.key()) == position
    before = json.dumps([2025, "GT-EQUITY", at.isoformat(), "app_1"])  # the page's cursor before calls
    with pytest.raises(ValueError):
        Position.parse(before)
    with pytest.raises(ValueError):
        Position.parse(json.dumps([2025, "GT-EQUITY", None, at.isoformat(), "app_1"]))


def item(subject: str, call_id: str | None, title: str | None = None, year: int = 2025) -> dict[str, Any]:
    public = domain.public_announcement(
        announcement_id=f"ann_{subject}", applicant_name="甲公司", program="GT-EQUITY", year=year, subject=subject,
        amount_fen=40_000_000, published_at=NOW, notice_ends_at=NOW + timedelta(days=5), finalized_at=None,
        objections_open=0)
    return public | {"log_index": None, "amount_fen": 40_000_000, "call_id": call_id, "call_title": title}


def test_groups_are_cut_where_the_call_changes_and_a_continued_call_says_so() -> None:
    items = [item("A", "call_2", TITLE), item("B", "call_2", TITLE), item("C", "call_1"), item("D", None),
             item("E", None)]
    groups = groups_of(items, None)
    assert [(g.call_id, g.call_title, [i["subject"] for i in g.items]) for g in groups] == [
        ("call_2", TITLE, ["A", "B"]), ("call_1", None, ["C"]), (None, None, ["D", "E"])]
    assert not any(g.continued for g in groups)
    after_call = groups_of(items[1:], Position(2025, "GT-EQUITY", "call_2", NOW, "app_a"))
    assert [g.continued for g in after_call] == [True, False, False]
    after_none = groups_of(items[3:], Position(2025, "GT-EQUITY", "", NOW, "app_d"))
    assert [g.continued for g in after_none] == [True]
    other_call = groups_of(items[2:], Position(2025, "GT-EQUITY", "call_2", NOW, "app_b"))
    assert [g.continued for g in other_call] == [False, False]


def test_each_group_is_headed_by_the_program_then_the_calls_title() -> None:
    items = [item("A", "call_2", TITLE), item("C", "call_1"), item("D", None, year=2024)]
    groups = groups_of(items, None)
    page = NoticePage(filters=Filters(), limit=50, groups=groups, count=3, next_cursor=None, continues=False,
                      years=[2025, 2024], programs=["GT-EQUITY"], log_size=0)
    doc = lxml_html.document_fromstring(render_notice_page(page, now=NOW))
    heads = [" ".join(th.text_content().split()) for th in doc.xpath("//th[@scope='rowgroup']")]
    label = program_label("GT-EQUITY")
    assert label == "基因治疗企业股权融资资助（沪科规〔2023〕10号）"
    assert heads[0].startswith(f"{label} · {TITLE}")
    assert heads[1].startswith(f"{label} · 2025年度 申报批次 call_1")
    assert heads[2].startswith(f"{label} · 2024年度") and "申报批次" not in heads[2]
    assert [t.get("data-call") for t in doc.xpath("//tbody[@data-program]")] == ["call_2", "call_1", None]
