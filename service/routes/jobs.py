"""Background jobs: state, progress and results (JSON, or CSV for batch checks)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from geo.errors import NotFound
from service.auth import requires
from service.deps import SessionDep
from storage import jobs as store
from storage.access import TokenInfo

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


@router.get("/{job_id}", summary="A job's status, progress and (when done) result; batch results also as CSV")
def get_job(
    job_id: uuid.UUID,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("read:jobs"))],
    format: Annotated[Literal["json", "csv"], Query(description="csv: one line per site of a batch check")] = "json",
) -> Any:
    job = store.get_job(session, job_id)
    if token.role != "admin" and job["token_id"] not in (None, token.id):
        msg = f"no job with id {job_id}"
        raise NotFound(msg, field="id", value=str(job_id))
    if format == "csv":
        from service.batch import results_csv

        if job["status"] != "done" or not job["result"] or "items" not in job["result"]:
            msg = f"job {job_id} has no per-site results (status {job['status']})"
            raise NotFound(msg, field="format", value="csv", message_zh="该任务没有可导出的结果")
        return Response(
            results_csv(job["result"]),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="batch-{job_id}.csv"'},
        )
    job.pop("params", None)
    return job
