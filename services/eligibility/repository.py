"""Eligibility's SQL: the receipts kept, and the events published through the outbox (the
policy's tables, which assessing reads, are services/eligibility/policy/repository.py's)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import text

from services.eligibility.domain import Assessed
from services.eligibility.policy.repository import PolicyRepository

# ON CONFLICT: an application already assessed under another event id (a re-driven copy) keeps its
# first receipt, and only the rows stored here are published.
_STORE_MANY = text(
    "INSERT INTO assessments (application_id, received_event_id, program, applicant_id, eligible, "
    "entitlement_fen, catalog_version, receipt) "
    "SELECT a, e, p, ap, el, f, v, CAST(r AS jsonb) FROM unnest("
    "CAST(:a AS text[]), CAST(:e AS uuid[]), CAST(:p AS text[]), CAST(:ap AS text[]), CAST(:el AS boolean[]), "
    "CAST(:f AS bigint[]), CAST(:v AS text[]), CAST(:r AS text[])) AS u(a, e, p, ap, el, f, v, r) "
    "ON CONFLICT (application_id) DO NOTHING RETURNING application_id"
)


class EligibilityRepository(PolicyRepository):
    """Every statement assessing runs, in the session's transaction: the receipts here, the calls
    and catalog versions it assesses under and the outbox through PolicyRepository."""

    async def store_assessments(self, batch: Sequence[Assessed]) -> set[str]:
        """Keep each receipt unless its application has one already; the application ids stored."""
        if not batch:
            return set()
        columns = {
            "a": [a.application_id for a in batch],
            "e": [str(a.received.id) for a in batch],
            "p": [a.application.program for a in batch],
            "ap": [a.application.applicant_id for a in batch],
            "el": [a.assessment.eligible for a in batch],
            "f": [a.assessment.entitlement_fen for a in batch],
            "v": [a.assessment.catalog_version for a in batch],
            "r": [orjson.dumps(a.receipt).decode() for a in batch],
        }
        return set((await self.session.scalars(_STORE_MANY, columns)).all())
