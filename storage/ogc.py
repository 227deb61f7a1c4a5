"""Reads for OGC API – Features and the GIS exports: collections paged by ``offset``/``limit``, counted.

Each stored collection (schools, campuses, gates, premises, findings) is read in two steps: the ids of
the matching features, counted and paged in id order (an id-only query the indexes answer), then the
page's rows with flat, GIS-friendly properties (lists joined with ``,``, dates as ISO strings) and a
GeoJSON geometry. Findings are those of the latest finished scan.

Zones are not stored: a zone is a campus outline (or its in-use gates) grown by a rule distance — one per
campus and distinct (distance, measured from) pair, as the map draws them. The caller turns campuses into
:class:`storage.tiles.ZoneSpec` with the rule registry; this module filters them by ``bbox`` with
``ST_DWithin`` on geography (never buffer + intersects) and buffers only the page it returns.

Rows leave this module as plain dicts, never ORM objects. Nothing here writes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, Float, Numeric, Select, exists, func, select, text
from sqlalchemy.orm import Session

from geo.errors import NotFound
from storage.models import Campus, Finding, Gate, Permit, Premises, Scan, School
from storage.read import BBox, district_filter
from storage.tiles import CampusInTile, ZoneSpec

__all__ = [
    "STORED",
    "Extent",
    "ItemsPage",
    "extent",
    "get_item",
    "items",
    "zone_campuses",
    "zone_extent",
    "zone_items",
]

Extent = tuple[float, float, float, float]


@dataclass(frozen=True)
class ItemsPage:
    """One page of features and how many match in all."""

    features: list[dict[str, Any]]
    matched: int


def _envelope(bbox: BBox) -> Any:
    return func.ST_MakeEnvelope(*bbox, 4326)


def _latest_scan() -> Any:
    return select(Scan.id).where(Scan.status == "done").order_by(Scan.id.desc()).limit(1).scalar_subquery()


@dataclass(frozen=True)
class _Spec:
    id_col: Any
    geom_col: Any
    ids: Callable[[BBox | None], Select[Any]]
    rows: Callable[[Any], Select[Any]]
    post: Callable[[dict[str, Any]], None] | None = None


def _school_ids(bbox: BBox | None) -> Select[Any]:
    stmt = select(School.id)
    if bbox:
        stmt = stmt.where(School.id.in_(select(Campus.school_id).where(Campus.geom.intersects(_envelope(bbox)))))
    return stmt


def _school_rows(ids: Any) -> Select[Any]:
    return (
        select(
            School.id,
            func.ST_AsGeoJSON(func.ST_Collect(Campus.geom), 9).label("geojson"),
            School.name,
            func.array_to_string(School.levels, ",").label("levels"),
            func.array_to_string(School.flags, ",").label("flags"),
            School.students,
            School.boarders,
            School.staff,
            School.guards,
            School.licensed,
            School.opened,
            School.closed,
            School.district_adcode.label("district"),
            School.source,
            School.external_id,
        )
        .outerjoin(Campus, Campus.school_id == School.id)
        .where(School.id.in_(ids))
        .group_by(School.id)
    )


def _campus_ids(bbox: BBox | None) -> Select[Any]:
    stmt = select(Campus.id)
    return stmt.where(Campus.geom.intersects(_envelope(bbox))) if bbox else stmt


def _campus_rows(ids: Any) -> Select[Any]:
    return (
        select(
            Campus.id,
            func.ST_AsGeoJSON(Campus.geom, 9).label("geojson"),
            Campus.school_id,
            School.name.label("school_name"),
            Campus.name,
            func.array_to_string(School.levels, ",").label("levels"),
            Campus.point_only,
            Campus.accuracy_m,
            Campus.district_adcode.label("district"),
            School.source,
            Campus.external_id,
        )
        .join(School, School.id == Campus.school_id)
        .where(Campus.id.in_(ids))
    )


def _gate_ids(bbox: BBox | None) -> Select[Any]:
    stmt = select(Gate.id)
    return stmt.where(Gate.geom.intersects(_envelope(bbox))) if bbox else stmt


def _gate_rows(ids: Any) -> Select[Any]:
    return (
        select(
            Gate.id,
            func.ST_AsGeoJSON(Gate.geom, 9).label("geojson"),
            Gate.campus_id,
            Campus.school_id,
            School.name.label("school_name"),
            Gate.name,
            Gate.kind,
            Gate.in_use,
            Gate.hours,
            Campus.district_adcode.label("district"),
            Gate.external_id,
        )
        .join(Campus, Campus.id == Gate.campus_id)
        .join(School, School.id == Campus.school_id)
        .where(Gate.id.in_(ids))
    )


def _premises_ids(bbox: BBox | None) -> Select[Any]:
    stmt = select(Premises.id)
    return stmt.where(Premises.geom.intersects(_envelope(bbox))) if bbox else stmt


def _premises_rows(ids: Any) -> Select[Any]:
    permits = select(Permit.premises_id).where(Permit.premises_id == Premises.id)
    permit_categories = (
        select(func.array_to_string(func.array_agg(Permit.category), ","))
        .where(Permit.premises_id == Premises.id)
        .scalar_subquery()
    )
    permit_list = (
        select(func.string_agg(Permit.permit_id + ":" + Permit.category + ":" + Permit.status, ","))
        .where(Permit.premises_id == Premises.id)
        .scalar_subquery()
    )
    return select(
        Premises.id,
        func.ST_AsGeoJSON(Premises.geom, 9).label("geojson"),
        Premises.name,
        Premises.address,
        Premises.uscc,
        permit_categories.label("categories"),
        func.array_to_string(Premises.categories, ",").label("observed_categories"),
        exists(permits).label("licensed"),
        permit_list.label("permits"),
        Premises.protection_distance_m,
        Premises.district_adcode.label("district"),
        Premises.source,
        Premises.external_id,
    ).where(Premises.id.in_(ids))


def _premises_post(props: dict[str, Any]) -> None:
    """``categories``: the observed ones and those of the permits, sorted, once each."""
    both = f"{props['categories'] or ''},{props['observed_categories'] or ''}".split(",")
    props["categories"] = ",".join(sorted({c for c in both if c}))


def _finding_ids(bbox: BBox | None) -> Select[Any]:
    stmt = select(Finding.id).where(Finding.scan_id == _latest_scan())
    return stmt.where(Finding.geom.intersects(_envelope(bbox))) if bbox else stmt


def _finding_rows(ids: Any) -> Select[Any]:
    return select(
        Finding.id,
        func.ST_AsGeoJSON(Finding.geom, 9).label("geojson"),
        Finding.scan_id,
        Finding.status,
        Finding.category,
        Finding.rule_id,
        Finding.premises_id,
        Finding.premises_name,
        Finding.permit_no,
        Finding.school_id,
        Finding.school_name,
        Finding.campus_id,
        func.round(func.cast(Finding.distance_m, Numeric()), 3).cast(Float()).label("distance_m"),
        Finding.limit_m,
        Finding.u_m,
        func.round(func.cast(Finding.margin_m, Numeric()), 3).cast(Float()).label("margin_m"),
        Finding.method,
        Finding.due_date,
        Finding.district_adcode.label("district"),
        Finding.lead_department,
        func.array_to_string(Finding.cooperating_departments, ",").label("cooperating_departments"),
        func.array_to_string(Finding.flags, ",").label("flags"),
    ).where(Finding.id.in_(ids))


STORED: Final[dict[str, _Spec]] = {
    "schools": _Spec(School.id, Campus.geom, _school_ids, _school_rows),
    "campuses": _Spec(Campus.id, Campus.geom, _campus_ids, _campus_rows),
    "gates": _Spec(Gate.id, Gate.geom, _gate_ids, _gate_rows),
    "premises": _Spec(Premises.id, Premises.geom, _premises_ids, _premises_rows, _premises_post),
    "findings": _Spec(Finding.id, Finding.geom, _finding_ids, _finding_rows),
}
"""The collections stored as rows, by collection id."""


def _spec(collection: str) -> _Spec:
    if collection not in STORED:
        msg = f"no collection {collection!r}; expected one of {sorted(STORED)}"
        raise NotFound(msg, field="collection", value=collection, message_zh=f"没有要素集合 {collection!r}")
    return STORED[collection]


def _plain(value: Any) -> Any:
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return value


def _feature(row: Any, spec: _Spec) -> dict[str, Any]:
    data = dict(row._mapping)
    fid = data.pop("id")
    geom = data.pop("geojson")
    props = {k: _plain(v) for k, v in data.items()}
    if spec.post is not None:
        spec.post(props)
    return {"id": fid, "geometry": json.loads(geom) if geom else None, "properties": props}


def items(
    session: Session, collection: str, *, bbox: BBox | None = None, offset: int = 0, limit: int = 100
) -> ItemsPage:
    """A page of ``collection`` in id order, with the number of features matching ``bbox`` in all."""
    spec = _spec(collection)
    ids = spec.ids(bbox)
    matched = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    page_ids = session.scalars(ids.order_by(spec.id_col).offset(offset).limit(limit)).all()
    if not page_ids:
        return ItemsPage([], matched)
    rows = session.execute(spec.rows(list(page_ids)).order_by(spec.id_col)).all()
    return ItemsPage([_feature(r, spec) for r in rows], matched)


def get_item(session: Session, collection: str, fid: int) -> dict[str, Any]:
    """One feature of ``collection`` by id; ``NotFound`` if there is none."""
    spec = _spec(collection)
    visible = spec.ids(None).where(spec.id_col == fid)
    row = session.execute(spec.rows(visible)).first()
    if row is None:
        msg = f"no feature {fid} in collection {collection!r}"
        raise NotFound(msg, field="featureId", value=fid, message_zh=f"要素集合 {collection!r} 中没有要素 {fid}")
    return _feature(row, spec)


def _extent_of(session: Session, column: Any, *where: ColumnElement[bool]) -> Extent | None:
    box = func.ST_Extent(column)
    row = session.execute(
        select(func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box), func.ST_YMax(box)).where(*where)
    ).one()
    return None if row[0] is None else (row[0], row[1], row[2], row[3])


def extent(session: Session, collection: str) -> Extent | None:
    """(min lon, min lat, max lon, max lat) of a stored collection, or None when it is empty."""
    spec = _spec(collection)
    if collection == "findings":
        return _extent_of(session, Finding.geom, Finding.scan_id == _latest_scan())
    return _extent_of(session, spec.geom_col)


def zone_extent(session: Session, *, grow_deg: float) -> Extent | None:
    """The campuses' extent grown by ``grow_deg`` degrees (a bound of the largest zone distance)."""
    box = _extent_of(session, Campus.geom)
    if box is None:
        return None
    return (box[0] - grow_deg, box[1] - grow_deg, box[2] + grow_deg, box[3] + grow_deg)


