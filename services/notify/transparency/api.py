"""The transparency log's public routes: the signed checkpoint, the verifier key, entries and
proofs. No credential: anyone may check the 公示. They only translate HTTP into handler calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from services.notify.deps import ContextDep
from services.notify.transparency import handlers
from services.notify.transparency.domain import Signer
from services.notify.transparency.repository import SqlTransparencyRepository
from services.notify.transparency.schemas import (
    CHECKPOINT_MEDIA,
    ConsistencyProof,
    End,
    EntriesPage,
    FromSize,
    InclusionProof,
    Index,
    Start,
    ToSize,
    TreeSize,
)
from shared.web.deps import snapshot_of
from shared.web.openapi import PUBLIC, problems

router = APIRouter(prefix="/v1/transparency", tags=["transparency"])

# One read-only snapshot per answer: a checkpoint's size and root, a proof's size check and its
# nodes, are read from the same state of the log.
LogDep = Annotated[SqlTransparencyRepository, snapshot_of(SqlTransparencyRepository)]


def _signer(ctx: ContextDep) -> Signer:
    return handlers.signer_for(ctx.settings)


SignerDep = Annotated[Signer, Depends(_signer)]
_TEXT: dict[int | str, dict[str, Any]] = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}


@router.get("/checkpoint", response_class=PlainTextResponse, responses={**_TEXT, **problems(503)})
async def checkpoint(repo: LogDep, signer: SignerDep) -> PlainTextResponse:
    """The log's current C2SP tlog-checkpoint: origin, tree size, base64 root hash, a blank line
    and the Ed25519 signature line."""
    return PlainTextResponse(await handlers.current_checkpoint(repo, signer), media_type=CHECKPOINT_MEDIA)


@router.get("/key", response_class=PlainTextResponse, responses={**_TEXT})
async def key(signer: SignerDep) -> PlainTextResponse:
    """The C2SP signed-note verifier key of the checkpoints: pin it, then check every checkpoint
    against it (`grantline-verify-notice --key`)."""
    return PlainTextResponse(signer.verifier_key() + "\n", media_type=CHECKPOINT_MEDIA)


@router.get("/entries", response_model=EntriesPage, responses=problems(*PUBLIC))
async def entries(repo: LogDep, start: Start, end: End) -> dict[str, Any]:
    """Entries `start` to `end` inclusive (RFC 9162 get-entries), each the exact bytes hashed
    (base64); at most 1,000 at once and none past the log's end, so the answer may be shorter."""
    return {"entries": await handlers.entries(repo, start, end)}


@router.get("/proof/inclusion", response_model=InclusionProof, responses=problems(*PUBLIC))
async def inclusion(repo: LogDep, index: Index, size: TreeSize) -> dict[str, Any]:
    """RFC 9162 §2.1.3: the audit path of leaf `index` in the tree of the first `size` leaves."""
    return await handlers.inclusion_proof(repo, index, size)


@router.get("/proof/consistency", response_model=ConsistencyProof, response_model_by_alias=True,
            responses=problems(*PUBLIC))
async def consistency(repo: LogDep, first: FromSize, second: ToSize) -> dict[str, Any]:
    """RFC 9162 §2.1.4: that the tree of `from` leaves is a prefix of the tree of `to` leaves."""
    return await handlers.consistency_proof(repo, first, second)
