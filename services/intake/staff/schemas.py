"""The staff accounts' request and response bodies."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.intake.staff.domain import unknown_roles
from shared.contracts.events import Actor
from shared.web.auth import STAFF_ROLES


class StaffCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    roles: list[str] = Field(min_length=1, max_length=20, description=f"one or more of: {', '.join(STAFF_ROLES)}")

    @field_validator("name")
    @classmethod
    def _a_name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value

    @field_validator("roles")
    @classmethod
    def _known_roles(cls, value: list[str]) -> list[str]:
        unknown = unknown_roles(value)
        if unknown:
            raise ValueError(
                f"unknown role {unknown[0][:40]!r}; the staff roles are {', '.join(STAFF_ROLES)}"
            )
        return value


class StaffCreated(BaseModel):
    id: str
    name: str
    roles: list[str]
    api_key: str = Field(description="shown once: only its hash is stored")


class Deactivation(BaseModel):
    by: Actor
    reason: str
    at: str | None


class StaffView(BaseModel):
    id: str
    name: str
    roles: list[str]
    active: bool
    registered_at: str
    registered_by: Actor | None
    deactivation: Deactivation | None


class StaffPage(BaseModel):
    items: list[StaffView]
    next_cursor: str | None  # null on the last page
