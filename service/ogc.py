"""GIS interoperability: OGC API – Features documents (Part 1 Core + GeoJSON) and GIS file exports.

* :data:`COLLECTIONS` — the six collections, their titles, and the permission each needs (the same as
  the ``/v1`` reads: ``read:schools`` for schools, campuses, gates and zones, ``read:premises``,
  ``read:findings``).
* :func:`ogc_access` — the token from ``Authorization: Bearer`` (QGIS, GDAL with ``GDAL_HTTP_HEADERS``)
  or ``?token=`` (clients that cannot send a header); every link the documents carry keeps ``?token=``
  when it came that way, so a client following ``next`` stays authenticated.
* :func:`landing`, :func:`conformance`, :func:`collection_doc`, :func:`items_doc`, :func:`item_doc` —
  the documents. Only CRS84 is offered (OGC's ``crs`` parameter is Part 2; ``out_crs`` is never used here).
* :func:`zone_specs_for` — the zones (one per campus and distinct rule distance), as the maps draw them.
* :func:`to_geojson`, :func:`to_gpkg`, :func:`to_csv`, :func:`to_xlsx` — export files, with the
  OpenStreetMap attribution when OSM data is in the database.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Final

import geopandas as gpd
from fastapi import Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from openpyxl import Workbook
from shapely.geometry import shape
from sqlalchemy.orm import Session

from geo.errors import Forbidden, NotFound
from geo.rules import RuleRegistry
from service.auth import POLICY
from service.geojson import OSM_ATTRIBUTION
from service.maps import zone_specs
from storage import ogc as store
from storage.access import TokenInfo, lookup_token
from storage.read import BBox
from storage.tiles import ZoneSpec

GEOJSON: Final = "application/geo+json"
JSON: Final = "application/json"
OPENAPI: Final = "application/vnd.oai.openapi+json;version=3.0"
CRS84: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE: Final = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
)
_M_PER_DEG_MIN: Final = 100_000.0
"""Fewer metres than any degree of latitude, or of longitude below 25° N — a safe bound to grow boxes by."""


@dataclass(frozen=True)
class CollectionInfo:
    """One OGC collection: its id, titles, what it holds, and the permission needed to read it."""

    id: str
    title: str
    title_zh: str
    description: str
    permission: str


COLLECTIONS: Final[dict[str, CollectionInfo]] = {
    c.id: c
    for c in (
        CollectionInfo("schools", "Schools", "学校", "Schools and kindergartens (all campuses)", "read:schools"),
        CollectionInfo("campuses", "Campuses", "校区", "Campus outlines (a point if none known)", "read:schools"),
        CollectionInfo("gates", "Gates", "校门", "School gates on the campus edge", "read:schools"),
        CollectionInfo(
            "premises", "Premises", "经营场所", "Business premises with their categories and permits", "read:premises"
        ),
        CollectionInfo(
            "zones",
            "Safety zones",
            "学生安全区域",
            "One zone per campus and distinct rule distance in force in its district, from its outline or gates"
            " (geodesic buffer, for display; checks measure exactly)",
            "read:schools",
        ),
        CollectionInfo(
            "findings", "Findings", "排查发现", "Findings of the latest finished scan (premises × rule × campus)",
            "read:findings",
        ),
    )
}  # fmt: skip

_bearer = HTTPBearer(auto_error=False, description="API token; OGC clients that cannot send it may use ?token=")


def ogc_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[str | None, Query(description="the API token, for clients that cannot send a header")] = None,
) -> TokenInfo:
    """Any valid token (header or ``?token=``), 401 otherwise: ``read:ogc`` is held by every role.

    Each collection then needs the permission of its ``/v1`` read (:func:`collection_for`: 403).
    """
    clear = credentials.credentials if credentials is not None and credentials.credentials else token
    if not clear:
        raise HTTPException(401, "a bearer token or ?token= is required", headers={"WWW-Authenticate": "Bearer"})
    with request.app.state.sessionmaker() as session:
        info = lookup_token(session, clear)
    if info is None:
        raise HTTPException(401, "the token is not valid or has been revoked", headers={"WWW-Authenticate": "Bearer"})
    request.state.token = info
    return info


ogc_access.permission = "read:ogc"  # type: ignore[attr-defined]  # read by the access-matrix test
OgcToken = Annotated[TokenInfo, Depends(ogc_access)]


def readable(token: TokenInfo) -> list[CollectionInfo]:
    """The collections this token's role may read."""
    return [c for c in COLLECTIONS.values() if token.role in POLICY[c.permission]]


def collection_for(token: TokenInfo, collection_id: str) -> CollectionInfo:
    """The collection, if it exists (404) and the role may read it (403)."""
    info = COLLECTIONS.get(collection_id)
    if info is None:
        msg = f"no collection {collection_id!r}; expected one of {sorted(COLLECTIONS)}"
        raise NotFound(msg, field="collectionId", value=collection_id, message_zh=f"没有要素集合 {collection_id!r}")
    if token.role not in POLICY[info.permission]:
        msg = f"role {token.role!r} may not read the collection {collection_id!r}"
        raise Forbidden(msg, field="collectionId", value=collection_id, message_zh=f"当前角色无权读取 {collection_id}")
    return info


