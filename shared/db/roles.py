"""Least privilege in the database: an owner role and one login role per service.

* ``<prefix>_owner`` owns the four schemas and every table in them and runs the migrations. It
  is not a superuser, so it is the only role that can alter a table or disable its triggers.
* ``<prefix>_<service>`` (intake, eligibility, ledger, notify) is what the service connects as:
  USAGE on its own schema and nothing on the others'; SELECT, INSERT, UPDATE and DELETE on its
  tables, except the append-only ones (the journal, revocations, reviews, the transparency log,
  verify checkpoints, and every outbox), which it may only INSERT and SELECT. The outbox relay
  marks rows sent, and the amnesia redrive unmarks them: UPDATE of ``outbox.published_at`` alone,
  so an event's content can never change. Neither role is a superuser, so neither can turn
  triggers off with ``session_replication_role``.

Roles belong to the whole server, not to one database, hence the prefix (``GRANTLINE_DB_ROLE_PREFIX``):
two deployments on one server keep their roles apart.

``provision`` (as an administrator: a superuser, or a role with CREATEROLE that may act as the
owner role) creates the roles if absent, idempotently, and hands any service schema that exists
already to the owner role. The grants are applied by each service's migration run
(``shared.db.migration_env``) with ``apply_grants``, so every path that migrates grants alike.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import hmac
import os
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import Connection

from shared.db.engine import dsn_for

SERVICES = ("intake", "eligibility", "ledger", "notify")
DEFAULT_PREFIX = "grantline"
OWNER = "owner"
# Tables every service schema has that its role may only append to. The outbox is the service's
# event history (ARCHITECTURE.md, "Transactional outbox").
APPEND_ONLY_EVERYWHERE = ("outbox",)
# The one deviation from INSERT and SELECT only: the relay's "sent" mark (and the redrive's unmark).
COLUMN_UPDATES: Mapping[str, tuple[str, ...]] = {"outbox": ("published_at",)}
# Alembic's bookkeeping: the service may see which revision it runs on, never move it.
READ_ONLY = ("alembic_version",)
# Extensions the migrations create: installed here by the administrator, since the owner role may
# not create them in the public schema (CREATE EXTENSION IF NOT EXISTS is then a no-op for it).
EXTENSIONS = ("btree_gist",)

T = TypeVar("T")


class ProvisionRefused(Exception):
    """The administrator DSN's role may not create roles (a developer's single-role database)."""


@dataclass(frozen=True)
class Roles:
    prefix: str = DEFAULT_PREFIX

    @property
    def owner(self) -> str:
        return f"{self.prefix}_{OWNER}"

    def service(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    def all(self, services: Iterable[str] = SERVICES) -> dict[str, str]:
        """{"owner": <owner role>, <service>: <its role>, …}."""
        return {OWNER: self.owner, **{name: self.service(name) for name in services}}


# -------------------------------------------------------------------------------------------- DSNs


def role_dsn(dsn: str, role: str, password: str | None = None) -> str:
    """The same server and database as `dsn`, connecting as `role` (with `password`, if any)."""
    parts = urlsplit(dsn)
    host = parts.netloc.rpartition("@")[2]
    userinfo = quote(role, safe="") + (f":{quote(password, safe='')}" if password else "")
    return urlunsplit((parts.scheme, f"{userinfo}@{host}", parts.path, parts.query, parts.fragment))


def derived_password(admin_dsn: str, role: str) -> str | None:
    """A role's password on a server reached with a password, derived from the administrator's
    (HMAC, so no role shares it and nothing more has to be stored); None on a server that asks
    for none (the embedded one trusts local connections)."""
    secret = urlsplit(admin_dsn).password
    if not secret:
        return None
    return hmac.new(secret.encode(), role.encode(), hashlib.sha256).hexdigest()[:32]


# ----------------------------------------------------------------------------------------- grants


def grant_statements(
    schema: str,
    role: str,
    tables: Iterable[str],
    append_only: Iterable[str] = (),
) -> list[str]:
    """The statements that give `role` exactly its privileges on `schema`'s `tables`. They start
    by revoking whatever it had, so a table that becomes append-only loses UPDATE and DELETE."""
    insert_only = set(APPEND_ONLY_EVERYWHERE) | set(append_only)
    s, r = _ident(schema), _ident(role)
    statements = [
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {r}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {r}",
        f"GRANT USAGE ON SCHEMA {s} TO {r}",
    ]
    for table in sorted(tables):
        t = f"{s}.{_ident(table)}"
        if table in READ_ONLY:
            statements.append(f"GRANT SELECT ON {t} TO {r}")
        elif table in insert_only:
            statements.append(f"GRANT SELECT, INSERT ON {t} TO {r}")
            columns = COLUMN_UPDATES.get(table, ())
            if columns:
                statements.append(f"GRANT UPDATE ({', '.join(map(_ident, columns))}) ON {t} TO {r}")
        else:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO {r}")
    statements.append(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {s} TO {r}")
    return statements


def apply_grants(connection: Connection, schema: str, role: str, append_only: Iterable[str] = ()) -> bool:
    """Grant `role` its privileges on `schema` as it stands (tables listed in `append_only` that do
    not exist yet are skipped), in the connection's transaction. False, changing nothing, when
    `role` does not exist: a developer's single-role database."""
    if connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar() is None:
        return False
    tables = connection.execute(
        text(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = :s AND c.relkind IN ('r', 'p', 'v', 'm')"
        ),
        {"s": schema},
    ).scalars().all()
    for statement in grant_statements(schema, role, tables, append_only):
        connection.execute(text(statement))
    return True


