"""Every SQL statement of the dispatcher: claiming due deliveries, recording attempts, handing
rows back on stop, and the operators' view and re-drive of deliveries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, TextClause, text

from services.notify.dispatcher.domain import AttemptOutcome, Claimed, SendResult
from services.notify.domain import Position
from shared.db.repository import Repository

# One statement claims a batch. The rows already held here count against each partner's share
# (:held_partners/:held_counts), so no partner ever holds more than :per_partner rows; rows
# locked but not chosen are released at commit.
_CLAIM = text(
    "WITH candidates AS ("
    "  SELECT id, partner_id, next_attempt_at FROM deliveries"
    "  WHERE status = 'pending' AND next_attempt_at <= now()"
    "  AND NOT (partner_id = ANY(CAST(:busy AS text[])))"
    "  ORDER BY next_attempt_at LIMIT :n FOR UPDATE SKIP LOCKED"
    "), ranked AS ("
    "  SELECT c.id, c.next_attempt_at,"
    "    row_number() OVER (PARTITION BY c.partner_id ORDER BY c.next_attempt_at, c.id) AS nth,"
    "    :per_partner - coalesce(h.n, 0) AS room"
    "  FROM candidates c LEFT JOIN unnest(CAST(:held_partners AS text[]), CAST(:held_counts AS int[]))"
    "    AS h(p, n) ON h.p = c.partner_id"
    "), chosen AS ("
    "  SELECT id FROM ranked WHERE nth <= room ORDER BY next_attempt_at, id LIMIT :free"
    ") "
    "UPDATE deliveries d SET claim_token = :t, updated_at = now(), "
    "next_attempt_at = now() + make_interval(secs => :lease) "
    "FROM chosen WHERE d.id = chosen.id "
    "RETURNING d.id, d.event_id, d.partner_id, d.body, d.attempts, d.round_attempts, "
    "(SELECT p.callback_url FROM partners p WHERE p.id = d.partner_id) AS callback_url"
)

# One statement records a batch of attempts: the outcome on the delivery (only where our claim
# token still stands) and the attempt row, numbered from the updated count.
_RECORD = text(
    "WITH r AS ("
    "  SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:tokens AS uuid[]), CAST(:statuses AS text[]),"
    "    CAST(:retries AS float8[]), CAST(:urls AS text[]), CAST(:started AS timestamptz[]),"
    "    CAST(:durations AS int[]), CAST(:outcomes AS text[]), CAST(:codes AS int[]), CAST(:errors AS text[]))"
    "  AS u(id, token, st, retry, url, started, ms, outcome, code, err)"
    "), updated AS ("
    "  UPDATE deliveries d SET attempts = d.attempts + 1, round_attempts = d.round_attempts + 1,"
    "    status = r.st, claim_token = NULL, last_status_code = r.code, last_error = r.err, updated_at = now(),"
    "    next_attempt_at = CASE WHEN r.st = 'pending'"
    "      THEN now() + make_interval(secs => r.retry) ELSE d.next_attempt_at END,"
    "    delivered_at = CASE WHEN r.st = 'delivered' THEN now() ELSE d.delivered_at END,"
    "    parked_at = CASE WHEN r.st = 'parked' THEN now() ELSE d.parked_at END"
    "  FROM r WHERE d.id = r.id AND d.claim_token = r.token"
    "  RETURNING d.id, d.attempts"
    "), attempts AS ("
    "  INSERT INTO delivery_attempts (delivery_id, attempt, url, started_at, duration_ms, outcome,"
    "    status_code, error)"
    "  SELECT u.id, u.attempts, r.url, r.started, r.ms, r.outcome, r.code, r.err"
    "  FROM updated u JOIN r ON r.id = u.id"
    "  ON CONFLICT (delivery_id, attempt) DO NOTHING"
    ") "
    "SELECT id, attempts FROM updated"
)

_HAND_BACK = text(
    "UPDATE deliveries SET claim_token = NULL, next_attempt_at = now(), updated_at = now() "
    "WHERE id = ANY(CAST(:ids AS text[])) AND claim_token = ANY(CAST(:tokens AS uuid[]))"
)

# A page's deliveries' attempts and re-drives, in order (:ids, the page's delivery ids).
_ATTEMPTS_OF = text(
    "SELECT delivery_id, attempt, url, started_at, duration_ms, outcome, status_code, error "
    "FROM delivery_attempts WHERE delivery_id = ANY(CAST(:ids AS text[])) ORDER BY delivery_id, attempt"
)
# With the name of a staff member who re-drove (this service's staff directory; null for the
# bootstrap operator).
_REDRIVES_OF = text(
    "SELECT r.delivery_id, r.redriven_by, st.name AS redriven_by_name, r.redriven_at, r.previous_status "
    "FROM delivery_redrives r LEFT JOIN staff st ON st.id = r.redriven_by "
    "WHERE r.delivery_id = ANY(CAST(:ids AS text[])) ORDER BY r.delivery_id, r.id"
)


class DispatcherRepository(Repository):
    # --- the dispatcher's work -------------------------------------------------------------

    async def claim(
        self,
        *,
        token: uuid.UUID,
        free: int,
        look_ahead: int,
        per_partner: int,
        held: Sequence[tuple[str, int]],
        busy: Sequence[str],
        lease_seconds: float,
    ) -> list[Claimed]:
        """Up to `free` due deliveries, stamped with `token` and leased for `lease_seconds`; no
        partner gets more than `per_partner` rows counting the ones `held` already, and partners
        `busy` (at their share) are skipped. `look_ahead` rows are locked to choose from."""
        rows = (
            await self.session.execute(
                _CLAIM,
                {
                    "busy": list(busy),
                    "n": look_ahead,
                    "per_partner": per_partner,
                    "held_partners": [p for p, _ in held],
                    "held_counts": [n for _, n in held],
                    "free": free,
                    "t": token,
                    "lease": lease_seconds,
                },
            )
        ).all()
        return [
            Claimed(r.id, str(r.event_id), r.partner_id, r.body, r.attempts, r.round_attempts, token,
                    None if r.callback_url is None else str(r.callback_url))
            for r in rows
        ]

    async def record(
        self, batch: Sequence[tuple[Claimed, SendResult]], decisions: Sequence[AttemptOutcome]
    ) -> dict[str, int]:
        """Outcomes and attempt rows of a batch; the attempt count of each delivery whose claim
        still stood (the others were re-claimed meanwhile and are not touched)."""
        params = {
            "ids": [row.id for row, _ in batch],
            "tokens": [str(row.token) for row, _ in batch],
            "statuses": [d.status for d in decisions],
            "retries": [d.retry_in or 0.0 for d in decisions],
            "urls": [res.url for _, res in batch],
            "started": [res.started_at for _, res in batch],
            "durations": [res.duration_ms for _, res in batch],
            "outcomes": [res.outcome for _, res in batch],
            "codes": [res.status_code for _, res in batch],
            "errors": [res.error for _, res in batch],
        }
        return {r.id: r.attempts for r in (await self.session.execute(_RECORD, params)).all()}

    async def hand_back(self, rows: Sequence[Claimed]) -> None:
        """Release claimed rows, due at once (the dispatcher is stopping)."""
        await self.session.execute(
            _HAND_BACK, {"ids": [r.id for r in rows], "tokens": list({str(r.token) for r in rows})}
        )

    # --- operators ---------------------------------------------------------------------------

    async def _deliveries(self, where: Sequence[str], params: dict[str, Any], limit: int) -> Sequence[Row[Any]]:
        rows = await self.session.execute(
            text(
                f"SELECT * FROM deliveries WHERE {' AND '.join(where) or 'TRUE'} "
                "ORDER BY created_at DESC, id LIMIT :lim"
            ),
            {**params, "lim": limit},
        )
        return rows.all()

    async def list_deliveries(
        self, *, application_id: str | None, partner_id: str | None, status: str | None, after: Position | None,
        limit: int,
    ) -> Sequence[Row[Any]]:
        """Deliveries, newest first (ties by id), from just after `after`."""
        where: list[str] = []
        params: dict[str, Any] = {}
        if after is not None:
            where.append("(created_at < :at OR (created_at = :at AND id > :after_id))")
            params["at"], params["after_id"] = after.at, after.id
        if application_id:
            where.append("application_id = :a")
            params["a"] = application_id
        if partner_id:
            where.append("partner_id = :p")
            params["p"] = partner_id
        if status:
            where.append("status = :s")
            params["s"] = status
        return await self._deliveries(where, params, limit)

    async def get_delivery(self, delivery_id: str) -> Row[Any] | None:
        rows = await self._deliveries(["id = :id"], {"id": delivery_id}, 1)
        return rows[0] if rows else None

    async def attempts_of(self, ids: Sequence[str]) -> Sequence[Row[Any]]:
        """Every attempt of these deliveries, in order."""
        return await self._of_deliveries(_ATTEMPTS_OF, ids)

    async def redrives_of(self, ids: Sequence[str]) -> Sequence[Row[Any]]:
        """Every re-drive of these deliveries, in order."""
        return await self._of_deliveries(_REDRIVES_OF, ids)

    async def _of_deliveries(self, statement: TextClause, ids: Sequence[str]) -> Sequence[Row[Any]]:
        if not ids:
            return []
        return (await self.session.execute(statement, {"ids": list(ids)})).all()

    async def lock_status(self, delivery_id: str) -> str | None:
        """The delivery's status, its row locked for the rest of the transaction (None: no such)."""
        return await self.session.scalar(
            text("SELECT status FROM deliveries WHERE id = :id FOR UPDATE"), {"id": delivery_id}
        )

    async def redrive(self, delivery_id: str, *, who: str, previous_status: str) -> None:
        """A fresh round of attempts, due now, recorded with who asked."""
        await self.session.execute(
            text(
                "UPDATE deliveries SET status = 'pending', round_attempts = 0, next_attempt_at = now(), "
                "claim_token = NULL, parked_at = NULL, redriven_by = :who, redriven_at = now(), updated_at = now() "
                "WHERE id = :id"
            ),
            {"id": delivery_id, "who": who},
        )
        await self.session.execute(
            text(
                "INSERT INTO delivery_redrives (delivery_id, redriven_by, previous_status) VALUES (:id, :who, :prev)"
            ),
            {"id": delivery_id, "who": who, "prev": previous_status},
        )
