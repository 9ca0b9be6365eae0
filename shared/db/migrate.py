"""Run every service's migrations (`python -m shared.db.migrate`), each into its own schema."""

from __future__ import annotations

import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from shared.config.cli import ToolError, tool_settings
from shared.db.roles import DEFAULT_PREFIX

SERVICES = ("intake", "eligibility", "ledger", "notify")
_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str, service: str, schema: str | None = None,
                   role_prefix: str = DEFAULT_PREFIX) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_ROOT / "services" / service / "migrations"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["schema"] = schema or service
    # Whose privileges the run grants at its end (shared.db.roles): <prefix>_<service>.
    cfg.attributes["role_prefix"] = role_prefix
    return cfg


def upgrade(database_url: str, service: str, schema: str | None = None, role_prefix: str = DEFAULT_PREFIX) -> None:
    command.upgrade(alembic_config(database_url, service, schema, role_prefix), "head")


def upgrade_all(database_url: str, role_prefix: str = DEFAULT_PREFIX) -> None:
    for service in SERVICES:
        if (_ROOT / "services" / service / "migrations").is_dir():
            upgrade(database_url, service, role_prefix=role_prefix)


def main() -> int:
    """`grantline-migrate [service …]`: every (or the named) service's migrations, as the owner role."""
    try:
        settings = tool_settings("grantline-migrate")
    except ToolError as exc:
        print(exc.sentence, file=sys.stderr)
        return 2
    url = settings.migration_database_url or settings.database_url
    services = sys.argv[1:] or list(SERVICES)
    for service in services:
        if service not in SERVICES:
            print(f"grantline-migrate: no service named {service!r} (one of {', '.join(SERVICES)})", file=sys.stderr)
            return 2
        upgrade(url, service, role_prefix=settings.db_role_prefix)
        print(f"migrated schema {service}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
