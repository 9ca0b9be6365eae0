"""The 公示 page (`GET /announcements`): the announcements a citizen reads, grouped by program and
support year (Chinese first, with the policy's 文号), in Beijing time and 万元, with the form to
object while a notice runs, each award's transparency log index, filters by year, program and
status (a GET form) and keyset pages. No script; every value escaped.

Award events carry no call id, so a group is a program's support year: the year a call is for.
"""
