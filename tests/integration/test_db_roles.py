"""Least privilege in the database, on a real PostgreSQL: the roles `shared.db.roles` provisions and
the grants each service's migrations give, tried as an insider with the service's password would.

The module uses roles of its own prefix (roles belong to the whole server, and other modules'
stacks use the default ones), migrated by its owner role as `make up` does.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from shared.db.engine import dsn_for
from shared.db.migrate import upgrade, upgrade_all
from shared.db.roles import OWNER, SERVICES, Roles, grant_statements, provision, provision_local, role_dsn
from shared.db.roles import main as roles_main
from tests.support.servers import create_database, drop_database, run_sync

pytestmark = pytest.mark.integration

PREFIX = f"rt{secrets.token_hex(3)}"
ROLES = Roles(PREFIX)
REFUSED = asyncpg.InsufficientPrivilegeError


@pytest.fixture(scope="module")
def databases(pg_admin_dsn: str) -> Iterator[dict[str, str]]:
    """A database provisioned and migrated by the owner role: each role's DSN, and "admin"."""
    db = create_database(pg_admin_dsn)
    try:
        dsns = provision_local(db, prefix=PREFIX)
        upgrade_all(dsns[OWNER], role_prefix=PREFIX)
        yield {**dsns, "admin": db}
    finally:
        drop_database(pg_admin_dsn, db)
        run_sync(lambda: _drop_roles(pg_admin_dsn))


async def _drop_roles(admin_dsn: str) -> None:
    conn = await asyncpg.connect(dsn_for(admin_dsn, driver=""))
    try:
        for role in ROLES.all().values():
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await conn.close()


