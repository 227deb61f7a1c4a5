"""The audit log: who did what, when and from where. Every write and every check leaves a row."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.orm import Session

from storage.models import AuditEntry

_COLUMNS = (
    "method", "path", "status", "token_id", "token_name", "role", "route", "object_ids", "client", "request_id",
    "idempotency_key", "duration_ms",
)  # fmt: skip


def insert_sql(prefix: str = "") -> str:
    """``INSERT INTO audit_log …`` with its parameters named ``prefix + column`` (to compose statements)."""
    values = ", ".join(
        f"CAST(:{prefix}{c} AS jsonb)" if c == "object_ids" else f":{prefix}{c}" for c in _COLUMNS
    )  # fmt: skip
    return f"INSERT INTO audit_log ({', '.join(_COLUMNS)}) VALUES ({values})"


def params(
    *,
    method: str,
    path: str,
    status: int,
    token_id: int | None = None,
    token_name: str | None = None,
    role: str | None = None,
    route: str | None = None,
    object_ids: dict[str, Any] | None = None,
    client: str | None = None,
    request_id: str | None = None,
    idempotency_key: str | None = None,
    duration_ms: float | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """The parameters of :func:`insert_sql` for one row."""
    row = {
        "method": method, "path": path[:2000], "status": status, "token_id": token_id, "token_name": token_name,
        "role": role, "route": route, "object_ids": json.dumps(object_ids or {}, ensure_ascii=False),
        "client": client, "request_id": request_id, "idempotency_key": idempotency_key, "duration_ms": duration_ms,
    }  # fmt: skip
    return {prefix + k: v for k, v in row.items()}


def record(session: Session, **row: Any) -> int:
    """Add one audit row (the keyword arguments of :func:`params`); returns its id."""
    return session.execute(_INSERT, params(**row)).scalar_one()


_INSERT = text(insert_sql() + " RETURNING id")


def _public(row: AuditEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "token": {"id": row.token_id, "name": row.token_name, "role": row.role},
        "method": row.method,
        "path": row.path,
        "route": row.route,
        "status": row.status,
        "object_ids": row.object_ids,
        "client": row.client,
        "request_id": row.request_id,
        "idempotency_key": row.idempotency_key,
        "duration_ms": row.duration_ms,
    }


def list_entries(
    session: Session,
    *,
    limit: int,
    before_id: int | None = None,
    token_id: int | None = None,
    role: str | None = None,
    method: str | None = None,
    path_prefix: str | None = None,
    status: int | None = None,
    object_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; returns the page and the id to continue before (None on the last page)."""
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit + 1)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    if token_id is not None:
        stmt = stmt.where(AuditEntry.token_id == token_id)
    if role is not None:
        stmt = stmt.where(AuditEntry.role == role)
    if method is not None:
        stmt = stmt.where(AuditEntry.method == method.upper())
    if path_prefix is not None:
        stmt = stmt.where(AuditEntry.path.startswith(path_prefix, autoescape=True))
    if status is not None:
        stmt = stmt.where(AuditEntry.status == status)
    if object_id is not None:
        match = literal_column("CAST('$.* ? (@ == $v)' AS jsonpath)")
        stmt = stmt.where(func.jsonb_path_exists(AuditEntry.object_ids, match, func.jsonb_build_object("v", object_id)))
    if since is not None:
        stmt = stmt.where(AuditEntry.at >= since)
    if until is not None:
        stmt = stmt.where(AuditEntry.at < until)
    rows = list(session.scalars(stmt))
    more = len(rows) > limit
    rows = rows[:limit]
    return [_public(r) for r in rows], (rows[-1].id if more and rows else None)


def count_for_objects(session: Session, *, key: str, values: list[str]) -> int:
    """How many audit rows name one of ``values`` under ``key`` in their object ids."""
    if not values:
        return 0
    stmt = select(func.count()).select_from(AuditEntry).where(AuditEntry.object_ids[key].astext.in_(values))
    return int(session.scalar(stmt) or 0)
