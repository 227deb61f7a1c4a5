"""Mapbox vector tiles straight from PostGIS (``ST_AsMVT``), and the reads the map pages need.

Every tile query selects rows with ``geom && <tile envelope in EPSG:4326>`` so the GiST index on the
stored WGS84 geometry does the work; geometries are transformed to Web-Mercator (3857) only to be cut
into the tile by ``ST_AsMVTGeom``. Premises below zoom :data:`PREMISES_POINT_ZOOM` are never sent one
by one: those tiles read the counts per grid cell of ``premises_grid`` (32 × 32 cells per tile, counts
per category, kept up to date by the imports: :mod:`storage.premises_grid`), so their cost does not
grow with the number of premises. A tile with no feature is ``b""`` (the route answers 204).

Rows leave this module as bytes or plain dicts, never ORM objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.orm import Session

from geo.errors import InvalidInput, NotFound
from storage import premises_grid

__all__ = [
    "LAYERS",
    "PREMISES_POINT_ZOOM",
    "CampusInTile",
    "ZoneSpec",
    "campuses_in_tile",
    "check_tile",
    "district_like",
    "map_extent",
    "osm_data_present",
    "school_header",
    "school_surroundings",
    "tile",
    "zones_tile",
]

EXTENT: Final = 4096
BUFFER: Final = 64
PREMISES_POINT_ZOOM: Final = premises_grid.FINEST_ZOOM + 1
"""From this zoom on premises are points; below it, counts per grid cell (``premises_grid``)."""
MIN_ZOOM: Final = {
    "schools": 10,
    "gates": 13,
    "premises": premises_grid.COARSEST_ZOOM,
    "streets": 11,
    "zones": 13,
    "districts": 0,
    "assets": 11,
    "findings": 12,
}
"""Below these zooms a layer's tiles are empty (too small to see, too many to send)."""
MAJOR_HIGHWAYS: Final = (
    "motorway",
    "motorway_link",
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
)
STREETS_ALL_ZOOM: Final = 14
"""From this zoom every street is drawn; below it only :data:`MAJOR_HIGHWAYS`."""
_MERC_HALF: Final = 20037508.342789244

# A tile's envelope: in 3857 for ST_AsMVTGeom, in 4326 (with the clip buffer as margin) for the index.
_ENV = "ST_TileEnvelope(:z, :x, :y)"
_ENV_4326 = "ST_Transform(ST_TileEnvelope(:z, :x, :y, margin => 0.015625), 4326)"
_MVT_GEOM = "ST_AsMVTGeom(ST_Transform({col}, 3857), " + _ENV + ", 4096, 64, true)"
_DISTRICT = "(CAST(:district AS text) IS NULL OR {col} LIKE CAST(:district AS text))"


def _mvt(layer: str, inner: str) -> tuple[Any, str]:
    """``ST_AsMVT`` over ``inner`` (which yields a ``geom`` column); rows with no geometry dropped."""
    return text("SELECT ST_AsMVT(t, :layer, 4096, 'geom') FROM (" + inner + ") AS t WHERE t.geom IS NOT NULL"), layer


