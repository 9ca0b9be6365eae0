"""Intake's request and response bodies. (An application's body is validated by
shared.policy.validation against the catalog, and documented by shared.web.openapi.)"""

from __future__ import annotations

from pydantic import BaseModel, Field, field_validator


class PartnerCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    callback_url: str = Field(min_length=1, max_length=2000)

    @field_validator("name", "callback_url")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class PartnerCreated(BaseModel):
    id: str
    name: str
    callback_url: str
    api_key: str
    webhook_secret: str


class ApplicationAccepted(BaseModel):
    id: str
    status: str
    links: dict[str, str]
