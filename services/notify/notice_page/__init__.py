"""The 公示 page (`GET /announcements`): the announcements a citizen reads, grouped by program and
call (申报批次; Chinese first: the program with its 文号, then the call's title), in Beijing time
and 万元, with the form to object while a notice runs, each award's transparency log index, filters by year, program and
status (a GET form) and keyset pages. No script; every value escaped.

award.decided and award.reviewed carry the call's id, and notify keeps a replica of the calls'
titles (grantline.policy `call.opened`). Announcements from before the ledger passed the call on
have none: they are grouped by their program's support year (the year a call is for), after the
calls of that year.
"""
