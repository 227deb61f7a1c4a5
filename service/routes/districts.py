"""Administrative districts (read)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from service.auth import requires
from service.deps import BBoxDep, LimitDep, OutCrsDep, SessionDep
from service.geojson import collection
from storage import read

router = APIRouter(prefix="/v1/districts", tags=["districts"], dependencies=[Depends(requires("read:districts"))])


@router.get("", summary="Districts as a GeoJSON FeatureCollection")
def list_districts(
    request: Request,
    session: SessionDep,
    bbox: BBoxDep,
    limit: LimitDep,
    level: Annotated[str | None, Query(pattern="^(province|city|county)$")] = None,
    parent: Annotated[str | None, Query(pattern=r"^\d{6}$")] = None,
    after: Annotated[str | None, Query(pattern=r"^\d{6}$", description="keyset cursor from the `next` link")] = None,
    out_crs: OutCrsDep = "wgs84",
) -> dict[str, Any]:
    feats, nxt = read.list_districts(session, bbox=bbox, level=level, parent=parent, after=after, limit=limit)
    return collection(request, feats, next_after=nxt, out_crs=out_crs)
