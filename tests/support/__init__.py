"""Factories and helpers for the tests; test modules import these, never each other.

servers (PostgreSQL and the broker on demand), apps (service apps in process), processes (the
services as processes), scenarios (a load under fire and its invariants), auth (tokens and
headers), intake / ledger / notify (feeding and reading each service), kafka (publishing, reading
a topic), effects (a handler with a visible effect), receiver (partners' webhook receivers),
records (stand-in consumer records), client (a partner over HTTP), waiting (eventually, and
waiting until the services are quiet), paging (a cursor-paginated list to its end), browser
(Chromium for Playwright), migrations (declared models against the migrations).
"""
