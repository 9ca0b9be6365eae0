"""The hash-chained double-entry journal: builds, verifies, and catches every kind of tampering."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ledger.domain import Award, OverlapKey, PoolKey
from services.ledger.journal.domain import (
    GENESIS_HASH,
    JournalEntry,
    JournalError,
    Posting,
    account_balances,
    award_postings,
    award_totals_from_journal,
    build_entry,
    canonical_encoding,
    entry_hash,
    next_entry,
    parse_pool_account,
    pool_account,
    pool_totals_from_journal,
    revocation_postings,
    verify_chain,
)

B = "91310115MA1H7G0L0C"
YEAR_POOL = PoolKey("GT-PRODUCT/beneficiary-year", B, 2024, None)
SUBJECT_POOL = PoolKey("GT-PRODUCT/subject", B, None, "产品:X-1")


def award(app: str, amount: int, top_up_of: str | None = None) -> Award:
    return Award(app, "GT-PRODUCT", B, OverlapKey(B, "产品:X-1", "marketing_authorization"), amount,
                 ((SUBJECT_POOL, amount), (YEAR_POOL, amount)), top_up_of)


def chain() -> list[JournalEntry]:
    entries: list[JournalEntry] = []
    head = None
    for i, (kind, app, postings) in enumerate([
        ("award", "app_1", award_postings(award("app_1", 500_00))),
        ("top_up", "app_2", award_postings(award("app_2", 250_00, "app_1"))),
        ("award", "app_3", award_postings(award("app_3", 1_00))),
        ("revocation", "app_1", revocation_postings(award_postings(award("app_1", 500_00)))),
        ("award", "app_4", award_postings(award("app_4", 77_77))),
    ], start=1):
        head = next_entry(head, kind=kind, application_id=app, event_id=str(uuid.UUID(int=i)),
                          postings=postings, recorded_for=f"2024-03-18T10:00:0{i}Z")
        entries.append(head)
    return entries


def test_chain_builds_and_verifies() -> None:
    entries = chain()
    result = verify_chain(entries)
    assert (result.ok, result.entries, result.head, result.first_bad_seq) == (True, 5, entries[-1].hash, None)
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert verify_chain([]).ok and verify_chain([]).head == GENESIS_HASH
    assert verify_chain(entries, expected_head=entries[-1].hash).ok


def test_every_entry_sums_to_zero_and_a_revocation_negates() -> None:
    entries = chain()
    assert all(sum(p.amount_fen for p in e.postings) == 0 for e in entries)
    assert entries[3].postings == tuple(Posting(p.account, -p.amount_fen) for p in entries[0].postings)
    assert [p.account for p in entries[0].postings] == [
        "pool:GT-PRODUCT/beneficiary-year:91310115MA1H7G0L0C:2024", "award:app_1",
        "pool:GT-PRODUCT/subject:91310115MA1H7G0L0C::产品:X-1", "award:app_1",
        "award:app_1", "payable:91310115MA1H7G0L0C"]


def test_pool_totals_re_sum_from_the_journal() -> None:
    entries = chain()
    live = 250_00 + 1_00 + 77_77
    assert pool_totals_from_journal(entries) == {YEAR_POOL: live, SUBJECT_POOL: live}
    assert account_balances(entries)["payable:" + B] == live
    assert award_totals_from_journal(entries) == {"app_2": 250_00, "app_3": 1_00, "app_4": 77_77}


def test_pool_accounts_round_trip() -> None:
    for key in (YEAR_POOL, SUBJECT_POOL, PoolKey("P", B, 2024, "S"), PoolKey("P", B, None, "")):
        assert parse_pool_account(pool_account(key)) == key
    assert pool_account(YEAR_POOL) == "pool:GT-PRODUCT/beneficiary-year:91310115MA1H7G0L0C:2024"


def test_canonical_encoding_and_hash() -> None:
    entry = chain()[0]
    canonical = canonical_encoding(entry)
    body = json.loads(canonical)
    assert "hash" not in body and body["postings"][0] == {"account": pool_account(YEAR_POOL), "amount": -50000}
    assert canonical == json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert "产品".encode() in canonical
    assert entry.hash == hashlib.sha256(GENESIS_HASH.encode() + canonical).hexdigest()
    assert entry_hash(entry.prev_hash, canonical_encoding(entry.body())) == entry.hash


def tampered_amount(entry: JournalEntry, delta: int) -> JournalEntry:
    postings = list(entry.postings)
    postings[0] = Posting(postings[0].account, postings[0].amount_fen + delta)
    return dataclasses.replace(entry, postings=tuple(postings))


@pytest.mark.parametrize("index", [0, 2, 4])
def test_one_fen_changed_is_caught(index: int) -> None:
    entries = chain()
    entries[index] = tampered_amount(entries[index], 1)
    result = verify_chain(entries)
    assert (result.ok, result.first_bad_seq, result.entries) == (False, index + 1, index)
    assert result.problem == "hash does not match the entry"


def test_balanced_tampering_is_caught_by_the_hash() -> None:
    entries = chain()
    entry = entries[1]
    postings = list(entry.postings)
    postings[-2] = Posting(postings[-2].account, postings[-2].amount_fen - 1)
    postings[-1] = Posting(postings[-1].account, postings[-1].amount_fen + 1)
    entries[1] = dataclasses.replace(entry, postings=tuple(postings))
    assert verify_chain(entries).first_bad_seq == 2


def test_a_rehashed_entry_breaks_the_next_link() -> None:
    entries = chain()
    forged = tampered_amount(entries[1], 1)
    forged_postings = list(forged.postings)
    forged_postings[1] = Posting(forged_postings[1].account, forged_postings[1].amount_fen - 1)
    entries[1] = build_entry(seq=2, prev_hash=entries[0].hash, kind="top_up", application_id="app_2",
                             event_id=entries[1].event_id, postings=forged_postings,
                             recorded_for=entries[1].recorded_for)
    result = verify_chain(entries)
    assert (result.first_bad_seq, result.problem) == (3, "prev_hash does not link to the previous entry")


def test_an_altered_hash_is_caught() -> None:
    entries = chain()
    entries[2] = dataclasses.replace(entries[2], hash="f" * 64)
    result = verify_chain(entries)
    assert (result.ok, result.first_bad_seq, result.head) == (False, 3, entries[1].hash)


def test_a_deleted_entry_is_caught_at_its_seq() -> None:
    entries = chain()
    del entries[2]
    result = verify_chain(entries)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert result.problem == "expected seq 3, found 4"


def test_a_truncated_tail_needs_the_expected_head() -> None:
    entries = chain()
    assert verify_chain(entries[:-1]).ok
    result = verify_chain(entries[:-1], expected_head=entries[-1].hash)
    assert (result.ok, result.first_bad_seq) == (False, 5)


def test_an_unbalanced_entry_cannot_be_built() -> None:
    with pytest.raises(JournalError, match="sum"):
        build_entry(seq=1, prev_hash=GENESIS_HASH, kind="award", application_id="a", event_id="e",
                    postings=[Posting("award:a", 1), Posting("payable:b", 1)], recorded_for="t")
    with pytest.raises(JournalError):
        build_entry(seq=1, prev_hash=GENESIS_HASH, kind="payout", application_id="a", event_id="e",
                    postings=[Posting("award:a", -1), Posting("payable:b", 1)], recorded_for="t")


def test_an_entry_hashed_with_a_forged_unbalanced_body_is_caught() -> None:
    entries = chain()
    bad = tampered_amount(entries[0], 1)
    bad = dataclasses.replace(bad, hash=entry_hash(GENESIS_HASH, canonical_encoding(bad)))
    result = verify_chain([bad])
    assert (result.first_bad_seq, result.problem) == (1, "postings sum to 1, not 0")


@given(st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=20))
def test_any_chain_of_awards_verifies_and_re_sums(amounts: list[int]) -> None:
    head = None
    entries = []
    for i, amount in enumerate(amounts):
        head = next_entry(head, kind="award", application_id=f"app_{i}", event_id=str(uuid.UUID(int=i)),
                          postings=award_postings(award(f"app_{i}", amount)), recorded_for="2024-01-01T00:00:00Z")
        entries.append(head)
    assert verify_chain(entries).ok
    assert pool_totals_from_journal(entries) == {YEAR_POOL: sum(amounts), SUBJECT_POOL: sum(amounts)}


def _json_canonical(entry: JournalEntry) -> bytes:
    return json.dumps(entry.body(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@given(
    text=st.text(min_size=1, max_size=30),  # any code point: controls, quotes, non-ASCII, astral, lone surrogates
    amount=st.integers(min_value=-(2**70), max_value=2**70).filter(lambda v: v != 0),
    seq=st.integers(min_value=1, max_value=2**40),
)
def test_the_fast_canonical_encoding_is_byte_identical_to_json_dumps(text: str, amount: int, seq: int) -> None:
    entry = JournalEntry(seq, "award", text, text[::-1], (Posting(text, -amount), Posting("payable:" + text, amount)),
                         GENESIS_HASH, "", text + "Z")
    try:
        expected: bytes | Exception = _json_canonical(entry)
    except UnicodeEncodeError as exc:
        expected = exc
    try:
        got: bytes | Exception = canonical_encoding(entry)
    except UnicodeEncodeError as exc:
        got = exc
    if isinstance(expected, Exception):
        assert isinstance(got, UnicodeEncodeError)
    else:
        assert got == expected


def test_odd_stored_values_take_the_json_path_and_hash_as_before() -> None:
    entry = chain()[0]
    for odd in (1.5, True, 10**30):
        tampered = dataclasses.replace(entry, postings=(Posting("pool:x", odd), *entry.postings[1:]))  # type: ignore[arg-type]
        assert canonical_encoding(tampered) == _json_canonical(tampered)
    assert canonical_encoding(entry.body()) == _json_canonical(entry)
