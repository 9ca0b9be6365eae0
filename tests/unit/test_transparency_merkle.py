"""The transparency log's Merkle math (services/notify/transparency/domain.py) against an
independent, straightforward recursive RFC 9162 implementation written here from the RFC's
definitions (MTH, PATH, PROOF/SUBPROOF): roots for every size 1..1000, inclusion and consistency
proofs for every split up to 64 leaves and for random splits up to 1000, the RFC's verification
algorithms (honest proofs accepted, altered ones refused), the append of stored subtrees, and
the C2SP signed-note format against golang.org/x/mod's published PeterNeumann vector."""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from functools import cache

import orjson
import pytest

from services.notify.transparency import domain as t

MAX = 1000
LEAVES = [f"entry {i} 公示".encode() for i in range(MAX)]


# --- the independent implementation (RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1) ------------------------


def _hash(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def mth(start: int, end: int) -> bytes:
    """MTH(D[start:end]) over LEAVES."""
    n = end - start
    if n == 0:
        return _hash(b"")
    if n == 1:
        return _hash(b"\x00" + LEAVES[start])
    k = _k(n)
    return _hash(b"\x01" + mth(start, start + k) + mth(start + k, end))


def path(m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end])."""
    n = end - start
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, start, start + k), mth(start + k, end)]
    return [*path(m - k, start + k, end), mth(start, start + k)]


def subproof(m: int, start: int, end: int, b: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b)."""
    n = end - start
    if m == n:
        return [] if b else [mth(start, end)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, start, start + k, b), mth(start + k, end)]
    return [*subproof(m - k, start + k, end, False), mth(start, start + k)]


def proof(m: int, n: int) -> list[bytes]:
    return subproof(m, 0, n, True)


# --- the domain over stored complete subtrees ------------------------------------------------------


@pytest.fixture(scope="module")
def stored() -> dict[t.Node, bytes]:
    """The nodes the log stores for MAX leaves, appended one at a time as the service does."""
    nodes: dict[t.Node, bytes] = {}
    for i, entry in enumerate(LEAVES):
        h = t.leaf_hash(entry)
        peaks = [nodes[p] for p in t.peaks(i)]
        nodes[(0, i)] = h
        for made in t.appended_nodes(i, peaks, [h]):
            assert (made.level, made.index) not in nodes, "a complete subtree is stored once"
            nodes[(made.level, made.index)] = made.hash
    return nodes


def test_leaf_and_node_hashes_are_rfc_9162() -> None:
    assert t.leaf_hash(b"x") == _hash(b"\x00x")
    assert t.node_hash(b"L" * 32, b"R" * 32) == _hash(b"\x01" + b"L" * 32 + b"R" * 32)
    assert t.root(0, {}) == _hash(b"")


def test_roots_of_every_size_up_to_1000_equal_the_recursive_mth(stored: dict[t.Node, bytes]) -> None:
    for size in range(1, MAX + 1):
        assert t.root(size, stored) == mth(0, size), size


def test_a_root_reads_at_most_log_n_stored_nodes() -> None:
    for size in range(1, MAX + 1):
        assert len(t.peaks(size)) == bin(size).count("1")


def test_a_batch_append_stores_what_one_at_a_time_does(stored: dict[t.Node, bytes]) -> None:
    """Appending 300 leaves at once onto 437 stored ones completes the same subtrees."""
    base = 437
    peaks = [stored[p] for p in t.peaks(base)]
    made = t.appended_nodes(base, peaks, [t.leaf_hash(e) for e in LEAVES[base:base + 300]])
    assert {(n.level, n.index): n.hash for n in made} == {
        node: h for node, h in stored.items()
        if node[0] >= 1 and base < (node[1] + 1) << node[0] <= base + 300
    }


def test_no_node_of_an_incomplete_subtree_is_stored(stored: dict[t.Node, bytes]) -> None:
    for level, index in stored:
        assert (index + 1) << level <= MAX


def _all_splits(limit: int) -> list[tuple[int, int]]:
    return [(a, b) for b in range(1, limit + 1) for a in range(b)]


def _random_splits(count: int, seed: int) -> list[tuple[int, int]]:
    rnd = random.Random(seed)
    out = []
    for _ in range(count):
        size = rnd.randint(1, MAX)
        out.append((rnd.randrange(size), size))
    return out


INCLUSION_CASES = _all_splits(64) + _random_splits(3000, 9162)


def test_inclusion_proofs_equal_the_recursive_path(stored: dict[t.Node, bytes]) -> None:
    for index, size in INCLUSION_CASES:
        ranges = t.inclusion_ranges(index, size)
        got = t.assemble(ranges, stored)
        assert got == path(index, 0, size), (index, size)
        # O(log n) reads: each proof element is one stored node but at most one, which folds a few.
        assert len(t.nodes_for(ranges)) <= 2 * size.bit_length(), (index, size)


