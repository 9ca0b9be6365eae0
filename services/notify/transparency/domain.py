"""The transparency log's pure logic: RFC 9162 Merkle hashing over stored complete subtrees, proof
assembly and verification, the entries' canonical bytes, and the C2SP signed notes (checkpoint
and verifier key). No I/O, no clock.

Storage model. A complete subtree is the aligned range of leaves [i·2^l, (i+1)·2^l); once the
log has that many leaves its hash never changes, so it is stored once as node (level l, index i)
(level 0: the leaf hashes). Every hash RFC 9162 asks for (a root at any size, a proof element)
is the hash of a range [start, end) whose start is aligned to the largest power of two not above
its length, and such a range is a handful of stored complete subtrees (`subtrees`), folded from
the right. So a root or a proof costs O(log n) stored hashes and no rehashing of the log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

EntryKind = Literal["published", "withdrawn", "finalized"]
ENTRY_KINDS: tuple[EntryKind, ...] = ("published", "withdrawn", "finalized")
# The announcement's fields that never change once published: what a published entry pins.
# (Status, objection counts and finalisation change over time; finalisation has an entry of its own.)
ANNOUNCEMENT_FIELDS = ("id", "applicant_name", "program", "year", "subject", "amount", "published_at",
                       "notice_ends_at")
# When the change happened, per kind: the public field it shows up as.
_TIME_FIELD: dict[EntryKind, str] = {"published": "published_at", "withdrawn": "withdrawn_at",
                                     "finalized": "finalized_at"}

Node = tuple[int, int]  # (level, index): the complete subtree of leaves [index·2^level, (index+1)·2^level)
Range = tuple[int, int]  # leaves [start, end)
HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()  # RFC 9162 §2.1.1: MTH({}) = HASH()


# --- hashing -----------------------------------------------------------------------------------


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """RFC 9162's k for n > 1: the largest power of two smaller than n."""
    return 1 << ((n - 1).bit_length() - 1)


def subtrees(start: int, end: int) -> list[Node]:
    """The stored complete subtrees whose right fold is MTH(D[start:end]), left to right.
    `start` must be aligned as RFC 9162's recursion leaves it (0, or a sum of strictly
    decreasing powers of two each at least end - start's largest power of two)."""
    out: list[Node] = []
    while start < end:
        k = 1 << ((end - start).bit_length() - 1)  # the largest power of two not above the length
        if start % k:
            raise ValueError(f"range [{start}, {end}) is not aligned as RFC 9162 splits a tree")
        level = k.bit_length() - 1
        out.append((level, start >> level))
        start += k
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from its complete subtrees (`subtrees`): each joins everything to its right."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def peaks(size: int) -> list[Node]:
    """The complete subtrees of a tree of `size` leaves: what its root and the next append need."""
    return subtrees(0, size)


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1) as the ranges whose MTH each element is,
    from the leaf up."""
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    top_down: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            top_down.append((start + k, end))
            end = start + k
        else:
            top_down.append((start, start + k))
            start += k
    return top_down[::-1]


def consistency_ranges(first: int, second: int) -> list[Range]:
    """PROOF(first, D[0:second]) (RFC 9162 §2.1.4.1) as the ranges whose MTH each element is.
    Empty when the sizes are equal."""
    if not 0 < first <= second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    top_down: list[Range] = []
    start, end, whole = 0, second, True  # `whole`: SUBPROOF's b (the old tree is the subtree so far)
    while True:
        m = first - start
        if m == end - start:
            if not whole:
                top_down.append((start, end))
            break
        k = _split(end - start)
        if m <= k:
            top_down.append((start + k, end))
            end = start + k
        else:
            top_down.append((start, start + k))
            start += k
            whole = False
    return top_down[::-1]


def nodes_for(ranges: Iterable[Range]) -> set[Node]:
    """Every stored node the ranges' hashes are folded from."""
    return {node for start, end in ranges for node in subtrees(start, end)}


class MissingNode(LookupError):
    """A complete subtree the log should have stored is not there: the log is damaged."""


def range_hash(start: int, end: int, stored: Mapping[Node, bytes]) -> bytes:
    try:
        return fold([stored[node] for node in subtrees(start, end)])
    except KeyError as exc:
        raise MissingNode(f"the log has no stored hash for subtree {exc.args[0]}") from None


def assemble(ranges: Sequence[Range], stored: Mapping[Node, bytes]) -> list[bytes]:
    """A proof's hashes from the stored nodes (`nodes_for(ranges)`)."""
    return [range_hash(start, end, stored) for start, end in ranges]


