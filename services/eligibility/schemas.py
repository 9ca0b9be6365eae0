"""Eligibility's request and response bodies. (The application posted to /v1/evaluate is
validated by shared.policy.validation against the catalog and documented by shared.web.openapi;
the receipt it answers is services.eligibility.domain.Assessment.to_receipt.)"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class CatalogListing(BaseModel):
    catalog_version: str
    items: list[dict[str, Any]]
