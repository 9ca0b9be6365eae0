"""`grantline-replay`: rebuild the ledger from the event history and diff it against the live one.

What it does, in order:

1. Snapshot the live ledger in one REPEATABLE READ transaction: its own event history (the outbox:
   `award.decided` rows carry `causation_id` = the assessment event id, `award.revoked` rows carry the
   recorded revocation, by an operator or an upheld objection, `award.reviewed` rows the recorded
   review) and its state (pools, decisions, awards with their holds, journal, head, revocations,
   reviews). The outbox gives the order the live ledger applied assessments, revocations and reviews in.
2. Read the assessment bodies from the history: the broker's `grantline.assessments` topic from the
   beginning (`--source broker`, the default), or the eligibility service's own event history, its
   outbox (`--source outbox`), when the broker's retention has dropped them.
3. Migrate a scratch schema with the ledger's own Alembic migrations and apply the history to it with
   the live code path: the batch handler `decide_awards` (≤ BATCH assessments per transaction),
   `revoke_award` and `review_award` with the recorded who, why, how much, time and event id,
   interleaved in the live order.
4. Compare pools (cap, committed), decisions, awards, journal entries (hash and body), the head,
   revocations and reviews; print a summary. Exit 0 when equal, 1 with the differences (each
   differing pool named), 2 when the replay could not run.

Usage::

    grantline-replay [--source broker|outbox] [--schema NAME] [--keep] [--progress-every N]

DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and GRANTLINE_TOPIC_NAMESPACE come from shared.config.settings.

The rooms: `domain` (operations, the diff, the report), `repository` (reading the history and the
state, the scratch schema), `handlers` (applying the history, the whole run), `api` (the command line).
"""
