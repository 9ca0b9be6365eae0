"""Which failures are infrastructure trouble (retry later) rather than a bad event or request
(dead-letter it, answer 4xx): classified by exception type and SQLSTATE, never by class name."""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError
from asyncpg.exceptions import InterfaceError as PgInterfaceError
from asyncpg.exceptions import OperatorInterventionError, PostgresConnectionError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

# The driver's and the broker client's own "connection went away" families. asyncpg's
# InterfaceError covers a connection used after it closed; OperatorInterventionError covers
# "the database system is starting up / shutting down" (SQLSTATE class 57).
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    TimeoutError,
    OSError,
    PostgresConnectionError,
    OperatorInterventionError,
    PgInterfaceError,
    KafkaConnectionError,
)
# SQLSTATE classes that say "try again": connection exception, insufficient resources,
# operator intervention (shutdown, crash recovery); plus serialization failure and deadlock.
_TRANSIENT_SQLSTATE_CLASSES = {"08", "53", "57"}
_TRANSIENT_SQLSTATES = {"40001", "40P01"}
_CAUSES_MAX = 10


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < _CAUSES_MAX:
        seen.append(current)
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return seen


def is_transient(exc: BaseException) -> bool:
    """Infrastructure trouble (retry the batch later) rather than a bad event (dead-letter it)."""
    for cause in _causes(exc):
        if isinstance(cause, _TRANSIENT_TYPES):
            return True
        if isinstance(cause, DBAPIError) and cause.connection_invalidated:
            return True
        sqlstate = getattr(cause, "sqlstate", None)
        if isinstance(sqlstate, str) and (
            sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES or sqlstate in _TRANSIENT_SQLSTATES
        ):
            return True
    return False
