"""The staff dashboard (`GET /dashboard`): sign-in, the review queue (核定), balances against caps,
recent decisions and revocations, live updates over server-sent events, revocation and review with
a reason.

- Sign-in: POST /dashboard/login with a staff key (gls_…) or a bootstrap token, resolved as every
  route resolves a bearer (shared.web.auth); operators, reviewers and auditors get in. The cookie
  holds an HMAC-signed session naming who signed in (`domain`), HttpOnly, SameSite=Strict, Secure
  over https; a staff member's roles are read again on every request, so a deactivated key's
  session ends with it.
- What each sees (domain.Abilities): everyone the queue and the pools; operators and auditors the
  recent decisions and revocations; an operator revokes, a reviewer reviews, an auditor changes
  nothing (the server refuses, whatever the page shows).
- Revoke and review: POST /dashboard/awards/{application_id}/revoke and …/review, cookie-authenticated
  and CSRF-checked (the session's token in the form, and a same-origin Origin when the browser sends
  one); they call the same handlers as `POST /v1/awards/{id}/revoke` and `…/review`, recorded with
  who and why (a revocation as "<who>:dashboard", a review with the reviewer's id and name).
- Live: GET /dashboard/events polls the ledger tables every 0.5 s for decisions and revocations newer
  than the page's cursor, and streams them with the pools they touched.
"""
