"""The operators' dashboard (`GET /dashboard`): sign-in, balances against caps, recent decisions and
revocations, live updates over server-sent events, and revocation with a reason.

- Sign-in: POST /dashboard/login with the operator token (constant-time compare); the cookie holds an
  HMAC-signed session (`domain`), HttpOnly, SameSite=Strict, Secure over https.
- Revoke: POST /dashboard/awards/{application_id}/revoke, cookie-authenticated and CSRF-checked (the
  session's token in the form, and a same-origin Origin when the browser sends one); it calls the same
  handler as `POST /v1/awards/{id}/revoke`, recorded as "operator:dashboard".
- Live: GET /dashboard/events polls the ledger tables every 0.5 s for decisions and revocations newer
  than the page's cursor, and streams them with the pools they touched.
"""