def root(size: int, stored: Mapping[Node, bytes]) -> bytes:
    return range_hash(0, size, stored)


class StoredNode:
    """A complete subtree's hash. A plain slotted class: the append makes one per leaf on
    average, and a frozen dataclass would cost five times as much at 10⁶ leaves."""

    __slots__ = ("hash", "index", "level")

    def __init__(self, level: int, index: int, hash: bytes) -> None:
        self.level, self.index, self.hash = level, index, hash

    def __repr__(self) -> str:
        return f"StoredNode({self.level}, {self.index}, {self.hash.hex()[:12]}…)"


def appended_nodes(size: int, peak_hashes: Sequence[bytes], leaf_hashes: Sequence[bytes]) -> list[StoredNode]:
    """The complete subtrees of level ≥ 1 that appending `leaf_hashes` to a tree of `size` leaves
    (whose peaks' hashes are `peak_hashes`, as `peaks(size)` orders them) completes: at most
    about log n per leaf, one per leaf on average."""
    stack = [StoredNode(level, index, h) for (level, index), h in zip(peaks(size), peak_hashes, strict=True)]
    made: list[StoredNode] = []
    sha256 = hashlib.sha256
    for offset, h in enumerate(leaf_hashes):
        node = StoredNode(0, size + offset, h)
        # The peaks' levels strictly decrease: a new leaf joins every peak as low as it is.
        while stack and stack[-1].level == node.level:
            left = stack.pop()
            node = StoredNode(node.level + 1, left.index >> 1, sha256(b"\x01" + left.hash + node.hash).digest())
            made.append(node)
        stack.append(node)
    return made


# --- verification (RFC 9162 §2.1.3.2, §2.1.4.2): what a client runs ------------------------------


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], expected_root: bytes) -> bool:
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == expected_root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    if first < 0 or first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof  # the empty tree is a prefix of every tree
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # an exact power of two: the old root is the first subtree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == first_root and sr == second_root and sn == 0


# --- entries -----------------------------------------------------------------------------------


