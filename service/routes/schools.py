"""Schools, campuses and gates (read)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from service.auth import requires
from service.deps import BBoxDep, LimitDep, OutCrsDep, SessionDep
from service.geojson import collection, convert, feature
from storage import read

router = APIRouter(prefix="/v1/schools", tags=["schools"], dependencies=[Depends(requires("read:schools"))])

Level = Annotated[
    str | None,
    Query(pattern="^(kindergarten|primary|junior|senior|vocational|special)$", description="a school level"),
]


@router.get("", summary="Schools as a GeoJSON FeatureCollection (geometry: their campuses)")
def list_schools(
    request: Request,
    session: SessionDep,
    bbox: BBoxDep,
    limit: LimitDep,
    district: Annotated[str | None, Query(description="adcode; a city or province includes its counties")] = None,
    level: Level = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[int | None, Query(ge=0, description="keyset cursor from the `next` link")] = None,
    out_crs: OutCrsDep = "wgs84",
) -> dict[str, Any]:
    page = read.list_schools(session, bbox=bbox, district=district, level=level, name=name, after=after, limit=limit)
    return collection(request, page.features, next_after=page.next_after, out_crs=out_crs)


@router.get("/{school_id}", summary="One school with its campuses and gates")
def get_school(school_id: int, session: SessionDep, out_crs: OutCrsDep = "wgs84") -> dict[str, Any]:
    item = read.get_school(session, school_id)
    out = feature(item, out_crs)
    for campus in out["properties"]["campuses"]:
        campus["geometry"] = convert(campus["geometry"], out_crs)
        for gate in campus["gates"]:
            gate["geometry"] = convert(gate["geometry"], out_crs)
    return out