_SCHOOLS = _mvt(
    "schools",
    "SELECT c.id AS campus_id, s.id AS school_id, s.name, array_to_string(s.levels, ',') AS levels,"
    " COALESCE(s.levels[1], 'unknown') AS level, c.point_only, "
    + _MVT_GEOM.format(col="c.geom")
    + " AS geom FROM campuses c JOIN schools s ON s.id = c.school_id"
    " WHERE c.geom && " + _ENV_4326 + " AND " + _DISTRICT.format(col="c.district_adcode"),
)
_GATES = _mvt(
    "gates",
    "SELECT g.id AS gate_id, c.school_id, g.name, g.kind, g.in_use, "
    + _MVT_GEOM.format(col="g.geom")
    + " AS geom FROM gates g JOIN campuses c ON c.id = g.campus_id"
    " WHERE g.geom && " + _ENV_4326 + " AND " + _DISTRICT.format(col="c.district_adcode"),
)
_PREMISES_CATEGORY = (
    "COALESCE(p.categories[1], (SELECT pm.category FROM permits pm WHERE pm.premises_id = p.id"
    " ORDER BY pm.id LIMIT 1), 'other')"
)
_PREMISES_WHERE = " FROM premises p WHERE p.geom && " + _ENV_4326 + " AND " + _DISTRICT.format(col="p.district_adcode")
_PREMISES_NAMED = _mvt(
    "premises",
    "SELECT p.id AS premises_id, p.name, "
    + _PREMISES_CATEGORY
    + " AS category, "
    + _MVT_GEOM.format(col="p.geom")
    + " AS geom"
    + _PREMISES_WHERE,
)
_PREMISES_ANONYMOUS = _mvt(
    "premises",
    "SELECT " + _PREMISES_CATEGORY + " AS category, " + _MVT_GEOM.format(col="p.geom") + " AS geom" + _PREMISES_WHERE,
)
# Counts per cell of the tile's 32 × 32 grid, read from ``premises_grid`` (kept by the imports, see
# storage.premises_grid): one feature per cell with the number of premises, how many have no active
# permit, a property per category with its count, drawn at the mean position of the cell's premises.
# A cell split between districts has a row per district: they are added up here.
_PREMISES_CELLS = text(
    """
    SELECT ST_AsMVT(t, 'premises', 4096, 'geom') FROM (
        SELECT c.count, c.unlicensed, c.categories,
               ST_AsMVTGeom(ST_SetSRID(ST_MakePoint(c.x, c.y), 3857), ST_TileEnvelope(:z, :x, :y), 4096, 0, true)
                   AS geom
        FROM (
            SELECT sum(g.premises)::integer AS count, sum(g.unlicensed)::integer AS unlicensed,
                   CASE WHEN count(*) = 1 THEN (array_agg(g.categories))[1] ELSE (
                       SELECT jsonb_object_agg(kv.key, kv.n) FROM (
                           SELECT e.key, sum(e.value::integer) AS n
                           FROM unnest(array_agg(g.categories)) AS u(counts), jsonb_each_text(u.counts) AS e
                           GROUP BY e.key) kv
                   ) END AS categories,
                   sum(g.premises * g.x) / sum(g.premises) AS x, sum(g.premises * g.y) / sum(g.premises) AS y
            FROM premises_grid g
            WHERE g.zoom = :z AND (g.cx >> 5) = :x AND (g.cy >> 5) = :y
              AND (CAST(:district AS text) IS NULL OR g.district_adcode LIKE CAST(:district AS text))
            GROUP BY g.cx, g.cy
        ) AS c
    ) AS t WHERE t.geom IS NOT NULL
    """
)
_STREETS = _mvt(
    "streets",
    "SELECT e.name, e.highway, "
    "ST_AsMVTGeom(ST_Simplify(ST_Transform(e.geom, 3857), :tolerance), " + _ENV + ", 4096, 64, true) AS geom"
    " FROM street_edges e WHERE e.geom && " + _ENV_4326 + " AND (:all_streets OR e.highway = ANY(:major))",
)
_DISTRICTS = _mvt(
    "districts",
    "SELECT d.adcode, d.name, d.level, "
    "ST_AsMVTGeom(ST_Simplify(ST_Transform(d.geom, 3857), :tolerance), " + _ENV + ", 4096, 64, true) AS geom"
    " FROM districts d WHERE d.geom && " + _ENV_4326 + " AND " + _DISTRICT.format(col="d.adcode"),
)
_ASSETS = _mvt(
    "assets",
    "SELECT a.id AS asset_id, a.kind, a.name, " + _MVT_GEOM.format(col="a.geom") + " AS geom"
    " FROM zone_assets a WHERE a.geom && " + _ENV_4326,
)
# Findings of the latest finished scan (one point per premises × rule × campus), by status.
_FINDINGS_COLUMNS = (
    "SELECT f.id AS finding_id, f.status, f.category, f.rule_id, f.school_name, round(f.distance_m::numeric, 1)"
    "::float8 AS distance_m, "
)
_FINDINGS_WHERE = (
    " FROM findings f WHERE f.scan_id = (SELECT id FROM scans WHERE status = 'done' ORDER BY id DESC LIMIT 1)"
    " AND f.geom && " + _ENV_4326 + " AND " + _DISTRICT.format(col="f.district_adcode")
)
_FINDINGS_NAMED = _mvt(
    "findings",
    _FINDINGS_COLUMNS + "f.premises_name AS name, " + _MVT_GEOM.format(col="f.geom") + " AS geom" + _FINDINGS_WHERE,
)
_FINDINGS_ANONYMOUS = _mvt(
    "findings", _FINDINGS_COLUMNS + _MVT_GEOM.format(col="f.geom") + " AS geom" + _FINDINGS_WHERE
)
# Zones are for display only: a geography buffer of each campus outline (or of its in-use gates) per
# distinct rule distance. Campuses come from the tile grown by the largest distance.
_CAMPUSES_NEAR_TILE = text(
    """
    SELECT c.id, c.district_adcode, s.levels, EXISTS (SELECT 1 FROM gates g WHERE g.campus_id = c.id AND g.in_use)
    FROM campuses c JOIN schools s ON s.id = c.school_id
    WHERE c.geom && ST_Expand(ST_Transform(ST_TileEnvelope(:z, :x, :y), 4326), :grow_deg)
      AND (CAST(:district AS text) IS NULL OR c.district_adcode LIKE CAST(:district AS text))
    ORDER BY c.id
    """
)
_ZONES = text(
    """
    WITH spec AS (
        SELECT * FROM unnest(CAST(:campus_ids AS bigint[]), CAST(:distances AS float8[]),
                             CAST(:froms AS text[]), CAST(:rules AS text[]))
                 AS u(campus_id, distance_m, measure_from, rules)
    ), shapes AS (
        SELECT spec.campus_id, spec.distance_m, spec.measure_from, spec.rules, s.name AS school,
               CASE WHEN spec.measure_from = 'gates' AND gs.geom IS NOT NULL THEN gs.geom ELSE c.geom END AS base
        FROM spec JOIN campuses c ON c.id = spec.campus_id JOIN schools s ON s.id = c.school_id
        LEFT JOIN LATERAL (
            SELECT ST_Collect(g.geom) AS geom FROM gates g WHERE g.campus_id = c.id AND g.in_use
        ) gs ON true
    )
    SELECT ST_AsMVT(t, 'zones', 4096, 'geom') FROM (
        SELECT campus_id, school, distance_m, measure_from, rules,
               ST_AsMVTGeom(ST_Transform(ST_Buffer(base::geography, distance_m, 'quad_segs=8')::geometry, 3857),
                            ST_TileEnvelope(:z, :x, :y), 4096, 64, true) AS geom
        FROM shapes
        ORDER BY distance_m DESC
    ) AS t WHERE t.geom IS NOT NULL
    """
)


