"""The audit log (admins): who wrote or checked what, when and from where."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from service import audit
from service.auth import requires
from service.deps import LimitDep, SessionDep
from storage import audit as store
from storage.access import TokenInfo

router = APIRouter(prefix="/v1/audit", tags=["audit"])


@router.get("", summary="Audit entries, newest first (filters: token, role, method, path, status, object, time)")
def list_audit(
    request: Request,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(requires("read:audit"))],
    limit: LimitDep,
    before: Annotated[int | None, Query(ge=1, description="keyset cursor from the `next` link")] = None,
    token_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    role: Annotated[str | None, Query(max_length=32)] = None,
    method: Annotated[Literal["POST", "PUT", "PATCH", "DELETE"] | None, Query()] = None,
    path: Annotated[str | None, Query(max_length=200, description="path prefix, e.g. /v1/checks")] = None,
    status: Annotated[int | None, Query(ge=100, le=599)] = None,
    object_id: Annotated[str | None, Query(max_length=200, description="a decision, job or other object id")] = None,
    since: Annotated[dt.datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[dt.datetime | None, Query(description="ISO 8601, exclusive")] = None,
) -> dict[str, Any]:
    entries, next_before = store.list_entries(
        session, limit=limit, before_id=before, token_id=token_id, role=role, method=method, path_prefix=path,
        status=status, object_id=object_id, since=since, until=until,
    )  # fmt: skip
    return audit.page(request, entries, next_before=next_before)
