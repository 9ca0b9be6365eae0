"""Session-wide fixtures: real PostgreSQL and a Kafka-protocol broker, started only when a test asks.

* ``pg_admin_dsn``     (session) superuser DSN of a real PostgreSQL (embedded, or ``DATABASE_URL``)
* ``kafka_bootstrap``  (session) bootstrap servers of a real broker (embedded Tansu, or ``KAFKA_BOOTSTRAP_SERVERS``)
* ``fresh_db_dsn``     (module)  DSN of a new, empty database on that server, dropped after the module
* ``topic_namespace``  (module)  a unique topic / consumer-group prefix (``GRANTLINE_TOPIC_NAMESPACE``)

Unit tests that request none of these run without any server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# The support modules hold most of the suite's asserts: rewritten, a failure there says what it saw.
pytest.register_assert_rewrite("tests.support")

from tests.support.servers import (  # noqa: E402  (after the rewrite hook, by design)
    KafkaServer,
    PostgresServer,
    create_database,
    drop_database,
    new_namespace,
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_admin_dsn(postgres_server: PostgresServer) -> str:
    return postgres_server.dsn


@pytest.fixture(scope="session")
def kafka_server() -> Iterator[KafkaServer]:
    server = KafkaServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_server: KafkaServer) -> str:
    return kafka_server.bootstrap


@pytest.fixture(scope="module")
def fresh_db_dsn(pg_admin_dsn: str) -> Iterator[str]:
    dsn = create_database(pg_admin_dsn)
    try:
        yield dsn
    finally:
        drop_database(pg_admin_dsn, dsn)


@pytest.fixture(scope="module")
def topic_namespace() -> str:
    return new_namespace()
