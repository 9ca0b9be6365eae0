"""Subjects compared as a person reads them (CONTRACT.md, "Intake": `subject`).

The overlap key (one award per applicant, subject and milestone) and the per-subject pools
must not be dodged by writing the same subject another way: full-width letters, a zero-width
joiner, a trailing space, lower case, a Cyrillic О for a Latin O, NFD against NFC accents.
So a subject is first refused if it carries invisible or format characters (nobody types
them on purpose), then folded: Unicode NFKC, case-folded, whitespace and the separators
`- _ . / · —` removed, and reduced to its Unicode TR39 confusable skeleton, with the
prototypes taken from the `confusable-homoglyphs` package's copy of Unicode's
confusables.txt rather than from a table of our own. The original is kept for display.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from importlib import resources

# CONTRACT.md names these separators; whitespace (U+0020 after the checks below) goes too.
_SEPARATORS = frozenset("-_./·—") | frozenset(" ")
# Marks the data file wraps right-to-left glyphs in; they are not part of any prototype.
_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")
# Unicode categories of characters a person cannot see: format (zero-width joiner, BOM, bidi
# controls…) and control characters; and every space other than the plain one.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Cc", "Zl", "Zp"})
SUBJECT_LENGTH_MAX = 200
_ROUNDS_MAX = 8


class SubjectRefused(ValueError):
    """The subject carries characters a reader cannot see, or folds to nothing."""


@lru_cache(maxsize=1)
def _confusables() -> dict[str, list[dict[str, str]]]:
    data = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    table: dict[str, list[dict[str, str]]] = json.loads(data)
    return table


@lru_cache(maxsize=4096)
def _prototype(char: str) -> str:
    """The character TR39 maps `char` to. The data lists, for a prototype, all its look-alikes,
    and for a look-alike, only its prototype; a pair that only name each other keeps the lower."""
    homoglyphs = _confusables().get(char)
    if not homoglyphs or len(homoglyphs) != 1:
        return char
    target = homoglyphs[0]["c"].translate(_DIRECTION_MARKS)
    back = _confusables().get(target, [])
    if len(back) > 1 or (len(back) == 1 and target < char):
        return target
    return char


def invisible_characters(subject: str) -> list[str]:
    """The code points (U+XXXX) in `subject` that a reader cannot see; empty when there are none."""
    found = []
    for char in subject:
        category = unicodedata.category(char)
        if category in _INVISIBLE_CATEGORIES or (category == "Zs" and char != " "):
            found.append(f"U+{ord(char):04X}")
    return found


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKC", text).casefold() if c not in _SEPARATORS)


def subject_key(subject: str) -> str:
    """The form subjects are compared in: equal keys are one subject. Raises SubjectRefused."""
    invisible = invisible_characters(subject)
    if invisible:
        raise SubjectRefused(f"contains invisible or format characters: {', '.join(invisible[:5])}")
    # The skeleton is taken of the upper-case form: confusables.txt maps capitals to Latin
    # capitals (Cyrillic Т → T) but some small letters to small capitals (т → ᴛ), so comparing
    # lower case would let "т" and "t" differ. Case is folded after.
    # The skeleton can map to a capital, a separator or a character that has a prototype of its
    # own ("0" → "O", "‐" → "-"): fold and skeleton again until nothing changes, so that a key is
    # its own key. Each round only moves characters toward prototypes; a few rounds suffice.
    key = _fold(subject)
    for _ in range(_ROUNDS_MAX):
        skeleton = "".join(_prototype(c) for c in unicodedata.normalize("NFD", key.upper()))
        folded = _fold(skeleton)
        if folded == key:
            break
        key = folded
    if not key:
        raise SubjectRefused("has no visible characters once separators are removed")
    return key