# --- zones -------------------------------------------------------------------------------------------


def zone_campuses(
    session: Session,
    *,
    bbox: BBox | None = None,
    grow_deg: float = 0.0,
    district: str | None = None,
    campus_ids: Sequence[int] | None = None,
) -> list[CampusInTile]:
    """Campuses whose zones may matter: all, those near ``bbox`` (grown by ``grow_deg``), in ``district``."""
    in_use_gate = exists(select(Gate.id).where(Gate.campus_id == Campus.id, Gate.in_use))
    stmt = select(Campus.id, Campus.district_adcode, School.levels, in_use_gate).join(
        School, School.id == Campus.school_id
    )
    if bbox:
        x0, y0, x1, y1 = bbox
        stmt = stmt.where(
            Campus.geom.intersects(
                func.ST_MakeEnvelope(x0 - grow_deg, y0 - grow_deg, x1 + grow_deg, y1 + grow_deg, 4326)
            )
        )
    if district:
        stmt = stmt.where(district_filter(Campus.district_adcode, district))
    if campus_ids is not None:
        stmt = stmt.where(Campus.id.in_(list(campus_ids)))
    rows = session.execute(stmt.order_by(Campus.id)).all()
    return [CampusInTile(r[0], r[1], tuple(r[2] or ()), bool(r[3])) for r in rows]


