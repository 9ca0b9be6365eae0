"""Caps in the journal, pure: a cap_open and a cap_amend re-derive a pool's cap, a zero cap still
names its pool, and JournalAudit refuses a cap opened twice, amended before it was opened, a cap
entry that names another pool, and money posted to a cap account; it starts from a checkpoint's
totals as from the genesis."""

from __future__ import annotations

import pytest

from services.ledger.audit.domain import PoolRow, pool_mismatch
from services.ledger.domain import PoolKey
from services.ledger.journal.domain import (
    CAPS_GRANTED,
    JournalAudit,
    JournalEntry,
    JournalError,
    JournalHead,
    Posting,
    cap_account,
    cap_amend_postings,
    cap_open_postings,
    change_postings,
    next_entry,
    pool_account,
    pool_caps_from_journal,
)

B = "91310115MA1H7G0L0C"
POOL = PoolKey("GT-EQUITY/beneficiary-year", B, 2024, None)
OTHER = PoolKey("GT-EQUITY/beneficiary-year", B, 2025, None)


def _journal(*specs: tuple[str, str, tuple[Posting, ...]]) -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    head = None
    for i, (kind, app, postings) in enumerate(specs, start=1):
        head = next_entry(head, kind=kind, application_id=app, event_id=f"e{i}", postings=postings,
                          recorded_for="2024-06-01T00:00:00+00:00")
        entries.append(head)
    return entries


def _audit(entries: list[JournalEntry]) -> JournalAudit:
    audit = JournalAudit()
    for e in entries:
        audit.feed(e)
    return audit


def test_an_opened_and_amended_cap_is_re_derived_and_draws_are_committed() -> None:
    entries = _journal(
        ("cap_open", pool_account(POOL), cap_open_postings(POOL, 1_000_00)),
        ("award", "app_1", change_postings("app_1", B, [POOL], 300_00)),
        ("cap_amend", pool_account(POOL), cap_amend_postings(POOL, 1_000_00, 1_500_00)),
    )
    audit = _audit(entries)
    assert audit.finish(entries[-1].hash).ok
    assert audit.caps == {pool_account(POOL): 1_500_00} and audit.committed == {pool_account(POOL): 300_00}
    assert pool_caps_from_journal(entries) == {POOL: 1_500_00}
    assert entries[0].postings == (Posting(cap_account(POOL), 1_000_00), Posting(CAPS_GRANTED, -1_000_00))


def test_a_zero_cap_is_one_posting_of_zero_and_verifies() -> None:
    (entry,) = _journal(("cap_open", pool_account(POOL), cap_open_postings(POOL, 0)))
    assert entry.postings == (Posting(cap_account(POOL), 0),)
    assert _audit([entry]).ok and _audit([entry]).caps == {pool_account(POOL): 0}


def test_a_cap_entry_about_another_pool_is_the_first_bad_entry() -> None:
    entries = _journal(("cap_open", pool_account(POOL), (Posting(cap_account(OTHER), 5), Posting(CAPS_GRANTED, -5))))
    audit = _audit(entries)
    assert audit.first_bad_seq == 1 and audit.problem is not None and "posts to the cap of" in audit.problem


def test_a_cap_entry_may_not_move_money() -> None:
    with pytest.raises(JournalError, match="a cap_open entry posts to pool:"):
        _journal(("cap_open", pool_account(POOL), (Posting(pool_account(POOL), 5), Posting(CAPS_GRANTED, -5))))


def test_money_entries_may_not_touch_a_cap() -> None:
    with pytest.raises(JournalError, match="only a cap entry posts to cap:"):
        _journal(("award", "app_1", (Posting(cap_account(POOL), 5), Posting("payable:x", -5))))


def test_a_cap_opened_twice_or_amended_before_opening_is_the_first_bad_entry() -> None:
    twice = _journal(("cap_open", pool_account(POOL), cap_open_postings(POOL, 100)),
                     ("cap_open", pool_account(POOL), cap_open_postings(POOL, 100)))
    audit = _audit(twice)
    assert (audit.first_bad_seq, audit.problem) == (2, f"the cap of {pool_account(POOL)} is opened twice")
    assert audit.caps == {pool_account(POOL): 200}  # the totals still sum what was read
    early = _journal(("cap_amend", pool_account(POOL), cap_amend_postings(POOL, 100, 200)))
    assert _audit(early).problem == f"the cap of {pool_account(POOL)} is amended before it is opened"


def test_a_run_from_a_checkpoint_continues_its_totals() -> None:
    entries = _journal(("cap_open", pool_account(POOL), cap_open_postings(POOL, 1_000_00)),
                       ("award", "app_1", change_postings("app_1", B, [POOL], 300_00)),
                       ("award", "app_2", change_postings("app_2", B, [POOL], 200_00)))
    audit = JournalAudit(JournalHead(2, entries[1].hash), caps={pool_account(POOL): 1_000_00},
                         committed={pool_account(POOL): 300_00})
    audit.feed(entries[2])
    result = audit.finish(entries[2].hash)
    assert (result.ok, result.entries, audit.committed[pool_account(POOL)]) == (True, 3, 500_00)


def test_a_pool_row_is_held_to_the_journal_and_an_unused_one_is_not_reported() -> None:
    account = pool_account(POOL)
    assert pool_mismatch(account, PoolRow(account, 100, 10, True), 100, 10) is None
    assert pool_mismatch(account, PoolRow(account, 101, 10, True), 100, 10)["differs"] == ["cap"]  # type: ignore[index]
    assert pool_mismatch(account, PoolRow(account, 100, 0, False), None, 0) is None
    assert pool_mismatch(account, PoolRow(account, 100, 0, True), None, 0)["differs"] == ["cap"]  # type: ignore[index]
    assert pool_mismatch(account, None, 100, 10)["differs"] == ["committed", "cap"]  # type: ignore[index]
