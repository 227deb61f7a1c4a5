"""Exports for GIS staff: zones and findings as GeoPackage, GeoJSON, CSV or XLSX (``/v1/exports``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from service import ogc, scanning
from service.auth import requires
from service.deps import SessionDep
from storage import ogc as ogc_store
from storage import scan as scan_store
from storage.tiles import osm_data_present

router = APIRouter(prefix="/v1/exports", tags=["exports"])

Format = Annotated[Literal["gpkg", "geojson", "csv", "xlsx"], Query(description="file format")]
District = Annotated[str | None, Query(description="adcode; a city or province includes its counties")]
_PAGE = 50_000
_FILES = {"content": {media: {} for media in ogc.MEDIA.values()}}


def _file(body: bytes, name: str, fmt: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'}
    return Response(body, media_type=ogc.MEDIA[fmt], headers=headers)


def _encode(name: str, features: list[dict[str, Any]], fmt: str, geometry_type: str, osm: bool) -> bytes:
    if fmt == "gpkg":
        return ogc.to_gpkg(name, features, geometry_type=geometry_type, osm=osm)
    if fmt == "geojson":
        return ogc.to_geojson(name, features, osm=osm)
    return ogc.to_csv(features, osm=osm) if fmt == "csv" else ogc.to_xlsx(name, features, osm=osm)


@router.get("/zones", summary="Every safety zone (or a district's) as a GIS file", responses={200: _FILES})
def export_zones(
    request: Request,
    session: SessionDep,
    _: Annotated[Any, Depends(requires("read:schools"))],
    format: Format = "gpkg",  # noqa: A002 - the API's name
    district: District = None,
) -> Response:
    specs = ogc.zone_specs_for(session, request.app.state.rules, district=district)
    features = ogc_store.zone_items(session, specs).features
    body = _encode("zones", features, format, "MultiPolygon", osm_data_present(session))
    return _file(body, f"zones-{district}" if district else "zones", format)


@router.get("/findings", summary="Findings of a scan (latest by default) as a GIS file", responses={200: _FILES})
def export_findings(
    session: SessionDep,
    _: Annotated[Any, Depends(requires("read:findings"))],
    format: Format = "gpkg",  # noqa: A002 - the API's name
    district: District = None,
    scan: Annotated[int | None, Query(ge=1, description="scan id; default the latest")] = None,
) -> Response:
    scan_id, after, features = scan, None, []
    while True:
        scan_id, page = scan_store.list_findings(session, scan_id=scan_id, district=district, after=after, limit=_PAGE)
        features.extend(page.features)
        if (after := page.next_after) is None:
            break
    if format in ("csv", "xlsx"):  # the same columns as GET /v1/findings?format=csv|xlsx
        body = scanning.findings_csv(features) if format == "csv" else scanning.findings_xlsx(features)
    else:
        body = _encode("findings", features, format, "Point", osm_data_present(session))
    return _file(body, f"findings-{scan_id}", format)