# -------------------------------------------------------------------------------------- provision


async def aprovision(
    admin_dsn: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    services: Sequence[str] = SERVICES,
    passwords: Mapping[str, str | None] | None = None,
) -> Roles:
    """Create the owner and service roles if absent (or narrow their attributes again), let them
    connect to `admin_dsn`'s database (the owner may create schemas in it), install the extensions
    the migrations need, and hand any existing service schema to the owner. `passwords`: by "owner"
    or service name; a role not named keeps its password (a new one gets none). Idempotent."""
    roles = Roles(prefix)
    passwords = passwords or {}
    conn = await asyncpg.connect(dsn_for(admin_dsn, driver=""), timeout=10)
    try:
        me = await conn.fetchrow("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user")
        if me is None or not (me["rolsuper"] or me["rolcreaterole"]):
            raise ProvisionRefused(f"the role of {_no_password(admin_dsn)} may not create roles")
        for key, role in roles.all(services).items():
            await _ensure_role(conn, role, passwords.get(key))
        for name in services:  # a service role that could act as the owner could alter its tables
            await _not_member(conn, roles.service(name), roles.owner)
        database = await conn.fetchval("SELECT current_database()")
        await conn.execute(await _format(conn, "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %I TO %I",
                                         database, roles.owner))
        for name in services:
            await conn.execute(await _format(conn, "GRANT CONNECT ON DATABASE %I TO %I", database,
                                             roles.service(name)))
        for extension in EXTENSIONS:
            await conn.execute(f"CREATE EXTENSION IF NOT EXISTS {_ident(extension)} WITH SCHEMA public")
        for name in services:
            await _adopt_schema(conn, name, roles.owner)
    finally:
        await conn.close()
    return roles


def provision(
    admin_dsn: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    services: Sequence[str] = SERVICES,
    passwords: Mapping[str, str | None] | None = None,
) -> Roles:
    """`aprovision` from sync code, even when an event loop runs in this thread."""
    return _run(lambda: aprovision(admin_dsn, prefix=prefix, services=services, passwords=passwords))


def provision_local(admin_dsn: str, prefix: str = DEFAULT_PREFIX) -> dict[str, str]:
    """Provision with passwords derived from the administrator's (`derived_password`) and return
    each role's DSN by "owner" or service name: what `make up`, the test stacks and the bench use."""
    names = Roles(prefix).all()
    passwords = {key: derived_password(admin_dsn, role) for key, role in names.items()}
    provision(admin_dsn, prefix=prefix, passwords=passwords)
    return {key: role_dsn(admin_dsn, role, passwords[key]) for key, role in names.items()}


