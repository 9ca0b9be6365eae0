"""Review (核定): a reviewer approves all or part of an award held for review, or rejects it.

For a program whose review is required, deciding places a hold on every pool the award draws on
(status `pending_review`, journal kind `hold`); `GET /v1/reviews` lists the holds oldest first with
what a reviewer weighs (entitlement, held, requested amount, pools, the rules with citations), and
`POST /v1/awards/{application_id}/review` settles one: approve (all the hold, or less) or reject.
What is not approved goes back to every pool in the same transaction (journal kinds `approval`,
`release`, `rejection`), the rest of the award's overlap chain is re-decided as after a
revocation, and `award.reviewed` is published. The review takes the same locks as a revocation,
in the same order, and reads the award again under them: of two reviewers at once, exactly one
settles it, the other is told it is no longer pending (409).

The rooms: `domain` (the outcome of a review, the queue's lines, the event's data), `repository`
(the queue, the award under review, the review's rows), `handlers` (review_award, list_reviews),
`schemas` and `api` (the two routes).
"""
