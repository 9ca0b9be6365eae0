"""The announcement page escapes every value and carries no script."""

from __future__ import annotations

from services.notify.schemas import render_announcements

ITEM = {
    "applicant_name": "<script>alert(1)</script>上海某某",
    "program": "GT-EQUITY\"><img src=x onerror=alert(2)>",
    "year": 2024,
    "subject": "R&D <b>",
    "amount": "400000.00",
    "published_at": "2024-05-01T08:00:00+00:00",
    "notice_ends_at": "2024-05-06T08:00:00+00:00",
    "finalized_at": None,
    "status": "under_notice",
}


def test_values_are_escaped() -> None:
    html = render_announcements([ITEM])
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;上海某某" in html
    assert "<img" not in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(2)&gt;" in html
    assert "R&amp;D &lt;b&gt;" in html


def test_headings_in_chinese_and_english() -> None:
    html = render_announcements([ITEM], year=2024, program="GT-EQUITY")
    for text in ("资助公示", "Public notice", "申请单位", "Applicant", "公示截止", "Notice ends", "公示中"):
        assert text in html
    assert "2024-05-06 08:00:00 +00:00" in html


def test_empty_page() -> None:
    assert "No announcements" in render_announcements([])