def test_inclusion_proofs_verify_and_altered_ones_do_not() -> None:
    for index, size in INCLUSION_CASES:
        leaf, root, hashes = _hash(b"\x00" + LEAVES[index]), mth(0, size), path(index, 0, size)
        assert t.verify_inclusion(index, size, leaf, hashes, root), (index, size)
        assert not t.verify_inclusion(index, size, _hash(b"\x00other"), hashes, root)
        assert not t.verify_inclusion(index, size, leaf, hashes, _hash(b"\x00other"))
        assert not t.verify_inclusion(index, size, leaf, [*hashes, root], root)
        if hashes:
            assert not t.verify_inclusion(index, size, leaf, hashes[:-1], root)
            flipped = [hashes[0][:-1] + bytes([hashes[0][-1] ^ 1]), *hashes[1:]]
            assert not t.verify_inclusion(index, size, leaf, flipped, root)
        if size > 1:
            other = (index + 1) % size
            assert not t.verify_inclusion(other, size, leaf, hashes, root) or LEAVES[other] == LEAVES[index]
    assert not t.verify_inclusion(5, 5, _hash(b"\x00x"), [], _hash(b"\x00x"))


CONSISTENCY_CASES = [
    *((m, n) for m, n in _all_splits(64) if m >= 1),
    *((m, n) for m, n in _random_splits(3000, 6962) if m >= 1),
    *((n, n) for n in (1, 2, 7, 64, 1000)),
    (1, 1000), (512, 1000), (999, 1000),
]


def test_consistency_proofs_equal_the_recursive_proof(stored: dict[t.Node, bytes]) -> None:
    for m, n in CONSISTENCY_CASES:
        ranges = t.consistency_ranges(m, n)
        assert t.assemble(ranges, stored) == proof(m, n), (m, n)
        assert len(t.nodes_for(ranges)) <= 2 * n.bit_length() + 2, (m, n)


def test_consistency_proofs_verify_and_forks_do_not() -> None:
    forked = _hash(b"\x00not what was logged")
    for m, n in CONSISTENCY_CASES:
        old, new, hashes = mth(0, m), mth(0, n), proof(m, n)
        assert t.verify_consistency(m, n, old, new, hashes), (m, n)
        assert not t.verify_consistency(m, n, forked, new, hashes), (m, n)
        if m != n:
            assert not t.verify_consistency(m, n, old, forked, hashes), (m, n)
            assert not t.verify_consistency(m, n, old, new, hashes[:-1]), (m, n)
            flipped = [*hashes[:-1], hashes[-1][:-1] + bytes([hashes[-1][-1] ^ 1])]
            assert not t.verify_consistency(m, n, old, new, flipped), (m, n)
    assert not t.verify_consistency(5, 4, mth(0, 5), mth(0, 4), [])


def test_ranges_outside_the_tree_are_refused() -> None:
    for bad in ((-1, 5), (5, 5), (0, 0)):
        with pytest.raises(ValueError):
            t.inclusion_ranges(*bad)
    for bad in ((0, 5), (6, 5), (-1, 3)):
        with pytest.raises(ValueError):
            t.consistency_ranges(*bad)
    with pytest.raises(t.MissingNode):
        t.root(3, {(1, 0): b"x" * 32})


# --- entries -------------------------------------------------------------------------------------


PUBLIC = {"id": "ann_1", "applicant_name": "上海某某生物科技有限公司", "program": "GT-EQUITY", "year": 2024,
          "subject": "ROUND-1", "amount": "400000.00", "published_at": "2024-05-01T08:00:00+00:00",
          "notice_ends_at": "2024-05-08T09:00:00+00:00", "finalized_at": None, "status": "under_notice",
          "objections_open": 0}


