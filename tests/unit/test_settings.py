"""Settings carry their units last; the names they had before still configure them."""

from __future__ import annotations

import pytest

from shared.config.settings import Settings

RENAMED = {
    "GRANTLINE_NOTICE_PERIOD": ("notice_period_seconds", "7", 7),
    "GRANTLINE_WEBHOOK_BACKOFF": ("webhook_backoff_seconds", "0.5", 0.5),
    "GRANTLINE_WEBHOOK_MAX_ATTEMPTS": ("webhook_attempts_max", "4", 4),
    "GRANTLINE_CONSUMER_MAX_ATTEMPTS": ("consumer_attempts_max", "5", 5),
    "GRANTLINE_PARTNER_RATE_PER_S": ("partner_rate_per_second", "12.5", 12.5),
    "GRANTLINE_MAX_BODY_BYTES": ("body_max_bytes", "1024", 1024),
}


@pytest.mark.parametrize("old_env", sorted(RENAMED))
def test_an_old_environment_name_still_sets_the_renamed_setting(
    monkeypatch: pytest.MonkeyPatch, old_env: str
) -> None:
    field, raw, expected = RENAMED[old_env]
    monkeypatch.setenv(old_env, raw)
    assert getattr(Settings(), field) == expected


@pytest.mark.parametrize("old_env", sorted(RENAMED))
def test_the_new_environment_name_wins_over_the_old_one(monkeypatch: pytest.MonkeyPatch, old_env: str) -> None:
    field, raw, _ = RENAMED[old_env]
    monkeypatch.setenv(old_env, raw)
    monkeypatch.setenv("GRANTLINE_" + field.upper(), "9")
    assert getattr(Settings(), field) == 9


def test_settings_are_built_by_their_new_names_in_code() -> None:
    assert Settings(notice_period_seconds=3, webhook_attempts_max=2).notice_period_seconds == 3