def canonical_json(value: Mapping[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8 (orjson never escapes non-ASCII): the bytes that are hashed."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


@dataclass(frozen=True)
class Change:
    """An announcement change to log: what happened to which application's announcement."""

    kind: EntryKind
    application_id: str


@dataclass(frozen=True)
class Entry:
    kind: EntryKind
    announcement_id: str
    event_id: uuid.UUID
    entry: bytes


def announcement_entry(kind: EntryKind, event_id: uuid.UUID, public: Mapping[str, Any],
                       at: str | None = None) -> Entry:
    """A log entry: the announcement's public fields as the listing serves them
    (`ANNOUNCEMENT_FIELDS` of services.notify.domain.public_announcement), the event id of the
    change and its type; a withdrawal or finalisation adds its time (`withdrawn_at` /
    `finalized_at`)."""
    if kind not in ENTRY_KINDS:
        raise ValueError(f"unknown entry type {kind!r}")
    body: dict[str, Any] = {name: public[name] for name in ANNOUNCEMENT_FIELDS}
    if kind != "published":
        if at is None:
            raise ValueError(f"a {kind} entry needs its time")
        body[_TIME_FIELD[kind]] = at
    body["event_id"] = str(event_id)
    body["type"] = kind
    return Entry(kind, str(public["id"]), event_id, canonical_json(body))


def unlogged(entries: Sequence[Entry], logged: set[uuid.UUID]) -> list[Entry]:
    """The entries to append: one per event, none already in the log (appending twice for one
    event is a no-op)."""
    out: list[Entry] = []
    seen = set(logged)
    for e in entries:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out.append(e)
    return out


def entry_matches(entry: Mapping[str, Any], served: Mapping[str, Any]) -> list[str]:
    """The announcement fields on which a logged entry and the announcement as served differ."""
    return [name for name in ANNOUNCEMENT_FIELDS if entry.get(name) != served.get(name)]


# --- signed notes (C2SP signed-note, tlog-checkpoint) --------------------------------------------

_ED25519 = 0x01
_SIG_PREFIX = "— "  # U+2014 EM DASH, then a space


def origin_for(deployment: str) -> str:
    return f"grantline.notify/{deployment}"


def key_id(name: str, public_key: bytes) -> bytes:
    """C2SP signed-note: the first four bytes of SHA-256(name || 0x0A || type || key)."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([_ED25519]) + public_key).digest()[:4]


def _valid_name(name: str) -> bool:
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


@dataclass(frozen=True)
class Signer:
    name: str
    private: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        if len(seed) != 32:
            raise ValueError("an Ed25519 seed is 32 bytes")
        if not _valid_name(name):
            raise ValueError(f"{name!r} cannot name a signed-note key (no spaces, no '+')")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    def verifier_key(self) -> str:
        """`<name>+<hex key id>+<base64(0x01 || public key)>`."""
        encoded = base64.b64encode(bytes([_ED25519]) + self.public_key).decode()
        return f"{self.name}+{key_id(self.name, self.public_key).hex()}+{encoded}"

    def sign_note(self, text: str) -> str:
        """The note followed by a blank line and its signature line."""
        if not text.endswith("\n"):
            raise ValueError("a note's text ends with a newline")
        signature = self.private.sign(text.encode())
        blob = base64.b64encode(key_id(self.name, self.public_key) + signature).decode()
        return f"{text}\n{_SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """A C2SP verifier key; ValueError saying what is wrong with it."""
        parts = vkey.strip().split("+", 2)  # base64 may itself hold a '+'
        if len(parts) != 3 or not _valid_name(parts[0]):
            raise ValueError("a verifier key is <name>+<hex key id>+<base64 key>")
        name, hex_id, b64 = parts
        try:
            kid = bytes.fromhex(hex_id)
            raw = base64.b64decode(b64, validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("the verifier key's id or key is not hex / base64") from None
        if len(kid) != 4 or len(raw) != 33 or raw[0] != _ED25519:
            raise ValueError("the verifier key is not an Ed25519 signed-note key")
        if key_id(name, raw[1:]) != kid:
            raise ValueError("the verifier key's id does not match its name and key")
        return cls(name, kid, raw[1:])

    def open(self, note: str) -> str:
        """The note's text if one of its signatures is this key's and verifies; ValueError
        saying why not."""
        text, sep, signatures = note.rpartition("\n\n")
        if not sep or not signatures.endswith("\n"):
            raise ValueError("not a signed note (no blank line before the signatures)")
        text += "\n"
        for line in signatures[:-1].split("\n"):
            if not line.startswith(_SIG_PREFIX):
                raise ValueError("malformed signature line in the note")
            name, _, blob = line[len(_SIG_PREFIX):].partition(" ")
            try:
                raw = base64.b64decode(blob, validate=True)
            except (ValueError, binascii.Error):
                raise ValueError("a signature in the note is not base64") from None
            if name != self.name or raw[:4] != self.key_id:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(self.public_key).verify(raw[4:], text.encode())
            except InvalidSignature:
                raise ValueError(f"the checkpoint's signature by {self.name} does not verify with the pinned key") \
                    from None
            return text
        raise ValueError(f"the checkpoint carries no signature by the pinned key {self.name}+{self.key_id.hex()}")


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def body(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not lines[1].isdigit() or (lines[1] != "0" and lines[1][0] == "0"):
            raise ValueError("the checkpoint is not origin, size and root hash, one a line")
        try:
            root_hash = base64.b64decode(lines[2], validate=True)
        except (ValueError, binascii.Error):
            raise ValueError("the checkpoint's root hash is not base64") from None
        if len(root_hash) != HASH_SIZE:
            raise ValueError("the checkpoint's root hash is not 32 bytes")
        return cls(lines[0], int(lines[1]), root_hash)


def signed_checkpoint(signer: Signer, checkpoint: Checkpoint) -> str:
    return signer.sign_note(checkpoint.body())


def dev_seed(webhook_signing_key: str) -> bytes:
    """The signing seed of a stack that has no GRANTLINE_TRANSPARENCY_KEY (never production:
    settings refuse it there). Derived from the webhook signing key because that is already a
    per-stack secret that survives restarts: the dev/test log keeps one key across restarts with
    no extra setting, and two stacks with different secrets get different keys."""
    return hashlib.sha256(b"grantline.notify transparency dev key\n" + webhook_signing_key.encode()).digest()


def seed_from_setting(value: str) -> bytes:
    try:
        seed = base64.b64decode(value.strip(), validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("GRANTLINE_TRANSPARENCY_KEY is not base64") from None
    if len(seed) != 32:
        raise ValueError("GRANTLINE_TRANSPARENCY_KEY must be the base64 of a 32-byte Ed25519 seed")
    return seed
