"""Payee validation and masking: pure, no I/O, no clock."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from shared.kernel.errors import FieldProblem

PAYEE_KEYS = ("account_name", "account_number", "bank_code")
# ISO 20022 pain.001 carries the creditor's name as Max140Text: a longer name cannot be paid.
ACCOUNT_NAME_MAX = 140
# Mainland account numbers are all digits: personal cards 16-19, corporate (对公) accounts from
# about 8 to 25 depending on the bank; pain.001's account id is Max34Text.
ACCOUNT_NUMBER_MIN, ACCOUNT_NUMBER_MAX = 6, 32
_ACCOUNT_NUMBER = re.compile(rf"[0-9]{{{ACCOUNT_NUMBER_MIN},{ACCOUNT_NUMBER_MAX}}}")
# CNAPS (大额支付系统行号, 联行号): 3 digits bank category, 4 region, 4 branch, 1 check digit.
_BANK_CODE = re.compile(r"[0-9]{12}")
MASK = "****"
# Statuses of a payment after which the money has left: the payee can no longer change.
MONEY_LEFT = frozenset({"sent", "settled"})

# The JSON schema of a payee as the routes document it (the checks below are the authority).
PAYEE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": list(PAYEE_KEYS),
    "additionalProperties": False,
    "properties": {
        "account_name": {"type": "string", "minLength": 1, "maxLength": ACCOUNT_NAME_MAX,
                         "example": "上海某某生物科技有限公司"},
        "account_number": {"type": "string", "pattern": rf"^[0-9]{{{ACCOUNT_NUMBER_MIN},{ACCOUNT_NUMBER_MAX}}}$",
                           "description": "digits only; shown masked (****0123) except to payment officers",
                           "example": "31050161393600000123"},
        "bank_code": {"type": "string", "pattern": r"^[0-9]{12}$", "description": "the 12-digit CNAPS code",
                      "example": "105290061012"},
    },
}


@dataclass(frozen=True)
class Payee:
    account_name: str
    account_number: str
    bank_code: str

    def to_wire(self) -> dict[str, str]:
        """In full: for `application.received`, `payee.updated` and payment officers only."""
        return {"account_name": self.account_name, "account_number": self.account_number,
                "bank_code": self.bank_code}


def mask_account(number: str) -> str:
    """`****0123`: the last four digits, never more (a shorter string shows nothing of it)."""
    return MASK + number[-4:] if len(number) > 4 else MASK


def is_masked(number: str) -> bool:
    return number.startswith(MASK) and len(number) <= len(MASK) + 4


def masked(payee: dict[str, Any] | None) -> dict[str, Any] | None:
    """A stored or wire payee with its account number masked (idempotent)."""
    if not payee:
        return payee
    out = dict(payee)
    number = out.get("account_number")
    if isinstance(number, str) and not is_masked(number):
        out["account_number"] = mask_account(number)
    return out


def _name_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not value.strip():
        return "must not be empty"
    if len(value) > ACCOUNT_NAME_MAX:
        return f"must be at most {ACCOUNT_NAME_MAX} characters"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "must not contain control characters"
    return None


def _number_problem(value: object) -> str | None:
    # Messages never repeat the value: an account number must not reach a log or a stored answer.
    if not isinstance(value, str):
        return "must be a string"
    if not _ACCOUNT_NUMBER.fullmatch(value):
        return f"must be {ACCOUNT_NUMBER_MIN} to {ACCOUNT_NUMBER_MAX} digits (0-9), nothing else"
    if not value.strip("0"):
        return "is not an account number (all zeros)"
    return None


def _bank_code_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be a string"
    if not _BANK_CODE.fullmatch(value):
        return "must be the bank's 12-digit CNAPS code"
    return None


_CHECKS = {"account_name": _name_problem, "account_number": _number_problem, "bank_code": _bank_code_problem}


def validate_payee(value: object, at: str = "payee") -> tuple[Payee | None, list[FieldProblem]]:
    """(payee, []) for a well-formed payee object, else (None, a problem per bad field), each
    field named under `at` ("payee.bank_code"; `at=""` names them bare, as in a PUT's body)."""

    def name(key: str) -> str:
        return f"{at}.{key}" if at else key

    if not isinstance(value, dict):
        return None, [FieldProblem(at or "body", "must be an object with account_name, account_number, bank_code")]
    errors = [FieldProblem(name(str(key)), "unknown field") for key in sorted(set(value) - set(PAYEE_KEYS), key=str)]
    for key, check in _CHECKS.items():
        problem = "required" if key not in value else check(value[key])
        if problem is not None:
            errors.append(FieldProblem(name(key), problem))
    if errors:
        return None, errors
    return Payee(value["account_name"], value["account_number"], value["bank_code"]), []