def test_an_entry_is_canonical_json_of_the_public_fields_the_event_and_its_type() -> None:
    event = uuid.UUID(int=7)
    entry = t.announcement_entry("published", event, PUBLIC)
    assert entry.entry == (
        '{"amount":"400000.00","applicant_name":"上海某某生物科技有限公司",'
        '"event_id":"00000000-0000-0000-0000-000000000007","id":"ann_1",'
        '"notice_ends_at":"2024-05-08T09:00:00+00:00","program":"GT-EQUITY",'
        '"published_at":"2024-05-01T08:00:00+00:00","subject":"ROUND-1","type":"published","year":2024}'
    ).encode()
    assert (entry.kind, entry.announcement_id, entry.event_id) == ("published", "ann_1", event)
    parsed = orjson.loads(entry.entry)
    assert list(parsed) == sorted(parsed)
    assert b" " not in entry.entry.replace("上海某某生物科技有限公司".encode(), b"")
    assert "上海某某生物科技有限公司".encode() in entry.entry  # UTF-8, not \u escapes
    assert parsed == {**{k: PUBLIC[k] for k in t.ANNOUNCEMENT_FIELDS}, "event_id": str(event), "type": "published"}
    final = orjson.loads(t.announcement_entry("finalized", event, PUBLIC, at="2024-05-09T00:00:00+00:00").entry)
    assert final["finalized_at"] == "2024-05-09T00:00:00+00:00" and final["type"] == "finalized"
    withdrawn = orjson.loads(t.announcement_entry("withdrawn", event, PUBLIC, at="2024-05-02T00:00:00+00:00").entry)
    assert withdrawn["withdrawn_at"] == "2024-05-02T00:00:00+00:00" and withdrawn["type"] == "withdrawn"
    assert t.entry_matches(parsed, PUBLIC) == []
    assert t.entry_matches(parsed, {**PUBLIC, "amount": "400000.01"}) == ["amount"]


def test_appending_twice_for_one_event_is_a_no_op() -> None:
    a = t.announcement_entry("published", uuid.UUID(int=1), PUBLIC)
    b = t.announcement_entry("finalized", uuid.UUID(int=2), PUBLIC, at="2024-05-09T00:00:00+00:00")
    assert t.unlogged([a, a, b], set()) == [a, b]
    assert t.unlogged([a, b], {a.event_id}) == [b]


# --- signed notes --------------------------------------------------------------------------------

# golang.org/x/mod/sumdb/note's example (note_test.go, example_test.go): an independent implementation.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
GO_NOTE = GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"


def _go_signer() -> t.Signer:
    raw = base64.b64decode(GO_SKEY.split("+", 4)[4])
    assert raw[0] == 1
    return t.Signer.from_seed("PeterNeumann", raw[1:])


def test_signed_notes_match_the_go_reference_vector() -> None:
    signer = _go_signer()
    assert signer.verifier_key() == GO_VKEY
    assert signer.sign_note(GO_TEXT) == GO_NOTE
    assert t.Verifier.parse(GO_VKEY).open(GO_NOTE) == GO_TEXT


def test_a_note_with_a_changed_text_or_another_key_is_refused() -> None:
    verifier = t.Verifier.parse(GO_VKEY)
    with pytest.raises(ValueError, match="does not verify"):
        verifier.open(GO_NOTE.replace("answer", "Answer"))
    other = t.Signer.from_seed("PeterNeumann", bytes(32))
    with pytest.raises(ValueError, match="no signature by the pinned key"):
        verifier.open(other.sign_note(GO_TEXT))
    with pytest.raises(ValueError, match="not a signed note"):
        verifier.open(GO_TEXT)


def test_verifier_keys_are_checked() -> None:
    t.Verifier.parse("TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")  # a '+' in the base64
    for bad in (GO_VKEY[:-1], GO_VKEY.replace("c74f20a3", "c74f20a4"), "PeterNeumann+c74f20a3",
                GO_VKEY.replace("+ARpc", "+AhpC")):
        with pytest.raises(ValueError):
            t.Verifier.parse(bad)


def test_a_checkpoint_is_origin_size_and_root_and_round_trips() -> None:
    cp = t.Checkpoint(t.origin_for("local"), 1000, mth(0, 1000))
    body = cp.body()
    assert body == f"grantline.notify/local\n1000\n{base64.b64encode(mth(0, 1000)).decode()}\n"
    assert t.Checkpoint.parse(body) == cp
    signer = t.Signer.from_seed(cp.origin, t.dev_seed("k"))
    note = t.signed_checkpoint(signer, cp)
    assert t.Checkpoint.parse(t.Verifier.parse(signer.verifier_key()).open(note)) == cp
    for bad in ("x\n01\nAAAA\n", "x\n1\n" + base64.b64encode(b"short").decode() + "\n", "x\n1\n"):
        with pytest.raises(ValueError):
            t.Checkpoint.parse(bad)


def test_the_key_setting_is_a_base64_32_byte_seed_and_the_dev_key_is_stable() -> None:
    seed = bytes(range(32))
    assert t.seed_from_setting(base64.b64encode(seed).decode()) == seed
    for bad in ("not base64!", base64.b64encode(bytes(31)).decode()):
        with pytest.raises(ValueError):
            t.seed_from_setting(bad)
    assert t.dev_seed("a") == t.dev_seed("a") != t.dev_seed("b")
