"""Payments: a finalized award to money in the beneficiary's account, and proof of it.

On `award.finalized` the ledger posts the award for payment (journal kind `posting`) and creates a
payment order (`pay_…`, `payment.ordered`): `ready` when the application has a payee (from
`application.received` or `payee.updated`, kept in `payees`), else `awaiting_payee`. Payment
officers gather ready orders into a batch with control totals; a second identity approves it
(four eyes); the first download of its ISO 20022 `pain.001.001.09` marks batch and orders `sent`
(`payment.sent`, journal payable → in transit) and stores the bytes, so every download is the
same document. The bank's `pain.002.001.10` (RJCT → `failed`) and `camt.054.001.08` /
`camt.053.001.08` (booked debit → `settled`; RtrInf → back to `awaiting_payee`) come back through
`POST /v1/bank/status-reports` and `POST /v1/bank/statements`, validated in full before anything
is applied, then applied in chunks of CHUNK entries, one transaction each, each entry recorded
with its document's hash and position (so a document imported twice, or again after a crash part
way, changes nothing it already changed). Entries that match no order, or match one in another
state or for another amount, are kept as unmatched (`GET /v1/bank/unmatched`).

Journal accounts (services.ledger.journal.domain has the rest): `order:<order_id>` (owed and
ordered), `transit:<order_id>` (sent to the bank), `paid:<beneficiary>` (settled). Kinds:
`posting` (payable:B → order), `payment_sent` (order → transit), `payment_settled` (transit →
paid), `payment_failed` and `payment_returned` (transit → order), `payment_cancelled` (order →
payable:B, before a revocation of an award not yet sent). No payment entry touches a pool.

Replay (services.ledger.replay) rebuilds payments through these same handlers, in the order the
live ledger applied them: payees from intake's history, orders from the ledger's own
`payment.ordered` events, batches from `payment.batch_created` / `.batch_approved` /
`.batch_sent` (who, when, the payer and the pain.001's hash, so the document comes out
byte-identical), bank steps from `payment.settled` / `.returned` / `.failed`, cancellations from
`award.revoked`. The bank's documents themselves are not kept, so their unmatched entries are not
compared; the steps they caused are.

The rooms: `domain` (statuses, masking, postings, pure), `documents` (the ISO 20022 codec:
pain.001 built, pain.002 / camt parsed and validated, with pyiso20022's message classes),
`repository` (every SQL statement), `handlers` (the use cases), `schemas` and `api` (the routes).
"""
