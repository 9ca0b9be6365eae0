"""What the transparency log's routes take and answer (CONTRACT.md, "The transparency log")."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

# Far beyond any log, small enough for PostgreSQL's bigint and for the arithmetic on it.
_LAST = 2**53

Index = Annotated[int, Query(ge=0, le=_LAST, description="0-based leaf index")]
TreeSize = Annotated[int, Query(ge=1, le=_LAST, description="tree size (number of leaves)")]
Start = Annotated[int, Query(ge=0, le=_LAST, description="index of the first entry")]
End = Annotated[int, Query(ge=0, le=_LAST, description="index of the last entry (inclusive, as RFC 9162 "
                                                        "get-entries); at most 1,000 entries are answered")]
FromSize = Annotated[int, Query(alias="from", ge=1, le=_LAST, description="the older tree size")]
ToSize = Annotated[int, Query(alias="to", ge=1, le=_LAST, description="the newer tree size")]

CHECKPOINT_MEDIA = "text/plain; charset=utf-8"


class LogEntry(BaseModel):
    index: int
    entry: str = Field(description="base64 of the exact bytes hashed: canonical JSON of the announcement's "
                                   "public fields, the event id and the entry type")


class EntriesPage(BaseModel):
    entries: list[LogEntry]


class InclusionProof(BaseModel):
    index: int
    size: int
    hashes: list[str] = Field(description="RFC 9162 §2.1.3 audit path, base64, from the leaf up")


class ConsistencyProof(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from")
    to: int
    hashes: list[str] = Field(description="RFC 9162 §2.1.4 consistency proof, base64")