_ATTRIBUTES = ("rolsuper", "rolcreatedb", "rolcreaterole", "rolreplication", "rolbypassrls")
_NARROW = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    row = await conn.fetchrow(f"SELECT rolcanlogin, {', '.join(_ATTRIBUTES)} FROM pg_roles WHERE rolname = $1", role)
    if row is None:
        try:
            await conn.execute(await _format(conn, f"CREATE ROLE %I {_NARROW}", role))
        except (asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            pass  # another provisioning run created it meanwhile
    elif not row["rolcanlogin"] or any(row[a] for a in _ATTRIBUTES):
        # Someone widened it by hand: narrow it again (a superuser service role would be no limit).
        await conn.execute(await _format(conn, f"ALTER ROLE %I {_NARROW}", role))
    if password is not None:
        await conn.execute(await _format(conn, "ALTER ROLE %I PASSWORD %L", role, password))


async def _not_member(conn: asyncpg.Connection, member: str, of: str) -> None:
    is_member = await conn.fetchval(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
        "WHERE r.rolname = $1 AND u.rolname = $2",
        of,
        member,
    )
    if is_member:
        await conn.execute(await _format(conn, "REVOKE %I FROM %I", of, member))
        if await conn.fetchval("SELECT pg_has_role($1, $2, 'MEMBER')", member, of):
            raise ProvisionRefused(f"{member} is a member of {of} through a grant this role cannot revoke")


async def _adopt_schema(conn: asyncpg.Connection, schema: str, owner: str) -> None:
    """Hand `schema` and everything in it to `owner`: a database whose migrations ran as another
    role (before there were roles) is migrated by the owner from then on."""
    if await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", schema) is None:
        return
    statements: list[str] = []
    if await conn.fetchval("SELECT pg_get_userbyid(nspowner) <> $2 FROM pg_namespace WHERE nspname = $1",
                           schema, owner):
        statements.append(await _format(conn, "ALTER SCHEMA %I OWNER TO %I", schema, owner))
    for query in _ADOPT_QUERIES:
        statements += [row[0] for row in await conn.fetch(query, schema, owner)]
    async with conn.transaction():
        for statement in statements:
            await conn.execute(statement)


# What else in a schema has an owner. A table's own sequences (serial, identity) and its indexes
# follow the table; composite types follow theirs; array types follow their element's.
_ADOPT_QUERIES = (
    "SELECT format('ALTER TABLE %I.%I OWNER TO %I', n.nspname, c.relname, $2::text) "
    "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND pg_get_userbyid(c.relowner) <> $2 "
    "AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass "
    "AND d.objid = c.oid AND d.deptype IN ('a', 'i'))",
    "SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $2::text) "
    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE n.nspname = $1 AND pg_get_userbyid(p.proowner) <> $2",
    "SELECT format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, $2::text) "
    "FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
    "WHERE n.nspname = $1 AND t.typtype IN ('e', 'd') AND pg_get_userbyid(t.typowner) <> $2",
)


async def _format(conn: asyncpg.Connection, template: str, *values: str) -> str:
    """`template` with its %I and %L filled with `values` by PostgreSQL's format(): the server
    quotes the identifiers and literals (role names and passwords cannot be bound parameters)."""
    placeholders = ", ".join(f"${i}::text" for i in range(1, len(values) + 1))
    result = await conn.fetchval(f"SELECT format({_literal(template)}, {placeholders})", *values)
    assert isinstance(result, str)
    return result


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _no_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit((parts.scheme, parts.netloc.replace(f":{parts.password}@", ":***@", 1), parts.path,
                       parts.query, parts.fragment))


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(go())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, go()).result()


# -------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m shared.db.roles`: provision the roles of a deployment (docker compose, k8s).

    A deploy step, not a service: it reads the administrator's DSN and the roles' DSNs from its
    environment, where the deployment keeps them, rather than from the services' settings:
    GRANTLINE_ADMIN_DATABASE_URL (required), and, to set each role's password from the DSN its
    user connects with, GRANTLINE_MIGRATION_DATABASE_URL (the owner) and
    GRANTLINE_<SERVICE>_DATABASE_URL. GRANTLINE_DB_ROLE_PREFIX as for the services."""
    del argv
    env = os.environ
    admin = env.get("GRANTLINE_ADMIN_DATABASE_URL")
    if not admin:
        print("grantline roles: set GRANTLINE_ADMIN_DATABASE_URL (a role that may create roles).", file=sys.stderr)
        return 2
    roles = Roles(env.get("GRANTLINE_DB_ROLE_PREFIX") or DEFAULT_PREFIX)
    passwords: dict[str, str | None] = {}
    sources = {OWNER: "GRANTLINE_MIGRATION_DATABASE_URL", **{n: f"GRANTLINE_{n.upper()}_DATABASE_URL" for n in SERVICES}}
    for key, variable in sources.items():
        url = env.get(variable)
        if not url:
            continue
        expected = roles.all()[key]
        user = urlsplit(url).username
        if user != expected:
            print(f"grantline roles: {variable} connects as {user!r}, but that role is {expected!r}.",
                  file=sys.stderr)
            return 2
        passwords[key] = urlsplit(url).password
    try:
        provision(admin, prefix=roles.prefix, passwords=passwords)
    except ProvisionRefused as exc:
        print(f"grantline roles: {exc}.", file=sys.stderr)
        return 2
    print(f"roles ready: {', '.join(roles.all().values())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