@pytest.fixture
async def as_ledger(databases: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await _connect(databases["ledger"], "ledger")
    yield conn
    await conn.close()


@pytest.fixture
async def as_admin(databases: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(dsn_for(databases["admin"], driver=""))
    yield conn
    await conn.close()


async def _connect(dsn: str, schema: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn_for(dsn, driver=""), server_settings={"search_path": schema})


async def _journal_row(conn: asyncpg.Connection) -> int:
    """Append one balanced journal entry after the last; its seq."""
    seq = int(await conn.fetchval("SELECT coalesce(max(seq), 0) + 1 FROM journal_entries"))
    postings = [{"account": "pool:x", "amount": -100}, {"account": "award:x", "amount": 100}]
    await conn.execute(
        "INSERT INTO journal_entries (seq, kind, application_id, event_id, postings, prev_hash, hash, recorded_for) "
        "VALUES ($1, 'award', 'app_roles', $2, $3::jsonb, $4, $5, 'tests')",
        seq, str(uuid.uuid4()), json.dumps(postings), "0" * 64, secrets.token_hex(32),
    )
    return seq


async def _outbox_row(conn: asyncpg.Connection) -> int:
    envelope = json.dumps({"id": str(uuid.uuid4()), "type": "test.roles"})
    seq = await conn.fetchval(
        "INSERT INTO outbox (id, topic, key, type, subject, envelope) "
        "VALUES ($1, 'grantline.test', 'k', 'test.roles', 's', $2::jsonb) RETURNING seq",
        uuid.uuid4(), envelope,
    )
    return int(seq)


# ------------------------------------------------------------------------------------- the journal


async def test_the_ledger_role_appends_to_the_journal(as_ledger: asyncpg.Connection) -> None:
    seq = await _journal_row(as_ledger)
    assert await as_ledger.fetchval("SELECT kind FROM journal_entries WHERE seq = $1", seq) == "award"


async def test_the_ledger_role_cannot_update_or_delete_a_journal_row(as_ledger: asyncpg.Connection) -> None:
    seq = await _journal_row(as_ledger)
    # Refused for want of the privilege, before the append-only trigger is even reached.
    with pytest.raises(REFUSED, match="permission denied for table journal_entries"):
        await as_ledger.execute("UPDATE journal_entries SET recorded_for = 'someone else' WHERE seq = $1", seq)
    with pytest.raises(REFUSED, match="permission denied for table journal_entries"):
        await as_ledger.execute("DELETE FROM journal_entries WHERE seq = $1", seq)
    with pytest.raises(REFUSED, match="permission denied for table journal_entries"):
        await as_ledger.execute("TRUNCATE journal_entries")
    assert await as_ledger.fetchval("SELECT recorded_for FROM journal_entries WHERE seq = $1", seq) == "tests"


async def test_the_ledger_role_cannot_disable_the_journals_trigger(as_ledger: asyncpg.Connection) -> None:
    with pytest.raises(REFUSED, match="must be owner of table journal_entries"):
        await as_ledger.execute("ALTER TABLE journal_entries DISABLE TRIGGER ALL")
    with pytest.raises(REFUSED, match="must be owner of table journal_entries"):
        await as_ledger.execute("ALTER TABLE journal_entries DISABLE TRIGGER journal_append_only")
    with pytest.raises(REFUSED):
        await as_ledger.execute("DROP TRIGGER journal_append_only ON journal_entries")


async def test_the_ledger_role_cannot_turn_triggers_off_with_session_replication_role(
    as_ledger: asyncpg.Connection,
) -> None:
    with pytest.raises(REFUSED, match="session_replication_role"):
        await as_ledger.execute("SET session_replication_role = replica")
    async with as_ledger.transaction():
        with pytest.raises(REFUSED, match="session_replication_role"):
            await as_ledger.execute("SET LOCAL session_replication_role = replica")
    assert await as_ledger.fetchval("SHOW session_replication_role") == "origin"


@pytest.mark.parametrize("table", ["revocations", "reviews", "verify_checkpoints"])
async def test_the_ledgers_other_records_are_insert_and_select_only(as_ledger: asyncpg.Connection, table: str) -> None:
    assert await as_ledger.fetchval("SELECT has_table_privilege(current_user, $1, 'INSERT, SELECT')", table)
    with pytest.raises(REFUSED, match=f"permission denied for table {table}"):
        await as_ledger.execute(f"UPDATE {table} SET {await _first_column(as_ledger, table)} = NULL WHERE false")
    with pytest.raises(REFUSED, match=f"permission denied for table {table}"):
        await as_ledger.execute(f"DELETE FROM {table} WHERE false")


async def _first_column(conn: asyncpg.Connection, table: str) -> str:
    return str(await conn.fetchval(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum = 1", table
    ))


async def test_the_ledger_role_updates_its_working_tables(as_ledger: asyncpg.Connection) -> None:
    # journal_head moves forward under every append; pools and awards change: ordinary DML.
    for table in ("journal_head", "pools", "awards", "inbox", "relay_offsets"):
        assert await as_ledger.fetchval(
            "SELECT has_table_privilege(current_user, $1, 'SELECT, INSERT, UPDATE, DELETE')", table
        ), table


# ------------------------------------------------------------------------------------- the outbox


@pytest.mark.parametrize("service", SERVICES)
async def test_an_outbox_row_is_unchangeable_but_for_its_sent_mark(databases: dict[str, str], service: str) -> None:
    conn = await _connect(databases[service], service)
    try:
        seq = await _outbox_row(conn)
        for column, value in (("envelope", "'{}'::jsonb"), ("topic", "'elsewhere'"), ("key", "'k2'")):
            with pytest.raises(REFUSED, match="permission denied for table outbox"):
                await conn.execute(f"UPDATE outbox SET {column} = {value} WHERE seq = $1", seq)
        with pytest.raises(REFUSED, match="permission denied for table outbox"):
            await conn.execute("DELETE FROM outbox WHERE seq = $1", seq)
        # The relay's mark, and the amnesia redrive's unmark, as shared.messaging.outbox writes them.
        await conn.execute("UPDATE outbox SET published_at = now() WHERE seq = ANY($1::bigint[])", [seq])
        assert await conn.fetchval("SELECT published_at IS NOT NULL FROM outbox WHERE seq = $1", seq)
        await conn.execute("UPDATE outbox SET published_at = NULL WHERE published_at IS NOT NULL AND seq = $1", seq)
        assert await conn.fetchval("SELECT published_at IS NULL FROM outbox WHERE seq = $1", seq)
    finally:
        await conn.close()


# ------------------------------------------------------------------------------- the transparency log


@pytest.mark.parametrize("table", ["transparency_leaves", "transparency_nodes"])
async def test_the_transparency_log_is_insert_and_select_only(databases: dict[str, str], table: str) -> None:
    conn = await _connect(databases["notify"], "notify")
    try:
        if not await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", table):
            pytest.skip(f"notify has no {table} table at this revision")
        assert await conn.fetchval("SELECT has_table_privilege(current_user, $1, 'INSERT, SELECT')", table)
        with pytest.raises(REFUSED, match=f"permission denied for table {table}"):
            await conn.execute(f"UPDATE {table} SET hash = hash WHERE false" if table == "transparency_nodes"
                               else f"UPDATE {table} SET leaf_hash = leaf_hash WHERE false")
        with pytest.raises(REFUSED, match=f"permission denied for table {table}"):
            await conn.execute(f"DELETE FROM {table} WHERE false")
        with pytest.raises(REFUSED, match=f"must be owner of table {table}"):
            await conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")
    finally:
        await conn.close()


# ------------------------------------------------------------------------------ other services' schemas


async def test_the_ledger_role_cannot_read_intakes_applications(as_ledger: asyncpg.Connection) -> None:
    with pytest.raises(REFUSED, match="permission denied for schema intake"):
        await as_ledger.fetch("SELECT * FROM intake.applications LIMIT 1")


@pytest.mark.parametrize("service", SERVICES)
async def test_no_service_role_reaches_another_schema(databases: dict[str, str], service: str) -> None:
    conn = await _connect(databases[service], service)
    try:
        for other in SERVICES:
            if other == service:
                assert await conn.fetchval(f"SELECT count(*) >= 0 FROM {other}.outbox")
                continue
            with pytest.raises(REFUSED, match=f"permission denied for schema {other}"):
                await conn.fetch(f"SELECT 1 FROM {other}.outbox LIMIT 1")
            with pytest.raises(REFUSED, match=f"permission denied for schema {other}"):
                await conn.execute(f"INSERT INTO {other}.inbox (consumer, event_id) VALUES ('x', gen_random_uuid())")
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_role_creates_nothing_and_cannot_become_the_owner(
    databases: dict[str, str], service: str
) -> None:
    conn = await _connect(databases[service], service)
    try:
        with pytest.raises(REFUSED, match=f"permission denied for schema {service}"):
            await conn.execute(f"CREATE TABLE {service}.mine (x int)")
        with pytest.raises(REFUSED):
            await conn.execute("CREATE SCHEMA mine")
        with pytest.raises(REFUSED, match="permission denied to set role"):
            await conn.execute(f'SET ROLE "{ROLES.owner}"')
        with pytest.raises(REFUSED, match="permission denied for table alembic_version"):
            await conn.execute("UPDATE alembic_version SET version_num = version_num")
    finally:
        await conn.close()


# ------------------------------------------------------------------------------------ who owns what


async def test_the_owner_owns_every_table_and_no_role_is_a_superuser(as_admin: asyncpg.Connection) -> None:
    owners = await as_admin.fetch(
        "SELECT DISTINCT schemaname, tableowner FROM pg_tables WHERE schemaname = ANY($1::text[])", list(SERVICES)
    )
    assert {(r["schemaname"], r["tableowner"]) for r in owners} == {(s, ROLES.owner) for s in SERVICES}
    schema_owners = await as_admin.fetch(
        "SELECT nspname, pg_get_userbyid(nspowner) AS owner FROM pg_namespace WHERE nspname = ANY($1::text[])",
        list(SERVICES),
    )
    assert {(r["nspname"], r["owner"]) for r in schema_owners} == {(s, ROLES.owner) for s in SERVICES}
    attributes = await as_admin.fetch(
        "SELECT rolname, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = ANY($1)",
        list(ROLES.all().values()),
    )
    assert len(attributes) == 5
    assert not any(r[k] for r in attributes for k in ("rolsuper", "rolbypassrls", "rolcreaterole", "rolcreatedb"))


async def test_provisioning_again_narrows_a_role_widened_by_hand(
    databases: dict[str, str], as_admin: asyncpg.Connection
) -> None:
    await as_admin.execute(f'ALTER ROLE "{ROLES.service("ledger")}" SUPERUSER')
    await as_admin.execute(f'GRANT "{ROLES.owner}" TO "{ROLES.service("ledger")}"')
    provision(databases["admin"], prefix=PREFIX)
    assert not await as_admin.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = $1", ROLES.service("ledger"))
    assert not await as_admin.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", ROLES.service("ledger"), ROLES.owner)


async def test_a_database_migrated_before_roles_is_handed_to_the_owner(pg_admin_dsn: str) -> None:
    """A `make up` database from before the roles: migrated as the administrator, then provisioned,
    then migrated by the owner (which alters and grants what the administrator created)."""
    db = create_database(pg_admin_dsn)
    try:
        upgrade_all(db, role_prefix=PREFIX)  # the roles exist: grants, but the tables are the admin's
        dsns = provision_local(db, prefix=PREFIX)
        upgrade_all(dsns[OWNER], role_prefix=PREFIX)
        conn = await asyncpg.connect(dsn_for(db, driver=""))
        try:
            owners = await conn.fetch(
                "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = ANY($1::text[])", list(SERVICES)
            )
            functions = await conn.fetch(
                "SELECT DISTINCT pg_get_userbyid(proowner) AS owner FROM pg_proc p "
                "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = ANY($1::text[])", list(SERVICES)
            )
        finally:
            await conn.close()
        assert [r["tableowner"] for r in owners] == [ROLES.owner]
        assert [r["owner"] for r in functions] == [ROLES.owner]
        ledger = await _connect(dsns["ledger"], "ledger")
        try:
            with pytest.raises(REFUSED, match="must be owner of table journal_entries"):
                await ledger.execute("ALTER TABLE journal_entries DISABLE TRIGGER ALL")
            await _journal_row(ledger)
        finally:
            await ledger.close()
    finally:
        drop_database(pg_admin_dsn, db)


def test_a_scratch_schema_grants_nothing(databases: dict[str, str]) -> None:
    """Replay migrates a scratch schema with the ledger's scripts: the ledger role gets no way in."""
    schema = f"scratch_{secrets.token_hex(4)}"
    upgrade(databases[OWNER], "ledger", schema, role_prefix=PREFIX)

    async def check() -> None:
        conn = await _connect(databases["ledger"], "ledger")
        try:
            with pytest.raises(REFUSED, match=f"permission denied for schema {schema}"):
                await conn.fetch(f"SELECT 1 FROM {schema}.journal_entries LIMIT 1")
        finally:
            await conn.close()

    run_sync(check)


def test_grant_statements_give_append_only_tables_insert_and_select_and_the_outbox_its_mark() -> None:
    statements = grant_statements("ledger", "r", ["journal_entries", "outbox", "pools", "alembic_version"],
                                  append_only=("journal_entries",))
    assert statements[:3] == [
        'REVOKE ALL ON ALL TABLES IN SCHEMA "ledger" FROM "r"',
        'REVOKE ALL ON ALL SEQUENCES IN SCHEMA "ledger" FROM "r"',
        'GRANT USAGE ON SCHEMA "ledger" TO "r"',
    ]
    assert 'GRANT SELECT, INSERT ON "ledger"."journal_entries" TO "r"' in statements
    assert 'GRANT SELECT, INSERT ON "ledger"."outbox" TO "r"' in statements
    assert 'GRANT UPDATE ("published_at") ON "ledger"."outbox" TO "r"' in statements
    assert 'GRANT SELECT, INSERT, UPDATE, DELETE ON "ledger"."pools" TO "r"' in statements
    assert 'GRANT SELECT ON "ledger"."alembic_version" TO "r"' in statements
    assert not any("journal_entries" in s and ("UPDATE" in s or "DELETE" in s) for s in statements)


# ----------------------------------------------------------------------- the deploy step's command


def test_the_roles_command_gives_each_role_the_password_in_its_dsn(
    databases: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy/migrate.sh runs `python -m shared.db.roles` with the DSNs compose or k8s hand it."""
    monkeypatch.setenv("GRANTLINE_ADMIN_DATABASE_URL", databases["admin"])
    monkeypatch.setenv("GRANTLINE_DB_ROLE_PREFIX", PREFIX)
    chosen = {key: secrets.token_hex(8) for key in ROLES.all()}
    monkeypatch.setenv("GRANTLINE_MIGRATION_DATABASE_URL", role_dsn(databases["admin"], ROLES.owner, chosen[OWNER]))
    for service in SERVICES:
        monkeypatch.setenv(f"GRANTLINE_{service.upper()}_DATABASE_URL",
                           role_dsn(databases["admin"], ROLES.service(service), chosen[service]))
    assert roles_main() == 0
    assert capsys.readouterr().out.startswith("roles ready:")

    async def stored() -> dict[str, str]:
        conn = await asyncpg.connect(dsn_for(databases["admin"], driver=""))
        try:
            rows = await conn.fetch("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY($1)",
                                    list(ROLES.all().values()))
        finally:
            await conn.close()
        return {r["rolname"]: r["rolpassword"] for r in rows}

    passwords = run_sync(stored)
    assert len(passwords) == 5 and all(p and p.startswith("SCRAM-SHA-256$") for p in passwords.values())
    # Put back what the rest of the module connects with (the embedded server trusts local logins
    # anyway, but a DATABASE_URL server may not).
    provision_local(databases["admin"], prefix=PREFIX)


def test_the_roles_command_refuses_a_dsn_naming_another_role(
    databases: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GRANTLINE_ADMIN_DATABASE_URL", databases["admin"])
    monkeypatch.setenv("GRANTLINE_DB_ROLE_PREFIX", PREFIX)
    monkeypatch.setenv("GRANTLINE_LEDGER_DATABASE_URL", role_dsn(databases["admin"], "postgres", "x"))
    assert roles_main() == 2
    assert f"GRANTLINE_LEDGER_DATABASE_URL connects as 'postgres', but that role is '{ROLES.service('ledger')}'" \
        in capsys.readouterr().err


def test_the_roles_command_wants_an_administrator(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("GRANTLINE_ADMIN_DATABASE_URL", raising=False)
    assert roles_main() == 2
    assert "GRANTLINE_ADMIN_DATABASE_URL" in capsys.readouterr().err
