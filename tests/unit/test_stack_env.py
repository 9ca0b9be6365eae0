"""The settings `make up` passes to the services (tools/stack/cli.py): an override in the environment
beats what .grantline/env persisted, also for a setting with no default of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.stack import cli


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRANTLINE_HOME", str(tmp_path))
    for key in cli.ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    return tmp_path


def test_the_notice_period_in_the_environment_beats_the_persisted_one(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (home / "env").write_text("GRANTLINE_NOTICE_PERIOD_SECONDS=432000\n")
    monkeypatch.setenv("GRANTLINE_NOTICE_PERIOD_SECONDS", "90")

    values, _, _ = cli.resolve_env()

    assert cli.child_env(values)["GRANTLINE_NOTICE_PERIOD_SECONDS"] == "90"
    assert cli.read_env_file(home / "env")["GRANTLINE_NOTICE_PERIOD_SECONDS"] == "90"


def test_no_notice_period_anywhere_leaves_it_unset(home: Path) -> None:
    values, _, _ = cli.resolve_env()

    assert "GRANTLINE_NOTICE_PERIOD_SECONDS" not in cli.child_env(values)
    assert "GRANTLINE_NOTICE_PERIOD_SECONDS" not in cli.read_env_file(home / "env")
