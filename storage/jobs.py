"""Background jobs: our public job rows, enqueued on procrastinate's queue in the same transaction."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from geo.errors import NotFound
from storage.models import Job

QUEUE = "safezone"


def enqueue(
    session: Session,
    *,
    kind: str,
    params: dict[str, Any] | None = None,
    token_id: int | None = None,
    total: int | None = None,
) -> uuid.UUID:
    """Create a job row and put it on the queue; both commit (or not) with the caller's transaction."""
    job_id = uuid.uuid4()
    session.add(Job(id=job_id, kind=kind, params=params or {}, token_id=token_id, total=total, status="queued"))
    session.flush()
    session.execute(
        text(
            "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, 0, NULL, NULL, CAST(:args AS jsonb), NULL)"
            "::procrastinate_job_to_defer_v1])"
        ),
        {"queue": QUEUE, "task": "run_job", "args": json.dumps({"job_id": str(job_id)})},
    )
    return job_id


def get_job(session: Session, job_id: uuid.UUID) -> dict[str, Any]:
    job = session.get(Job, job_id)
    if job is None:
        msg = f"no job with id {job_id}"
        raise NotFound(msg, field="id", value=str(job_id), message_zh=f"未找到任务 {job_id}")
    return {
        "id": str(job.id),
        "kind": job.kind,
        "status": job.status,
        "done": job.done,
        "total": job.total,
        "progress": (job.done / job.total) if job.total else (1.0 if job.status == "done" else 0.0),
        "params": job.params,
        "result": job.result,
        "error": job.error,
        "token_id": job.token_id,
        "created_at": job.created_at.isoformat(),
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }


def load_job(session: Session, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        msg = f"no job with id {job_id}"
        raise NotFound(msg, field="id", value=str(job_id))
    return job


def mark_started(session: Session, job_id: uuid.UUID) -> None:
    session.execute(
        update(Job).where(Job.id == job_id).values(status="running", started_at=dt.datetime.now(dt.UTC), error=None)
    )


def mark_progress(session: Session, job_id: uuid.UUID, *, done: int, total: int | None = None) -> None:
    values: dict[str, Any] = {"done": done}
    if total is not None:
        values["total"] = total
    session.execute(update(Job).where(Job.id == job_id).values(**values))


def mark_finished(session: Session, job_id: uuid.UUID, *, result: dict[str, Any]) -> None:
    session.execute(
        update(Job).where(Job.id == job_id).values(status="done", result=result, finished_at=dt.datetime.now(dt.UTC))
    )


def mark_failed(session: Session, job_id: uuid.UUID, *, error: dict[str, Any]) -> None:
    session.execute(
        update(Job).where(Job.id == job_id).values(status="failed", error=error, finished_at=dt.datetime.now(dt.UTC))
    )


def queue_depth(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status")).all()
    return {status: n for status, n in rows}


def job_ids(session: Session, *, kind: str | None = None) -> list[uuid.UUID]:
    stmt = select(Job.id).order_by(Job.created_at)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    return list(session.scalars(stmt))
