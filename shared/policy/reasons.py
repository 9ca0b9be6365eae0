"""A reason in a decision, with the seed paragraph it cites (eligibility's and the ledger's alike)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    code: str
    message: str
    citation: str

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "citation": self.citation}
