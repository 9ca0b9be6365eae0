"""The announcement page escapes every value and carries no script."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.notify.dashboard.schemas import render_objections
from services.notify.notice_page.domain import Filters, NoticePage, groups_of
from services.notify.notice_page.schemas import render_notice_page

ITEM = {
    "id": "ann_1",
    "applicant_name": "<script>alert(1)</script>上海某某",
    "program": "GT-EQUITY\"><img src=x onerror=alert(2)>",
    "year": 2024,
    "subject": "R&D <b>",
    "amount": "400000.00",
    "published_at": "2024-05-01T08:00:00+00:00",
    "notice_ends_at": "2024-05-06T08:00:00+00:00",
    "finalized_at": None,
    "status": "under_notice",
    "objections_open": 0,
    "log_index": 7,
}
NOW = datetime(2024, 5, 2, tzinfo=UTC)


def render(items: list[dict[str, Any]], filters: Filters = Filters()) -> str:
    page = NoticePage(filters=filters, limit=50, groups=groups_of(items, None), count=len(items), next_cursor=None,
                      continues=False, years=[2024], programs=["GT-EQUITY"], log_size=10)
    return render_notice_page(page, now=NOW)


def test_values_are_escaped() -> None:
    html = render([ITEM])
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;上海某某" in html
    assert "<img" not in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "R&amp;D &lt;b&gt;" in html


def test_headings_in_chinese_and_english() -> None:
    html = render([ITEM], Filters(year=2024, program="GT-EQUITY"))
    for text in ("资助公示", "Public notice", "申请单位", "Applicant", "公示截止", "Notice ends", "公示中"):
        assert text in html
    assert "2024-05-06 16:00" in html and "+00:00</time>" not in html  # Beijing time
    assert "40万元" in html


def test_empty_page() -> None:
    assert "No announcements" in render([])


def test_the_objections_page_speaks_beijing_time_and_chinese_program_names() -> None:
    objection = {
        "id": "obj_1", "announcement_id": "ann_1", "application_id": "app_1", "applicant_name": "上海某某",
        "program": "GT-PRODUCT", "year": 2024, "subject": "S", "status": "dismissed", "statement": "x",
        "name": None, "organisation": None, "contact": None, "filed_at": "2024-05-01T08:00:00.123456+00:00",
        "resolution": {"outcome": "dismissed", "reason": "查无实据", "by": {"id": "rev_1", "name": "张审核"},
                       "at": "2024-05-02T09:30:00+00:00"},
    }
    html = render_objections(objections=[objection], status="all", next_cursor=None, csrf="c", who="w", nav="",
                             resolves=False, sees_objector=False)
    assert ">2024-05-01 16:00</time>" in html and ">2024-05-02 17:30</time>" in html
    assert "基因治疗产品上市资金支持（沪科规〔2023〕10号）" in html
    assert "异议不成立 dismissed" in html and "2024年度" in html
    assert ".123456" not in html.replace('datetime="2024-05-01T08:00:00.123456+00:00"', "").replace(
        'title="2024-05-01T08:00:00.123456+00:00"', "")
