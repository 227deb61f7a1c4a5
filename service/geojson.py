"""GeoJSON responses: FeatureCollections with OGC-style ``links`` and coordinates in ``out_crs``."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from shapely.geometry import mapping, shape

from geo.coords import geometry_from_wgs84

OSM_ATTRIBUTION = "© OpenStreetMap contributors"


def convert(geometry: dict[str, Any] | None, out_crs: str) -> dict[str, Any] | None:
    if geometry is None or out_crs == "wgs84":
        return geometry
    return dict(mapping(geometry_from_wgs84(shape(geometry), out_crs)))


def feature(item: dict[str, Any], out_crs: str) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": item["id"],
        "geometry": convert(item["geometry"], out_crs),
        "properties": item["properties"],
    }


def collection(
    request: Request,
    items: list[dict[str, Any]],
    *,
    next_after: int | str | None,
    out_crs: str,
) -> dict[str, Any]:
    links = [{"rel": "self", "type": "application/geo+json", "href": str(request.url)}]
    if next_after is not None:
        links.append(
            {
                "rel": "next",
                "type": "application/geo+json",
                "href": str(request.url.include_query_params(after=next_after)),
            }
        )
    out: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [feature(i, out_crs) for i in items],
        "numberReturned": len(items),
        "links": links,
        "crs": out_crs,
    }
    if any((i["properties"] or {}).get("source") == "osm" for i in items):
        out["attribution"] = OSM_ATTRIBUTION
    return out


_GEOMETRY_TYPES = {"Point", "LineString", "Polygon", "MultiPoint", "MultiLineString", "MultiPolygon"}


def convert_tree(obj: Any, out_crs: str) -> Any:
    """Convert every GeoJSON geometry found anywhere in ``obj`` (dicts and lists) to ``out_crs``."""
    if out_crs == "wgs84":
        return obj
    if isinstance(obj, dict):
        if obj.get("type") in _GEOMETRY_TYPES and "coordinates" in obj:
            return convert(obj, out_crs)
        return {k: convert_tree(v, out_crs) for k, v in obj.items()}
    if isinstance(obj, list):
        return [convert_tree(v, out_crs) for v in obj]
    return obj
