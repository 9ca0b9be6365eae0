"""Console scripts cannot talk to the wrong database (issue 14, item 4).

`. .grantline/env && grantline-replay` works in sh and in bash because every line is an
`export`; a script run where no settings are given says so in one sentence; one pointed at a
database without Grantline's tables says that, not a stack trace; every run names the database
and broker it uses, without the password.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config.settings import Settings
from tests.support.servers import create_database
from tools.stack import cli as stack_cli

BIN = Path(sys.executable).parent
SHELLS = [s for s in ("sh", "bash") if shutil.which(s)]


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment of a person at a fresh terminal: no database, no broker, no GRANTLINE_*."""
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith("GRANTLINE_") and k not in ("DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS")
    }
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def _write_env(folder: Path, settings: Settings) -> Path:
    home = folder / ".grantline"
    stack_cli.write_env_file(home / "env", {
        "DATABASE_URL": settings.database_url,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "GRANTLINE_TOPIC_NAMESPACE": settings.topic_namespace,
        "GRANTLINE_OPERATOR_TOKEN": "an operator's token with 'quotes' and spaces",
    })
    return home / "env"


def test_every_line_of_the_env_file_is_an_export(tmp_path: Path) -> None:
    stack_cli.write_env_file(tmp_path / "env", {"DATABASE_URL": "postgresql://a@b/c", "GRANTLINE_X": "y z"})
    lines = [line for line in (tmp_path / "env").read_text().splitlines() if line and not line.startswith("#")]
    assert lines and all(line.startswith("export ") for line in lines)


@pytest.mark.parametrize("shell", SHELLS)
async def test_sourcing_the_env_file_then_replay_uses_that_database(
    shell: str, settings: Settings, tmp_path: Path
) -> None:
    _write_env(tmp_path, settings)
    proc = subprocess.run(
        [shell, "-c", ". ./.grantline/env && cd / && grantline-replay --source outbox"],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "equal" in proc.stdout.lower()
    assert "from the environment" in proc.stderr


async def test_replay_reads_the_env_file_itself_when_nothing_is_set(settings: Settings, tmp_path: Path) -> None:
    env_file = _write_env(tmp_path, settings)
    proc = subprocess.run(
        ["grantline-replay", "--source", "outbox"], cwd=tmp_path / ".grantline",
        env=_clean_env(), capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"(from {env_file.resolve()})" in proc.stderr


def test_with_no_settings_and_no_env_file_the_script_says_so_in_one_sentence(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["grantline-replay"], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "grantline-replay: no database given: set DATABASE_URL, or run it where `make up` wrote "
        ".grantline/env (or `. .grantline/env` first)."
    ]
    assert "Traceback" not in proc.stderr


def test_a_database_without_grantline_tables_is_named_not_a_stack_trace(pg_admin_dsn: str, tmp_path: Path) -> None:
    empty = create_database(pg_admin_dsn)
    proc = subprocess.run(
        ["grantline-replay", "--source", "outbox"], cwd=tmp_path,
        env=_clean_env(DATABASE_URL=empty, KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1"),
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "has no ledger.journal_entries table" in proc.stderr


def test_the_password_is_never_printed(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["grantline-replay", "--source", "outbox"], cwd=tmp_path,
        env=_clean_env(DATABASE_URL="postgresql://auditor:s3cret-pw@127.0.0.1:1/nowhere"),
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "s3cret-pw" not in proc.stderr + proc.stdout
    assert "postgresql://auditor:***@127.0.0.1:1/nowhere" in proc.stderr


def test_migrate_with_no_settings_says_so_in_one_sentence(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["grantline-migrate"], cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("grantline-migrate: no database given")
    assert "Traceback" not in proc.stderr
