"""Intake's view of the policy: which calls are open, under which catalog version.

Eligibility owns catalog versions and calls and publishes them on grantline.policy
(catalog.published, call.opened, call.closed). Intake keeps a replica of them in its own tables
(`handlers.apply_policy_event`, idempotent like the partner directory), and serves the hot
submit path from an in-memory `domain.PolicyView` of that replica, never a query per request:
`handlers.PolicyReplica` reloads the view when a policy event commits (the consumer's
transaction sends a PostgreSQL NOTIFY, so every intake instance hears it, whichever one
consumed the event), and now and then in any case.

An application is admitted (`domain.admit`) only while a call for its program and year is
open at the moment intake received it (opens_at <= received < closes_at), and its facts are
validated against the catalog version that call pinned.
"""
