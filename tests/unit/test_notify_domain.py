"""Notify's pure logic: signatures, the retry schedule, what is announced, the public view."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from services.notify import domain
from services.notify.dispatcher import domain as dispatching
from services.notify.finaliser import domain as finalising
from shared.contracts.events import AwardDecided
from shared.web.auth import webhook_secret_for

SECRET = webhook_secret_for("ptn_1", "signing-key")


def test_signature_header_format_and_value() -> None:
    body = domain.webhook_body("0b6c…", "award.decided", "app_1", {"awarded": "1.00", "名": "上海"})
    header = domain.signature_header(SECRET, 1_700_000_000, body)
    match = re.fullmatch(r"t=(\d+),v1=([0-9a-f]{64})", header)
    assert match is not None
    assert match[1] == "1700000000"
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert match[2] == expected


def test_webhook_body_shape() -> None:
    body = orjson.loads(domain.webhook_body("e1", "award.revoked", "app_9", {"reason": "x"}))
    assert body == {"id": "e1", "type": "award.revoked", "application_id": "app_9", "data": {"reason": "x"}}


def test_secret_is_derived_per_partner() -> None:
    assert SECRET.startswith("whsec_")
    assert webhook_secret_for("ptn_2", "signing-key") != SECRET
    assert webhook_secret_for("ptn_1", "other-key") != SECRET


def test_verify_accepts_own_signature_and_rejects_tampering() -> None:
    body = b'{"id":"e"}'
    now = 1_700_000_000
    header = domain.signature_header(SECRET, now, body)
    assert domain.verify_signature(SECRET, header, body, now=now + 10)
    assert not domain.verify_signature(SECRET, header, body + b" ", now=now)
    assert not domain.verify_signature("whsec_other", header, body, now=now)
    assert not domain.verify_signature(SECRET, header, body, now=now + 301)  # stale: replay refused
    assert not domain.verify_signature(SECRET, header.replace("t=", "t=1"), body, now=now)
    assert not domain.verify_signature(SECRET, "garbage", body, now=now)
    assert not domain.verify_signature(SECRET, header.upper(), body, now=now)


def test_backoff_doubles_from_the_first_delay() -> None:
    assert dispatching.backoff_schedule(2.0, 8) == [2, 4, 8, 16, 32, 64, 128]
    assert dispatching.backoff_schedule(0.05, 3) == pytest.approx([0.05, 0.1])
    assert dispatching.backoff_schedule(1, 1) == []
    with pytest.raises(ValueError):
        dispatching.backoff_delay(0, 1.0)


def test_after_attempt_retries_then_parks() -> None:
    kw = {"max_attempts": 3, "first_delay": 0.5}
    assert dispatching.after_attempt(ok=False, round_attempts=1, **kw) == dispatching.AttemptOutcome("pending", 0.5)
    assert dispatching.after_attempt(ok=False, round_attempts=2, **kw) == dispatching.AttemptOutcome("pending", 1.0)
    assert dispatching.after_attempt(ok=False, round_attempts=3, **kw).status == "parked"
    assert dispatching.after_attempt(ok=True, round_attempts=3, **kw).status == "delivered"


@pytest.mark.parametrize(
    ("status", "awarded", "announced"),
    [
        ("approved", "1600000.00", True),
        ("partially_approved", "400000.00", True),
        ("partially_approved", "0.00", False),
        ("rejected", "0.00", False),
        ("ineligible", "0.00", False),
        ("approved", "not-money", False),
        ("approved", None, False),
    ],
)
def test_which_decisions_are_announced(status: str, awarded: str | None, announced: bool) -> None:
    assert domain.should_announce(status, awarded) is announced


def test_published_and_finalized_data() -> None:
    at = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    ends = domain.notice_ends(at, 432_000)
    assert ends == at + timedelta(days=5)
    decided = {
        "application_id": "app_1", "partner_id": "ptn_1", "program": "GT-EQUITY", "year": 2024,
        "applicant": {"id": "91310115MA1H7G0L0C", "name": "上海某某生物科技有限公司"},
        "subject": "ROUND-2024-B", "status": "partially_approved", "awarded": "400000.00",
    }
    assert domain.published_data(AwardDecided.model_validate(decided), application_id="app_1", published_at=at,
                                 notice_ends_at=ends).to_data() == {
        "application_id": "app_1", "partner_id": "ptn_1", "program": "GT-EQUITY", "year": 2024,
        "applicant_name": "上海某某生物科技有限公司", "subject": "ROUND-2024-B", "amount": "400000.00",
        "published_at": "2024-05-01T08:00:00+00:00", "notice_ends_at": "2024-05-06T08:00:00+00:00",
    }
    fin = finalising.finalized_data(application_id="app_1", partner_id="ptn_1", program="GT-EQUITY", year=2024,
                                subject="S", amount_fen=40_000_000, finalized_at=ends).to_data()
    assert fin == {"application_id": "app_1", "partner_id": "ptn_1", "program": "GT-EQUITY", "year": 2024,
                   "subject": "S", "amount": "400000.00", "finalized_at": "2024-05-06T08:00:00+00:00"}


def test_public_view_has_no_ids_or_partner() -> None:
    at = datetime(2024, 5, 1, tzinfo=UTC)
    view = domain.public_announcement(announcement_id="ann_1", applicant_name="A", program="GT-PCT", year=2024,
                                      subject="S", amount_fen=123, published_at=at, notice_ends_at=at,
                                      finalized_at=None, objections_open=0)
    # The announcement's own public id (objections name it), never the application's, partner's or applicant's.
    assert set(view) == {"id", "applicant_name", "program", "year", "subject", "amount", "published_at",
                         "notice_ends_at", "finalized_at", "status", "objections_open"}
    assert view["amount"] == "1.23"
    assert view["status"] == "under_notice"
    assert domain.announcement_status(at) == "final"