_SPECS_CTE = """
    WITH spec AS (
        SELECT * FROM unnest(CAST(:campus_ids AS bigint[]), CAST(:distances AS float8[]),
                             CAST(:froms AS text[]), CAST(:rules AS text[]))
                 WITH ORDINALITY AS u(campus_id, distance_m, measure_from, rules, ord)
    ), shapes AS (
        SELECT spec.*, c.school_id, s.name AS school_name, array_to_string(s.levels, ',') AS levels,
               c.district_adcode AS district, s.source,
               CASE WHEN spec.measure_from = 'gates' AND gs.geom IS NOT NULL THEN gs.geom ELSE c.geom END AS base
        FROM spec JOIN campuses c ON c.id = spec.campus_id JOIN schools s ON s.id = c.school_id
        LEFT JOIN LATERAL (
            SELECT ST_Collect(g.geom) AS geom FROM gates g WHERE g.campus_id = c.id AND g.in_use
        ) gs ON true
    )
"""
_ZONES_IN_BBOX = text(
    _SPECS_CTE
    + """
    SELECT ord FROM shapes
    WHERE ST_DWithin(base::geography, ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)::geography, distance_m)
    ORDER BY ord
    """
)
_ZONE_SHAPES = text(
    _SPECS_CTE
    + """
    SELECT campus_id, distance_m, measure_from, rules, school_id, school_name, levels, district, source,
           ST_AsGeoJSON(ST_Buffer(base::geography, distance_m, 'quad_segs=8')::geometry, 9)
    FROM shapes ORDER BY ord
    """
)


