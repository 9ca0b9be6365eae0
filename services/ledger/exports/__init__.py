"""Exports: awards, payment orders and balances as spreadsheets (XLSX) and CSV, for a meeting.

`GET /v1/exports/{awards,payments,balances}.{xlsx,csv}` (and the same under `/dashboard/exports/`
for a signed-in staff member, so the dashboard links to them) take the filters of their lists.
Headers are Chinese and English; amounts are numbers in yuan with two decimals (number format
`0.00` in XLSX, `12.34` in CSV), converted from integer fen with Decimal at the cell, so a column
sums to what the API's list sums to. Times are Beijing time to the minute, programs by Chinese
name and 文号, statuses in Chinese with the API's code beside (shared.web.display).

Streamed: rows are read in keyset pages of PAGE_ROWS from one read-only snapshot, never all at
once. A CSV is sent page by page as it is read; an XLSX (a zip whose directory comes last) is
written by XlsxWriter in constant_memory mode (each row flushed to a temporary file as it is
written) and the finished file is then streamed from disk, already unlinked, so nothing is left
behind whatever happens to the request.

Account numbers are masked (`****0123`) for everyone but payment officers, as in the API.

The rooms: `domain` (the columns, the rows, pure), `repository` (every SQL statement), `handlers`
(the pages of rows), `schemas` (the two file formats: the XLSX writer and CSV lines), `api` (the
routes).
"""