# --- documents -------------------------------------------------------------------------------------


def _href(request: Request, path: str, **params: Any) -> str:
    """An absolute link under the app, keeping ``?token=`` when the request came with it."""
    url = request.url_for("ogc_landing").replace(query="")
    url = url.replace(path=url.path.rstrip("/") + path)
    query = {k: v for k, v in params.items() if v is not None}
    if "token" in request.query_params:
        query["token"] = request.query_params["token"]
    return str(url.include_query_params(**query)) if query else str(url)


def _link(href: str, rel: str, media: str, title: str | None = None) -> dict[str, str]:
    link = {"href": href, "rel": rel, "type": media}
    if title:
        link["title"] = title
    return link


def landing(request: Request) -> dict[str, Any]:
    """The landing page: links to itself, the API definition, conformance and the collections."""
    base = str(request.base_url).rstrip("/")
    return {
        "title": "safezone — student safety zones (学生安全区域)",
        "description": "Schools, campuses, gates, premises, safety zones and scan findings as OGC API – Features",
        "links": [
            _link(_href(request, ""), "self", JSON, "this document"),
            _link(base + "/openapi.json", "service-desc", OPENAPI, "the API definition"),
            _link(base + "/docs", "service-doc", "text/html", "the API documentation"),
            _link(_href(request, "/conformance"), "conformance", JSON, "OGC API conformance classes"),
            _link(_href(request, "/collections"), "data", JSON, "the feature collections"),
        ],
    }


def conformance() -> dict[str, Any]:
    return {"conformsTo": list(CONFORMANCE)}


def collection_doc(request: Request, info: CollectionInfo, extent: store.Extent | None, *, osm: bool) -> dict[str, Any]:
    """A collection's metadata: id, titles, extent in CRS84, item type, CRS, links to its items."""
    description = info.description
    if osm:
        description += f". Data {OSM_ATTRIBUTION} (ODbL)"
    out: dict[str, Any] = {
        "id": info.id,
        "title": f"{info.title} {info.title_zh}",
        "description": description,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "links": [
            _link(_href(request, f"/collections/{info.id}"), "self", JSON, info.title),
            _link(_href(request, f"/collections/{info.id}/items"), "items", GEOJSON, f"{info.title} as GeoJSON"),
        ],
    }
    if osm:
        out["attribution"] = OSM_ATTRIBUTION
    if extent is not None:
        out["extent"] = {"spatial": {"bbox": [list(extent)], "crs": CRS84}}
    return out


def collections_doc(request: Request, docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"links": [_link(_href(request, "/collections"), "self", JSON)], "collections": list(docs)}


def _feature(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "id": item["id"], "geometry": item["geometry"], "properties": item["properties"]}


def items_doc(
    request: Request, info: CollectionInfo, page: store.ItemsPage, *, offset: int, limit: int, osm: bool
) -> dict[str, Any]:
    """A page of items with ``numberMatched``, ``numberReturned`` and self / next / prev links (Part 1)."""
    bbox = request.query_params.get("bbox")
    path = f"/collections/{info.id}/items"
    links = [_link(_href(request, path, bbox=bbox, limit=limit, offset=offset), "self", GEOJSON, "this page")]
    if offset + len(page.features) < page.matched:
        nxt = _href(request, path, bbox=bbox, limit=limit, offset=offset + limit)
        links.append(_link(nxt, "next", GEOJSON, "next page"))
    if offset > 0:
        prev = _href(request, path, bbox=bbox, limit=limit, offset=max(offset - limit, 0))
        links.append(_link(prev, "prev", GEOJSON, "previous page"))
    links.append(_link(_href(request, f"/collections/{info.id}"), "collection", JSON, info.title))
    out: dict[str, Any] = {
        "type": "FeatureCollection",
        "features": [_feature(f) for f in page.features],
        "numberMatched": page.matched,
        "numberReturned": len(page.features),
        "timeStamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "links": links,
    }
    if osm:
        out["attribution"] = OSM_ATTRIBUTION
    return out


def item_doc(request: Request, info: CollectionInfo, item: dict[str, Any], *, osm: bool) -> dict[str, Any]:
    out = _feature(item)
    out["links"] = [
        _link(_href(request, f"/collections/{info.id}/items/{item['id']}"), "self", GEOJSON),
        _link(_href(request, f"/collections/{info.id}"), "collection", JSON, info.title),
    ]
    if osm:
        out["attribution"] = OSM_ATTRIBUTION
    return out


# --- reading collections -----------------------------------------------------------------------------


