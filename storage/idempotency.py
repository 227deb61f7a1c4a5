"""Idempotency keys: the first answer to a keyed request, stored so that a retry gets it back.

A key is claimed by inserting its row (pending); a concurrent claim of the same key waits on the row
lock until the first transaction ends. Checks claim and complete the key in their own transaction, so
the decision and the stored answer commit together; imports claim in a transaction of their own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session

from storage.models import IdempotencyRecord

#: A pending claim older than this is abandoned (its request died) and may be taken over.
STALE_AFTER = dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Stored:
    fingerprint: str
    status: str
    response_status: int | None
    response: dict[str, Any] | None
    created_at: dt.datetime


def claim(session: Session, *, token_id: int, key: str, fingerprint: str, method: str, path: str) -> Stored | None:
    """Claim ``key`` for this token: None when it is ours now, else what is stored under it."""
    inserted = session.execute(
        text(
            "INSERT INTO idempotency_keys (token_id, key, fingerprint, method, path) "
            "VALUES (:token_id, :key, :fp, :method, :path) ON CONFLICT (token_id, key) DO NOTHING RETURNING key"
        ),
        {"token_id": token_id, "key": key, "fp": fingerprint, "method": method, "path": path},
    ).first()
    if inserted is not None:
        return None
    row = session.scalars(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.token_id == token_id, IdempotencyRecord.key == key)
        .with_for_update()
    ).one()
    stale = row.status == "pending" and row.created_at < dt.datetime.now(dt.UTC) - STALE_AFTER
    if stale and row.fingerprint == fingerprint:
        row.created_at = dt.datetime.now(dt.UTC)
        session.flush()
        return None
    return Stored(row.fingerprint, row.status, row.response_status, row.response, row.created_at)


def complete(session: Session, *, token_id: int, key: str, status: int, response: dict[str, Any]) -> None:
    """Store the answer under the claimed key."""
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.token_id == token_id, IdempotencyRecord.key == key)
        .values(status="done", response_status=status, response=response, completed_at=dt.datetime.now(dt.UTC))
    )


def release(session: Session, *, token_id: int, key: str) -> None:
    """Give a pending claim up (the request failed): a retry runs afresh."""
    session.execute(
        delete(IdempotencyRecord).where(
            IdempotencyRecord.token_id == token_id, IdempotencyRecord.key == key, IdempotencyRecord.status == "pending"
        )
    )


def purge(session: Session, *, older_than: dt.timedelta) -> int:
    """Forget keys older than ``older_than``; returns how many."""
    res = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < dt.datetime.now(dt.UTC) - older_than)
    )
    return int(res.rowcount or 0)
