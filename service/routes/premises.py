"""Premises and their permits (read). Trader names are personal data: not every role may read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from service.auth import requires
from service.deps import BBoxDep, LimitDep, OutCrsDep, SessionDep
from service.geojson import collection
from storage import read

router = APIRouter(prefix="/v1/premises", tags=["premises"], dependencies=[Depends(requires("read:premises"))])

Category = Annotated[
    str | None,
    Query(
        pattern="^(internet_cafe|entertainment|bar|lottery|tobacco|alcohol|food_stall|polluter|hazardous|other)$",
        description="observed or permitted category",
    ),
]


@router.get("", summary="Premises as a GeoJSON FeatureCollection, with their permits")
def list_premises(
    request: Request,
    session: SessionDep,
    bbox: BBoxDep,
    limit: LimitDep,
    district: Annotated[str | None, Query(description="adcode; a city or province includes its counties")] = None,
    category: Category = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    after: Annotated[int | None, Query(ge=0, description="keyset cursor from the `next` link")] = None,
    out_crs: OutCrsDep = "wgs84",
) -> dict[str, Any]:
    page = read.list_premises(
        session, bbox=bbox, district=district, category=category, name=name, after=after, limit=limit
    )
    return collection(request, page.features, next_after=page.next_after, out_crs=out_crs)
