"""OGC API – Features (Part 1 Core, GeoJSON, OpenAPI 3.0) at ``/ogc``, for QGIS, GDAL and other GIS clients.

Paging is ``limit`` (clamped to the largest page, never an error, as Part 1 asks) and ``offset``, with
``next`` and ``prev`` links. Coordinates are CRS84 (WGS84 longitude, latitude) only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from service import ogc
from service.deps import BBoxDep, SessionDep
from storage.tiles import osm_data_present

router = APIRouter(prefix="/ogc", tags=["ogc"])

_GEOJSON = {200: {"content": {ogc.GEOJSON: {}}}}


@router.get("", name="ogc_landing", summary="OGC API landing page", response_class=JSONResponse)
def landing(request: Request, _: ogc.OgcToken) -> JSONResponse:
    return JSONResponse(ogc.landing(request))


@router.get("/conformance", summary="OGC API conformance classes", response_class=JSONResponse)
def conformance(_: ogc.OgcToken) -> JSONResponse:
    return JSONResponse(ogc.conformance())


@router.get("/collections", summary="The feature collections this token may read", response_class=JSONResponse)
def collections(request: Request, session: SessionDep, token: ogc.OgcToken) -> JSONResponse:
    registry, osm = request.app.state.rules, osm_data_present(session)
    docs = [
        ogc.collection_doc(request, info, ogc.read_extent(session, registry, info), osm=osm)
        for info in ogc.readable(token)
    ]
    return JSONResponse(ogc.collections_doc(request, docs))


@router.get("/collections/{collection_id}", summary="One feature collection", response_class=JSONResponse)
def collection(request: Request, collection_id: str, session: SessionDep, token: ogc.OgcToken) -> JSONResponse:
    info = ogc.collection_for(token, collection_id)
    extent = ogc.read_extent(session, request.app.state.rules, info)
    return JSONResponse(ogc.collection_doc(request, info, extent, osm=osm_data_present(session)))


@router.get(
    "/collections/{collection_id}/items",
    summary="Features of a collection (GeoJSON), paged with limit/offset and next/prev links",
    response_class=JSONResponse,
    responses=_GEOJSON,
)
def items(
    request: Request,
    collection_id: str,
    session: SessionDep,
    token: ogc.OgcToken,
    bbox: BBoxDep,
    limit: Annotated[int | None, Query(ge=1, description="page size; larger values are clamped")] = None,
    offset: Annotated[int, Query(ge=0, description="features to skip (follow the `next` link)")] = 0,
) -> JSONResponse:
    info = ogc.collection_for(token, collection_id)
    settings = request.app.state.settings
    size = min(limit or settings.page_limit_default, settings.page_limit_max)
    page = ogc.read_items(session, request.app.state.rules, info, bbox=bbox, offset=offset, limit=size)
    body: Any = ogc.items_doc(request, info, page, offset=offset, limit=size, osm=osm_data_present(session))
    return JSONResponse(body, media_type=ogc.GEOJSON)


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    summary="One feature (GeoJSON)",
    response_class=JSONResponse,
    responses=_GEOJSON,
)
def item(
    request: Request, collection_id: str, feature_id: str, session: SessionDep, token: ogc.OgcToken
) -> JSONResponse:
    info = ogc.collection_for(token, collection_id)
    found = ogc.read_item(session, request.app.state.rules, info, feature_id)
    return JSONResponse(ogc.item_doc(request, info, found, osm=osm_data_present(session)), media_type=ogc.GEOJSON)
