"""JournalAudit.feed_rows, verify's fast pass over journal rows as read, gives the same verdict
(ok, entries, head, first bad seq, problem) and the same caps and committed as feeding every row
through feed(entry_of_row(...)), on an intact journal and on every kind of tampering: with the
stored hash left as it was, and re-hashed by a forger (so the checks after the hash are reached);
its canonical bytes are the writer's; a balanced money entry of every journal kind but a cap's
never needs feed(). (Stored data that is not a posting's account or amount is not
read by either: NOT_READ.)"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from services.ledger.domain import PoolKey
from services.ledger.journal.domain import (
    CAP_KINDS,
    CAPS_GRANTED,
    GENESIS_HASH,
    KINDS,
    JournalAudit,
    JournalEntry,
    JournalHead,
    Posting,
    VerifyResult,
    approval_postings,
    canonical_encoding,
    cap_account,
    cap_amend_postings,
    cap_open_postings,
    change_postings,
    entry_hash,
    entry_of_row,
    next_entry,
    pool_account,
    revocation_postings,
    row_of_entry,
)

B = "91310115MA1H7G0L0C"
P1 = PoolKey("GT-EQUITY/beneficiary-year", B, 2024, None)
P2 = PoolKey("GT-CLIN/subject", B, None, "P-1:知识产权")  # ':' and non-ASCII in the subject
Row = tuple[Any, ...]


def _journal() -> list[JournalEntry]:
    specs: list[tuple[str, str, tuple[Posting, ...]]] = [
        ("cap_open", pool_account(P1), cap_open_postings(P1, 1_000_000_00)),
        ("cap_open", pool_account(P2), cap_open_postings(P2, 0)),
        ("award", "app_1", change_postings("app_1", B, [P1, P2], 300_00)),
        ("top_up", "app_1", change_postings("app_1", B, [P1, P2], 50_00)),
        ("hold", "app_2", change_postings("app_2", B, [P1], 700_00, held=True)),
        ("approval", "app_2", approval_postings(B, 600_00)),
        ("release", "app_2", change_postings("app_2", B, [P1], -100_00, held=True)),
        ("cap_amend", pool_account(P1), cap_amend_postings(P1, 1_000_000_00, 2_000_000_00)),
        ("revocation", "app_1", revocation_postings(change_postings("app_1", B, [P1, P2], 350_00))),
        ("award", "app_3", change_postings("app_3", "受益人", [P1], 1)),
    ]
    entries: list[JournalEntry] = []
    head = None
    for i, (kind, app, postings) in enumerate(specs, start=1):
        head = next_entry(head, kind=kind, application_id=app, event_id=f"e{i}", postings=postings,
                          recorded_for="2024-06-01T00:00:00+08:00")
        entries.append(head)
    return entries


def _rows() -> list[Row]:
    return [row_of_entry(e) for e in _journal()]


def _by_entries(rows: Sequence[Row], audit: JournalAudit) -> tuple[VerifyResult, dict[str, int], dict[str, int]]:
    for row in rows:
        audit.feed(entry_of_row(*row))
    return audit.finish(None), audit.caps, audit.committed


def _by_rows(rows: Sequence[Row], audit: JournalAudit) -> tuple[VerifyResult, dict[str, int], dict[str, int]]:
    audit.feed_rows(rows)
    return audit.finish(None), audit.caps, audit.committed


def _rehashed(rows: list[Row], *, as_stored: bool = False) -> list[Row]:
    """The rows re-hashed and re-linked as a forger would, so a tampered row's hash matches again:
    over what each row says as verify reads it, or (`as_stored`) over its postings as stored,
    whatever they hold."""
    out: list[Row] = []
    prev = GENESIS_HASH
    for row in rows:
        entry = entry_of_row(row[0], row[1], row[2], row[3], row[4], prev, "", row[7])
        body = entry.body()
        if as_stored:
            body["postings"] = json.loads(row[4])
        digest = entry_hash(prev, canonical_encoding(body))
        out.append((*row[:5], prev, digest, row[7]))
        prev = digest
    return out


def _postings(row: Row, change: Callable[[list[Any]], Any]) -> Row:
    postings = json.loads(row[4])
    changed = change(postings)
    text = changed if isinstance(changed, str) else json.dumps(postings if changed is None else changed,
                                                                ensure_ascii=False)
    return (*row[:4], text, *row[5:])


def _set(index: int, field: int, value: Any) -> Callable[[list[Row]], list[Row]]:
    def tamper(rows: list[Row]) -> list[Row]:
        rows[index] = (*rows[index][:field], value, *rows[index][field + 1:])
        return rows
    return tamper


def _on_postings(index: int, change: Callable[[list[Any]], Any]) -> Callable[[list[Row]], list[Row]]:
    def tamper(rows: list[Row]) -> list[Row]:
        rows[index] = _postings(rows[index], change)
        return rows
    return tamper


def _amounts(*deltas: int) -> Callable[[list[Any]], None]:
    def change(postings: list[Any]) -> None:
        for p, d in zip(postings, deltas, strict=False):
            p["amount"] += d
    return change


def _put(i: int, key: str, value: Any) -> Callable[[list[Any]], None]:
    def change(postings: list[Any]) -> None:
        postings[i][key] = value
    return change


def _drop(index: int) -> Callable[[list[Row]], list[Row]]:
    def tamper(rows: list[Row]) -> list[Row]:
        del rows[index]
        return rows
    return tamper


TAMPERINGS: dict[str, Callable[[list[Row]], list[Row]]] = {
    "untouched": lambda rows: rows,
    "an award's amounts moved by a fen, still zero-sum": _on_postings(2, _amounts(1, -1)),
    "an award's amount one fen off, unbalanced": _on_postings(2, _amounts(1)),
    "a cap moved by a fen": _on_postings(0, _amounts(1, -1)),
    "a posting with an extra key": _on_postings(2, _put(0, "note", "x")),
    "a posting without its amount": _on_postings(3, lambda ps: [{"account": ps[0]["account"]}, *ps[1:]]),
    "a float amount": _on_postings(2, lambda ps: json.dumps(ps).replace("-30000", "-30000.0", 1)),
    "an amount beyond 64 bits": _on_postings(9, lambda ps: json.dumps(
        [{"account": ps[0]["account"], "amount": -(2**70)}, {"account": ps[1]["account"], "amount": 2**70},
         *ps[2:]])),
    "an amount beyond 64 bits, balanced by the next": _on_postings(9, lambda ps: json.dumps(
        [{"account": ps[0]["account"], "amount": -(2**64)}, {"account": ps[1]["account"], "amount": 2**64 - 1},
         {"account": ps[2]["account"], "amount": ps[2]["amount"]}, {"account": ps[3]["account"], "amount": 2}])),
    "a boolean amount": _on_postings(5, _put(0, "amount", True)),
    "a zero amount": _on_postings(5, lambda ps: [{"account": p["account"], "amount": 0} for p in ps]),
    "an account that is a number": _on_postings(5, _put(0, "account", 17)),
    "an account that is null": _on_postings(5, _put(1, "account", None)),
    "a posting that is not an object": _on_postings(5, lambda ps: [*ps, ["x", 0]]),
    "postings that are an object": _on_postings(5, lambda ps: {"account": "x", "amount": 0}),
    "no postings": _on_postings(5, lambda ps: []),
    "an award posting to a cap": _on_postings(2, lambda ps: [{"account": cap_account(P1), "amount": -1},
                                                             {"account": "award:app_1", "amount": 1}]),
    "an award posting to the policy's caps": _on_postings(2, lambda ps: [
        {"account": CAPS_GRANTED, "amount": -1}, {"account": "award:app_1", "amount": 1}]),
    "a cap entry moving money": _on_postings(7, lambda ps: [{"account": pool_account(P1), "amount": -1},
                                                            {"account": "award:x", "amount": 1}]),
    "a cap entry about another pool": _set(7, 2, pool_account(P2)),
    "a cap opened twice": _set(1, 2, pool_account(P1)),
    "an unknown kind": _set(4, 1, "gift"),
    "a kind that is a cap's": _set(2, 1, "cap_amend"),
    "an edited event id": _set(4, 3, "e-forged"),
    "an edited recorded_for": _set(6, 7, "2025-01-01T00:00:00+00:00"),
    "a non-ASCII application id": _set(6, 2, "申请-2"),
    "a seq out of order": _set(3, 0, 9),
    "a boolean seq": _set(0, 0, True),
    "a broken prev link": _set(4, 5, "f" * 64),
    "a deleted entry": _drop(4),
    "a deleted cap entry": _drop(0),
    "a broken chain, then odd postings summed": lambda rows: _on_postings(7, _put(0, "amount", 1.5))(
        _on_postings(8, lambda ps: [*ps, "x", {"account": 3, "amount": 1}, {"account": pool_account(P2)},
                                    {"account": "pool:NEW:B:2024", "amount": "1"}, {"account": "cap:NEW:B:2024"}])(
            _on_postings(9, _put(0, "amount", False))(_on_postings(0, lambda ps: [{"amount": 5}, *ps])(
                _set(1, 0, 7)(rows))))),
}

# What verify reads of a posting is its account and amount: an extra key, or an element that is
# not an object (which the journal's balance constraint lets through too), is not read, so not
# hashed, as before this pass existed.
NOT_READ = {"a posting with an extra key", "a posting that is not an object"}


@pytest.mark.parametrize("rehash", ["kept", "as read", "as stored"],
                         ids=["hash kept", "re-hashed as read", "re-hashed as stored"])
@pytest.mark.parametrize("name", list(TAMPERINGS))
def test_rows_and_entries_give_the_same_verdict_and_totals(name: str, rehash: str) -> None:
    rows = TAMPERINGS[name](_rows())
    if rehash != "kept":
        rows = _rehashed(rows, as_stored=rehash == "as stored")
    expected = _by_entries(rows, JournalAudit())
    assert _by_rows(rows, JournalAudit()) == expected
    if rehash == "kept":
        assert expected[0].ok is (name == "untouched" or name in NOT_READ)
    else:  # page boundaries change nothing
        audit = JournalAudit()
        for i in range(0, len(rows), 3):
            audit.feed_rows(rows[i:i + 3])
        assert (audit.finish(None), audit.caps, audit.committed) == expected


def test_an_intact_journal_verifies_with_its_totals() -> None:
    entries = _journal()
    result, caps, committed = _by_rows([row_of_entry(e) for e in entries], JournalAudit())
    assert result == VerifyResult(True, len(entries), entries[-1].hash, None, None)
    assert caps == {pool_account(P1): 2_000_000_00, pool_account(P2): 0}
    assert committed == {pool_account(P1): 600_00 + 1, pool_account(P2): 0}


def test_a_checkpoint_that_no_longer_matches_stops_the_chain_at_it() -> None:
    rows = _rows()
    for checkpoints in ({6: rows[5][6]}, {6: "a" * 64}):
        expected = _by_entries(rows, JournalAudit(checkpoints=checkpoints))
        assert _by_rows(rows, JournalAudit(checkpoints=checkpoints)) == expected
    assert expected[0].first_bad_seq == 6 and "verify checkpoint" in str(expected[0].problem)


def test_from_a_checkpoint_the_rows_after_it_are_held_to_its_head_and_totals() -> None:
    rows = _rows()
    whole = _by_rows(rows, JournalAudit())
    start = JournalHead(4, rows[3][6])
    before = JournalAudit()
    before.feed_rows(rows[:4])
    audit = JournalAudit(start, caps=before.caps, committed=before.committed)
    assert _by_rows(rows[4:], audit) == whole
    wrong = JournalAudit(JournalHead(4, "c" * 64), caps=before.caps, committed=before.committed)
    result, _, _ = _by_rows(rows[4:], wrong)
    assert (result.ok, result.first_bad_seq, result.problem) == (
        False, 5, "prev_hash does not link to the previous entry")


def test_the_canonical_bytes_are_the_writers() -> None:
    """What feed_rows hashes is canonical_encoding's json.dumps form, byte for byte (non-ASCII and
    ':' in accounts, negative amounts): a row re-hashed with the reference encoding verifies."""
    rows = _rows()
    for row in rows:
        entry = entry_of_row(*row)
        body = json.dumps(entry.body(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        assert entry_hash(entry.prev_hash, body) == row[6]
    assert _by_rows(rows, JournalAudit())[0].ok


@pytest.mark.parametrize("kind", sorted(set(KINDS) - set(CAP_KINDS)))
def test_a_balanced_money_entry_of_every_kind_is_checked_without_building_an_entry(kind: str) -> None:
    """Any kind the journal takes that is not a cap's (the payments' too, once they are journal
    kinds): the fast pass alone, feed() is never needed."""
    entry = next_entry(None, kind=kind, application_id="app_1", event_id="e1",
                       postings=(Posting("payable:" + B, -5_00), Posting("order:pay_1", 5_00)),
                       recorded_for="2024-06-01T00:00:00+08:00")
    audit = JournalAudit()

    def feed(entry: JournalEntry) -> None:
        raise AssertionError(f"entry {entry.seq} went through feed()")

    audit.feed = feed  # type: ignore[method-assign]
    audit.feed_rows([row_of_entry(entry)])
    assert audit.finish(entry.hash) == VerifyResult(True, 1, entry.hash, None, None)
