"""Mapbox vector tiles from PostGIS for the map pages (``/tiles/{layer}/{z}/{x}/{y}.pbf``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from service.deps import SessionDep
from service.maps import may_read_names, page_access, zone_specs
from storage import tiles
from storage.access import TokenInfo

router = APIRouter(prefix="/tiles", tags=["maps"])

MVT = "application/vnd.mapbox-vector-tile"
Layer = Literal["schools", "gates", "premises", "streets", "zones", "districts", "assets", "findings"]
# Tiles carry personal data for some roles: cached by the browser only, and revalidated after 5 minutes.
CACHE = "private, max-age=300"


@router.get(
    "/{layer}/{z}/{x}/{y}.pbf",
    summary="A Mapbox vector tile of one layer (premises aggregated per grid cell below zoom 14)",
    responses={200: {"content": {MVT: {}}}, 204: {"description": "nothing in this tile"}},
    response_class=Response,
)
def get_tile(
    request: Request,
    layer: Layer,
    z: int,
    x: int,
    y: int,
    session: SessionDep,
    token: Annotated[TokenInfo, Depends(page_access("read:maps"))],
    district: Annotated[str | None, Query(description="adcode; a city or province includes its counties")] = None,
) -> Response:
    if layer == "zones":
        registry = request.app.state.rules
        campuses = tiles.campuses_in_tile(session, z, x, y, max_distance_m=registry.max_distance_m(), district=district)
        body = tiles.zones_tile(session, z, x, y, zone_specs(registry, campuses))
    else:
        body = tiles.tile(session, layer, z, x, y, names=may_read_names(token), district=district)
    headers = {"Cache-Control": CACHE, "Vary": "Authorization"}
    if not body:
        return Response(status_code=204, headers=headers)
    return Response(body, media_type=MVT, headers=headers)
