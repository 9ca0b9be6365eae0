"""Group commit for accepted applications: the requests that arrive while one transaction is
being written share the next one.

A request prepares its rows in memory (`handlers.prepare_submission` → `domain.Submission`), then
waits on `handlers.GroupCommit.submit`. One drain task at a time takes everything pending and
writes it with ONE statement in ONE transaction (`repository.write_submissions`: idempotency
claims, applications, timeline starts, outbox events), then answers each waiter. Under load a
transaction carries dozens of applications, so the per-request cost of a commit (and of
SQLAlchemy's per-statement overhead) all but disappears; when idle a request is written alone,
at once. No request is answered before its rows have committed.

The idempotency claim decides: a key already taken (earlier, or by an earlier request of the
same batch) inserts nothing for that request and it learns it was not claimed.
"""