@dataclass(frozen=True)
class CampusInTile:
    """A campus whose zones may reach a tile: what the rules in force depend on."""

    campus_id: int
    district: str | None
    levels: tuple[str, ...]
    has_gates: bool


@dataclass(frozen=True)
class ZoneSpec:
    """One zone to draw: a campus, a distance, measured from its outline or gates, and its rule ids."""

    campus_id: int
    distance_m: float
    measure_from: str
    rules: str


LAYERS: Final = ("schools", "gates", "premises", "streets", "zones", "districts", "assets", "findings")


def check_tile(z: int, x: int, y: int) -> None:
    """Refuse tile coordinates outside the Web-Mercator pyramid (zoom 0–22)."""
    if not 0 <= z <= 22:
        msg = f"zoom must be 0 to 22, got {z}"
        raise InvalidInput(msg, field="z", value=z, message_zh=f"缩放级别须为 0 到 22，收到 {z}")
    n = 1 << z
    if not (0 <= x < n and 0 <= y < n):
        msg = f"tile {z}/{x}/{y} does not exist: x and y must be 0 to {n - 1} at zoom {z}"
        raise InvalidInput(msg, field="x,y", value=f"{z}/{x}/{y}", message_zh=f"瓦片 {z}/{x}/{y} 不存在")


def district_like(adcode: str | None) -> str | None:
    """A ``LIKE`` pattern for an adcode and everything below it (province XX0000, city XXXX00)."""
    if adcode is None:
        return None
    if len(adcode) != 6 or not adcode.isdigit():
        msg = f"district must be a 6-digit adcode, got {adcode!r}"
        raise InvalidInput(msg, field="district", value=adcode, message_zh=f"行政区划代码须为6位数字：{adcode!r}")
    if adcode.endswith("0000"):
        return adcode[:2] + "%"
    if adcode.endswith("00"):
        return adcode[:4] + "%"
    return adcode


