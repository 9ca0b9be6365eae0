"""Notify's staff page (`GET /staff/objections`): the objections (异议) a reviewer resolves, beside
the ledger's dashboard (the two link to each other; the services share no routes).

- Sign-in: POST /staff/login with a staff key (gls_…) or a bootstrap token, resolved as every route
  resolves a bearer; reviewers, operators and auditors get in (those who read GET /v1/objections).
  The session is the staff pages' (shared.web.sessions: HMAC-signed, HttpOnly, SameSite=Strict,
  Secure over https), naming who signed in, whose roles are read again on every request.
- What each sees (domain.Abilities): the objections with their statements, open ones first by
  default; the objector's name, organisation and contact only a reviewer (as the API shows them);
  only a reviewer resolves; an auditor sees all and changes nothing.
- Resolve: POST /staff/objections/{id}/resolve, cookie-authenticated and CSRF-checked, calls the
  same handler as `POST /v1/objections/{id}/resolve`, recorded with the reviewer's id, name and
  reason. The page runs no script.
"""