def _spec_params(specs: Sequence[ZoneSpec]) -> dict[str, Any]:
    return {
        "campus_ids": [s.campus_id for s in specs],
        "distances": [s.distance_m for s in specs],
        "froms": [s.measure_from for s in specs],
        "rules": [s.rules for s in specs],
    }


def zone_id(spec: ZoneSpec) -> str:
    """A zone's feature id: ``<campus id>-<boundary|gates>-<distance in metres>``."""
    return f"{spec.campus_id}-{spec.measure_from}-{spec.distance_m:g}"


def zone_items(
    session: Session, specs: Sequence[ZoneSpec], *, bbox: BBox | None = None, offset: int = 0, limit: int | None = None
) -> ItemsPage:
    """A page of zones (in the order of ``specs``) reaching into ``bbox``, with their polygons."""
    chosen = list(specs)
    if bbox and chosen:
        x0, y0, x1, y1 = bbox
        ords = session.scalars(_ZONES_IN_BBOX, {**_spec_params(chosen), "x0": x0, "y0": y0, "x1": x1, "y1": y1}).all()
        chosen = [chosen[i - 1] for i in ords]
    matched = len(chosen)
    page = chosen[offset : None if limit is None else offset + limit]
    if not page:
        return ItemsPage([], matched)
    features = []
    for r in session.execute(_ZONE_SHAPES, _spec_params(page)):
        spec = ZoneSpec(r[0], r[1], r[2], r[3])
        features.append(
            {
                "id": zone_id(spec),
                "geometry": json.loads(r[9]),
                "properties": {
                    "campus_id": r[0],
                    "school_id": r[4],
                    "school_name": r[5],
                    "levels": r[6],
                    "distance_m": r[1],
                    "measure_from": r[2],
                    "rules": r[3],
                    "district": r[7],
                    "source": r[8],
                },
            }
        )
    return ItemsPage(features, matched)
