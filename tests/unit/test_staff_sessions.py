"""The staff pages' sessions and CSRF tokens (shared.web.sessions), with the clock passed in: a
session reads back as issued, and not once forged, expired, malformed, or signed for another page
or another operator token; a CSRF token belongs to its session; cross-site posts are told apart."""

from __future__ import annotations

import pytest

from shared.config.settings import Settings
from shared.web.sessions import (
    SESSION_SECONDS,
    csrf_ok,
    csrf_token,
    issue_session,
    read_session,
    same_origin,
    signing_key,
)
from shared.web.staffpages import staff_nav

NOW = 1_800_000_000.0
KEY = signing_key("operator-token-0123456789", b"grantline.test.page.v1")


def test_a_session_reads_back_as_issued_until_it_expires() -> None:
    value, session = issue_session(KEY, NOW, "stf_0123abcd")
    assert read_session(KEY, value, NOW + 1) == session
    assert session.who == "stf_0123abcd" and session.expires == int(NOW) + SESSION_SECONDS
    assert "stf_0123abcd" not in value  # the identity is encoded, and no token or key is in the cookie
    assert read_session(KEY, value, NOW + SESSION_SECONDS) is None


@pytest.mark.parametrize("who", ["operator", "auditor", "stf_张三", "a.b.c"])
def test_any_identity_survives_the_cookie(who: str) -> None:
    value, _ = issue_session(KEY, NOW, who)
    session = read_session(KEY, value, NOW)
    assert session is not None and session.who == who


def test_forged_malformed_and_foreign_cookies_are_no_session() -> None:
    value, _ = issue_session(KEY, NOW, "auditor")
    sid, expires, who, signature = value.split(".")
    operator = issue_session(KEY, NOW, "operator")[0].split(".")[2]
    forged = [
        f"{sid}.{expires}.{operator}.{signature}",  # another identity under the old signature
        f"{sid}.{int(expires) + 3600}.{who}.{signature}",  # a later expiry
        f"{sid}.{expires}.{who}.{'0' * 64}",
        "", None, "a.b.c", "a.b.c.d.e", f"{sid}.x{expires}.{who}.{signature}", value + "x" * 400,
    ]
    for cookie in forged:
        assert read_session(KEY, cookie, NOW) is None, cookie
    other_page = signing_key("operator-token-0123456789", b"grantline.other.page.v1")
    rotated = signing_key("a-new-operator-token-0123456789", b"grantline.test.page.v1")
    assert read_session(other_page, value, NOW) is None
    assert read_session(rotated, value, NOW) is None


def test_a_csrf_token_belongs_to_its_session() -> None:
    _, session = issue_session(KEY, NOW, "operator")
    _, other = issue_session(KEY, NOW, "operator")
    token = csrf_token(KEY, session)
    assert csrf_ok(KEY, session, token)
    assert not csrf_ok(KEY, other, token)
    assert not csrf_ok(KEY, session, None) and not csrf_ok(KEY, session, "")


def test_cross_site_posts_are_told_apart() -> None:
    assert same_origin("same-origin", "https://evil.example", "grantline.example")  # the browser's word wins
    assert not same_origin("cross-site", None, "grantline.example")
    assert same_origin(None, None, "grantline.example")
    assert same_origin(None, "https://grantline.example", "grantline.example")
    assert not same_origin(None, "https://evil.example", "grantline.example")


def test_the_staff_pages_link_to_each_other_at_their_public_urls() -> None:
    settings = Settings(ledger_public_url="https://ledger.example/", notify_public_url='https://n.example/"x')
    nav = staff_nav(settings, "objections")
    assert 'href="https://ledger.example/dashboard" id="nav-ledger">' in nav
    assert 'href="https://n.example/&quot;x/staff/objections" id="nav-objections" aria-current="page"' in nav
