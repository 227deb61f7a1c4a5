"""Background jobs: state, progress and results."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from geo.errors import NotFound
from service.auth import requires
from service.deps import SessionDep
from storage import jobs as store
from storage.access import TokenInfo

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", summary="A job's status, progress and (when done) result")
def get_job(
    job_id: uuid.UUID,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("read:jobs"))],
) -> dict[str, Any]:
    job = store.get_job(session, job_id)
    if token.role != "admin" and job["token_id"] not in (None, token.id):
        msg = f"no job with id {job_id}"
        raise NotFound(msg, field="id", value=str(job_id))
    return job
