"""The payee routes' answers (the request body is checked by payees.domain.validate_payee and
documented with its PAYEE_SCHEMA)."""

from __future__ import annotations

from pydantic import BaseModel


class PayeeShown(BaseModel):
    account_name: str
    account_number: str  # masked: ****0123
    bank_code: str


class PayeeReplaced(BaseModel):
    application_id: str
    payee: PayeeShown
    updated_at: str
    changed: bool  # false: the same payee as before, nothing published