def _pixel_m(z: int) -> float:
    """The size of one tile unit (1/4096 of the tile) in Web-Mercator metres."""
    return 2 * _MERC_HALF / (1 << z) / EXTENT


def tile(
    session: Session, layer: str, z: int, x: int, y: int, *, names: bool = False, district: str | None = None
) -> bytes:
    """One vector tile of ``layer`` (any of :data:`LAYERS` but ``zones``, see :func:`zones_tile`).

    Parameters
    ----------
    names
        Include premises names (personal data: only for roles allowed to read premises).
    district
        An adcode: only features in that district (and below it) for schools, gates, premises,
        findings and district outlines.

    Returns
    -------
    bytes
        The Mapbox vector tile; ``b""`` when nothing is in it. Below :data:`PREMISES_POINT_ZOOM` the
        ``premises`` layer has one point per grid cell with ``count``, ``unlicensed`` (no active permit
        on record) and the count of each category present (``tobacco``, ``bar`` …): no names, no ids.
    """
    check_tile(z, x, y)
    if layer not in LAYERS or layer == "zones":
        msg = f"unknown tile layer {layer!r}; expected one of {[n for n in LAYERS if n != 'zones']}"
        raise NotFound(msg, field="layer", value=layer, message_zh=f"未知的图层 {layer!r}")
    if z < MIN_ZOOM[layer]:
        return b""
    stmt: Any
    params: dict[str, Any] = {"z": z, "x": x, "y": y, "district": district_like(district)}
    if layer == "schools":
        stmt = _SCHOOLS
    elif layer == "gates":
        stmt = _GATES
    elif layer == "premises":
        points = _PREMISES_NAMED if names else _PREMISES_ANONYMOUS
        stmt = _PREMISES_CELLS if z < PREMISES_POINT_ZOOM else points
    elif layer == "streets":
        stmt = _STREETS
        params.update(tolerance=_pixel_m(z) * 4, all_streets=z >= STREETS_ALL_ZOOM, major=list(MAJOR_HIGHWAYS))
        params.pop("district")
    elif layer == "findings":
        stmt = _FINDINGS_NAMED if names else _FINDINGS_ANONYMOUS
    elif layer == "districts":
        stmt = _DISTRICTS
        params.update(tolerance=_pixel_m(z) * 8)
    else:
        stmt = _ASSETS
        params.pop("district")
    if isinstance(stmt, tuple):
        stmt, params["layer"] = stmt
    data = session.execute(stmt, params).scalar()
    return bytes(data or b"")


def campuses_in_tile(
    session: Session, z: int, x: int, y: int, *, max_distance_m: float, district: str | None = None
) -> list[CampusInTile]:
    """Campuses close enough to a tile that a zone of ``max_distance_m`` may reach into it."""
    check_tile(z, x, y)
    if z < MIN_ZOOM["zones"]:
        return []
    grow_deg = max_distance_m / 100_000.0  # a degree of latitude ≥ 110 km; longitude degrees are shorter
    rows = session.execute(
        _CAMPUSES_NEAR_TILE, {"z": z, "x": x, "y": y, "grow_deg": grow_deg, "district": district_like(district)}
    ).all()
    return [CampusInTile(r[0], r[1], tuple(r[2] or ()), bool(r[3])) for r in rows]


def zones_tile(session: Session, z: int, x: int, y: int, specs: Sequence[ZoneSpec]) -> bytes:
    """The ``zones`` tile: one polygon per :class:`ZoneSpec` (geography buffer, display only)."""
    check_tile(z, x, y)
    if not specs:
        return b""
    data = session.execute(
        _ZONES,
        {
            "z": z,
            "x": x,
            "y": y,
            "campus_ids": [s.campus_id for s in specs],
            "distances": [s.distance_m for s in specs],
            "froms": [s.measure_from for s in specs],
            "rules": [s.rules for s in specs],
        },
    ).scalar()
    return bytes(data or b"")


_EXTENT = text(
    """
    SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (
        SELECT ST_Extent(geom) AS e FROM (
            SELECT geom FROM districts WHERE CAST(:district AS text) IS NOT NULL AND adcode = :adcode
            UNION ALL
            SELECT geom FROM campuses
            WHERE CAST(:district AS text) IS NULL OR district_adcode LIKE CAST(:district AS text)
        ) g
    ) x
    """
)