def grow_deg(registry: RuleRegistry) -> float:
    """How far (in degrees) a zone may reach beyond its campus, at most."""
    return registry.max_distance_m() / _M_PER_DEG_MIN


def zone_specs_for(
    session: Session, registry: RuleRegistry, *, bbox: BBox | None = None, district: str | None = None
) -> list[ZoneSpec]:
    campuses = store.zone_campuses(session, bbox=bbox, grow_deg=grow_deg(registry), district=district)
    return zone_specs(registry, campuses)


def read_items(
    session: Session, registry: RuleRegistry, info: CollectionInfo, *, bbox: BBox | None, offset: int, limit: int
) -> store.ItemsPage:
    if info.id == "zones":
        specs = zone_specs_for(session, registry, bbox=bbox)
        return store.zone_items(session, specs, bbox=bbox, offset=offset, limit=limit)
    return store.items(session, info.id, bbox=bbox, offset=offset, limit=limit)


def read_item(session: Session, registry: RuleRegistry, info: CollectionInfo, fid: str) -> dict[str, Any]:
    missing = NotFound(
        f"no feature {fid!r} in collection {info.id!r}",
        field="featureId",
        value=fid,
        message_zh=f"要素集合 {info.id!r} 中没有要素 {fid!r}",
    )
    if info.id == "zones":
        campus_id = fid.split("-", 1)[0]
        if not campus_id.isdigit():
            raise missing
        specs = zone_specs(registry, store.zone_campuses(session, campus_ids=[int(campus_id)]))
        chosen = [s for s in specs if store.zone_id(s) == fid]
        if not chosen:
            raise missing
        return store.zone_items(session, chosen).features[0]
    if not fid.isdigit():
        raise missing
    return store.get_item(session, info.id, int(fid))


def read_extent(session: Session, registry: RuleRegistry, info: CollectionInfo) -> store.Extent | None:
    if info.id == "zones":
        return store.zone_extent(session, grow_deg=grow_deg(registry))
    return store.extent(session, info.id)


# --- exports -------------------------------------------------------------------------------------------

MEDIA: Final = {
    "geojson": GEOJSON,
    "gpkg": "application/geopackage+sqlite3",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_PLAIN_ATTRIBUTION: Final = "© OpenStreetMap contributors"


def _flat(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False)
    return value


def _rows(features: Sequence[dict[str, Any]], osm: bool) -> list[dict[str, Any]]:
    rows = []
    for f in features:
        row = {"id": f["id"], **{k: _flat(v) for k, v in f["properties"].items()}}
        if osm:
            row["attribution"] = _PLAIN_ATTRIBUTION
        rows.append(row)
    return rows


def to_geojson(name: str, features: Sequence[dict[str, Any]], *, osm: bool) -> bytes:
    """A GeoJSON FeatureCollection (RFC 7946, WGS84) with a top-level ``attribution`` when OSM data is in."""
    out: dict[str, Any] = {"type": "FeatureCollection", "name": name, "features": [_feature(f) for f in features]}
    if osm:
        out["attribution"] = _PLAIN_ATTRIBUTION
    return json.dumps(out, ensure_ascii=False).encode("utf-8")


def to_gpkg(name: str, features: Sequence[dict[str, Any]], *, geometry_type: str, osm: bool) -> bytes:
    """A GeoPackage with one layer ``name`` (EPSG:4326); the attribution in its description and a column."""
    frame = gpd.GeoDataFrame(_rows(features, osm), geometry=[shape(f["geometry"]) for f in features], crs="EPSG:4326")
    description = f"safezone {name}" + (f"; {_PLAIN_ATTRIBUTION} (ODbL)" if osm else "")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"{name}.gpkg"
        frame.to_file(
            path,
            layer=name,
            driver="GPKG",
            engine="pyogrio",
            geometry_type=geometry_type,
            promote_to_multi=geometry_type.startswith("Multi"),
            layer_options={"DESCRIPTION": description, "IDENTIFIER": name},
            metadata={"attribution": _PLAIN_ATTRIBUTION} if osm else None,
        )
        return path.read_bytes()


def _table(features: Sequence[dict[str, Any]], osm: bool) -> tuple[list[str], list[list[Any]]]:
    rows = _rows(features, osm)
    header: list[str] = []
    for row in rows:
        header.extend(k for k in row if k not in header)
    header.append("wkt")
    return header, [
        [row.get(k) for k in header[:-1]] + [shape(f["geometry"]).wkt] for row, f in zip(rows, features, strict=True)
    ]


def to_csv(features: Sequence[dict[str, Any]], *, osm: bool) -> bytes:
    """CSV in UTF-8 with BOM (Excel opens the Chinese), geometry as WKT in the last column."""
    header, rows = _table(features, osm)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return "\ufeff".encode() + buf.getvalue().encode("utf-8")


def to_xlsx(name: str, features: Sequence[dict[str, Any]], *, osm: bool) -> bytes:
    header, rows = _table(features, osm)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(name)
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()
