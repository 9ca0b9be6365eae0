"""End-to-end: the four services as processes, over HTTP and Kafka, as partners use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import Stack, four_services


@pytest.fixture(scope="module")
def stack(pg_admin_dsn: str, kafka_bootstrap: str) -> Iterator[Stack]:
    with four_services(pg_admin_dsn, kafka_bootstrap, "e2e", {
        "GRANTLINE_NOTICE_PERIOD_SECONDS": "3",
        "GRANTLINE_WEBHOOK_BACKOFF_SECONDS": "0.1",
        "GRANTLINE_WEBHOOK_ATTEMPTS_MAX": "3",
    }) as stack:
        yield stack