def map_extent(session: Session, district: str | None = None) -> tuple[float, float, float, float] | None:
    """(min lon, min lat, max lon, max lat) of a district (its outline and campuses), or of every campus."""
    row = session.execute(_EXTENT, {"district": district_like(district), "adcode": district}).one()
    return None if row[0] is None else (row[0], row[1], row[2], row[3])


def osm_data_present(session: Session) -> bool:
    """Whether any OpenStreetMap data was imported (its attribution must then show)."""
    return bool(
        session.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM import_batches"
                " WHERE kind = 'osm' OR licence ILIKE '%openstreetmap%' OR licence ILIKE '%ODbL%')"
            )
        ).scalar()
    )


_SCHOOL_CAMPUSES = text(
    """
    SELECT c.id, c.name, c.point_only, c.district_adcode, ST_AsGeoJSON(c.geom, 9)
    FROM campuses c WHERE c.school_id = :school_id ORDER BY c.id
    """
)
_SCHOOL_GATES = text(
    """
    SELECT g.id, g.campus_id, g.name, g.kind, g.in_use, ST_AsGeoJSON(g.geom, 9)
    FROM gates g JOIN campuses c ON c.id = g.campus_id WHERE c.school_id = :school_id ORDER BY g.id
    """
)
_PREMISES_NEAR = text(
    """
    SELECT p.id, p.name, p.categories, ST_AsGeoJSON(p.geom, 9), ST_AsGeoJSON(p.footprint, 9),
           COALESCE((SELECT array_agg(pm.category || ':' || pm.status ORDER BY pm.id)
                     FROM permits pm WHERE pm.premises_id = p.id), '{}')
    FROM premises p
    WHERE p.id IN (SELECT p2.id FROM campuses c JOIN premises p2
                   ON ST_DWithin(p2.geom::geography, c.geom::geography, :radius_m)
                   WHERE c.school_id = :school_id)
    ORDER BY p.id
    LIMIT :limit
    """
)
_SCHOOL = text("SELECT s.id, s.name, s.levels, s.flags, s.district_adcode FROM schools s WHERE s.id = :school_id")


def school_header(session: Session, school_id: int) -> dict[str, Any]:
    """A school's id, name, levels, flags and district; ``NotFound`` if there is none."""
    row = session.execute(_SCHOOL, {"school_id": school_id}).one_or_none()
    if row is None:
        msg = f"no school with id {school_id}"
        raise NotFound(msg, field="id", value=school_id, message_zh=f"未找到学校 {school_id}")
    return {"id": row[0], "name": row[1], "levels": list(row[2] or []), "flags": list(row[3] or []), "district": row[4]}


def school_surroundings(session: Session, school_id: int, *, radius_m: float, limit: int = 5000) -> dict[str, Any]:
    """A school, its campuses and gates, and every premises within ``radius_m`` of a campus.

    Returns
    -------
    dict
        ``school`` (id, name, levels, flags, district), ``campuses`` and ``gates`` and ``premises``
        as plain dicts with GeoJSON geometries; premises carry ``categories`` (observed and from
        permits) and ``permits`` as ``category:status`` strings.

    Raises
    ------
    NotFound
        If there is no such school.
    """
    school = school_header(session, school_id)
    campuses = [
        {"id": r[0], "name": r[1], "point_only": r[2], "district": r[3], "geometry": json.loads(r[4])}
        for r in session.execute(_SCHOOL_CAMPUSES, {"school_id": school_id})
    ]
    gates = [
        {"id": r[0], "campus_id": r[1], "name": r[2], "kind": r[3], "in_use": r[4], "geometry": json.loads(r[5])}
        for r in session.execute(_SCHOOL_GATES, {"school_id": school_id})
    ]
    premises = []
    for r in session.execute(_PREMISES_NEAR, {"school_id": school_id, "radius_m": radius_m, "limit": limit}):
        permits = list(r[5] or [])
        cats = sorted(set(r[2] or []) | {p.split(":", 1)[0] for p in permits})
        premises.append(
            {
                "id": r[0],
                "name": r[1],
                "categories": cats,
                "permits": permits,
                "geometry": json.loads(r[3]),
                "footprint": json.loads(r[4]) if r[4] else None,
            }
        )
    return {"school": school, "campuses": campuses, "gates": gates, "premises": premises}
