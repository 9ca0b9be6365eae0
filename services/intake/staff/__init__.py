"""Staff accounts (CONTRACT.md, "Who may call what"): admins register staff members with their
roles and deactivate them; auditors list them.

Intake owns the accounts. A key is shown once, at registration, and stored only as its hash. The
account's row is written by the same functions that keep every other service's replica
(shared.messaging.directory), in the transaction that puts `staff.registered` /
`staff.deactivated` into the outbox (grantline.partners, keyed by the staff id): intake knows a
key the moment it is answered, the other services within moments, and a deactivated key is
refused everywhere once the event has been applied and the key's cache entry (at most a second,
shared.web.auth) has expired.

A second deactivation changes nothing and answers 200 with the account as the first left it
(as a second revocation of an award is a no-op).
"""
