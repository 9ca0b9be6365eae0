"""`grantline-replay`: rebuild the ledger from the event history and diff it against the live one.

What it does, in order:

1. Snapshot the live ledger in one REPEATABLE READ transaction: its own event history (the outbox:
   `award.decided` rows carry `causation_id` = the assessment event id, `award.revoked` rows carry the
   recorded revocation, by an operator or an upheld objection, `award.reviewed` rows the recorded
   review, and the `payment.*` rows every payment step), its state (pools, decisions, awards with their
   holds, journal, head, revocations, reviews, payees, payment orders, batches and their items), and its
   inbox times for the payee events. The outbox gives the order the live ledger applied everything in.
2. Read the assessment bodies from the history: the broker's `grantline.assessments` topic from the
   beginning (`--source broker`, the default), or the eligibility service's own event history, its
   outbox (`--source outbox`), when the broker's retention has dropped them. A ledger that has payees
   or payment orders also reads the payee events (`application.received` with a payee, `payee.updated`)
   the same way: `grantline.applications`, or intake's outbox.
3. Migrate a scratch schema with the ledger's own Alembic migrations and apply the history to it with
   the live code path: the batch handler `decide_awards` (≤ BATCH assessments per transaction),
   `revoke_award` and `review_award` with the recorded who, why, how much, time and event id, and the
   payments' handlers, interleaved in the live order:

   - a finalisation: `order_payment` on the `award.finalized` event its `payment.ordered` derives from
     (id from the ledger's inbox or the order row; the time, partner and correlation from the event),
     with the recorded order id;
   - a payee event: `keep_payee`, at the `payment.ordered` it caused (matched by its derived id), else
     before the first operation whose transaction began after the live ledger handled it (its inbox
     time); the payee events of one live transaction go together, in source order;
   - batches: `create_batch` (the recorded id, program, year, creator and time; as many orders as
     the live batch held), `approve_batch`, `send_batch` (the recorded payer and time, so the same
     pain.001 bytes, checked by hash), from `payment.batch_created/approved/sent`;
   - the bank: the settled, returned and failed steps of one chunk (one `at`), as the bank entries
     that did them, through `apply_bank_entries`, the import's own step code;
   - an operator's revocation: as the revoke route does, guarded (`guard_revocation`) and its unsent
     order cancelled (`cancel_order`). A cancellation publishes no event of its own: it is replayed
     as part of the revocation that caused it.

   A step that fails, or does not do what the live ledger recorded (an order ordered in another
   status, a batch with other totals, a bank entry with another outcome, a document with another
   hash), is a problem and the replay goes on.
4. Compare pools (cap, committed), decisions, awards, journal entries (hash and body), the head,
   revocations, reviews, payees, payment orders, batches (status, totals, who and when, the pain.001's
   hash), batch items and the ledger's `payment.*` events; print a summary (account numbers masked).
   Exit 0 when equal, 1 with the differences (each differing row named), 2 when the replay could not
   run.

What is not rebuilt: the bank's documents and their entries (`bank_documents`, `bank_entries`: the
ledger keeps their hashes and outcomes, not their bytes), so the unmatched list is not compared; the
steps they caused are. A batch sent before `payment.batch_sent` existed cannot be replayed (a problem
says so). Payee events are placed by the ledger's inbox times: a payee handled in a transaction that
began before a batch's but committed after it took its orders would be placed on the wrong side (the
batch items then differ).

Usage::

    grantline-replay [--source broker|outbox] [--schema NAME] [--keep] [--progress-every N]

DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS and GRANTLINE_TOPIC_NAMESPACE come from shared.config.settings.

The rooms: `domain` (operations, the diff, the report), `repository` (reading the history and the
state, the scratch schema), `handlers` (applying the history, the whole run), `api` (the command line).
"""
