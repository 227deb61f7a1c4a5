"""Read queries for the API: GeoJSON-ready dicts, keyset pagination, bbox/district/level/category filters.

Rows leave this module as plain dicts (``{"id", "geometry", "properties"}``), never ORM objects.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.orm import Session

from geo.errors import InvalidInput, NotFound
from storage.models import Campus, District, Gate, Permit, Premises, School

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Page:
    features: list[dict[str, Any]]
    next_after: int | None
    total: int | None = None


def district_filter(column: ColumnElement[Any], adcode: str) -> ColumnElement[bool]:
    """Rows in the district ``adcode`` or below it (GB/T 2260: province XX0000, city XXXX00)."""
    if len(adcode) != 6 or not adcode.isdigit():
        msg = f"district must be a 6-digit adcode, got {adcode!r}"
        raise InvalidInput(msg, field="district", value=adcode, message_zh=f"行政区划代码须为6位数字：{adcode!r}")
    if adcode.endswith("0000"):
        return column.like(adcode[:2] + "%")
    if adcode.endswith("00"):
        return column.like(adcode[:4] + "%")
    return column == adcode


def _bbox_filter(geom: Any, bbox: BBox) -> ColumnElement[bool]:
    return geom.intersects(func.ST_MakeEnvelope(*bbox, 4326))


def _geojson(expr: Any) -> Any:
    return func.ST_AsGeoJSON(expr, 9).label("geojson")


def _page(stmt: Select[Any], id_col: Any, after: int | None, limit: int) -> Select[Any]:
    if after is not None:
        stmt = stmt.where(id_col > after)
    return stmt.order_by(id_col).limit(limit + 1)


def _finish(rows: Sequence[Any], limit: int, build: Any) -> Page:
    more = len(rows) > limit
    rows = rows[:limit]
    feats = [build(r) for r in rows]
    return Page(feats, feats[-1]["id"] if more and feats else None)


def _school_props(s: School) -> dict[str, Any]:
    return {
        "name": s.name,
        "levels": list(s.levels or []),
        "flags": list(s.flags or []),
        "students": s.students,
        "boarders": s.boarders,
        "staff": s.staff,
        "guards": s.guards,
        "access_control": s.access_control,
        "arrival": s.arrival.strftime("%H:%M") if s.arrival else None,
        "dismissal": s.dismissal.strftime("%H:%M") if s.dismissal else None,
        "opened": s.opened.isoformat() if s.opened else None,
        "closed": s.closed.isoformat() if s.closed else None,
        "licensed": s.licensed,
        "source": s.source,
        "external_id": s.external_id,
        "accuracy_m": s.accuracy_m,
        "district": s.district_adcode,
        "batch_id": s.batch_id,
    }


def list_schools(
    session: Session,
    *,
    bbox: BBox | None = None,
    district: str | None = None,
    level: str | None = None,
    name: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> Page:
    stmt = (
        select(School, _geojson(func.ST_Collect(Campus.geom)))
        .outerjoin(Campus, Campus.school_id == School.id)
        .group_by(School.id)
    )
    if district:
        stmt = stmt.where(district_filter(School.district_adcode, district))
    if level:
        stmt = stmt.where(School.levels.any(level))
    if name:
        stmt = stmt.where(School.name.contains(name, autoescape=True))
    if bbox:
        inside = select(Campus.school_id).where(_bbox_filter(Campus.geom, bbox))
        stmt = stmt.where(School.id.in_(inside))
    rows = session.execute(_page(stmt, School.id, after, limit)).all()
    return _finish(
        rows,
        limit,
        lambda r: {"id": r[0].id, "geometry": _load(r[1]), "properties": _school_props(r[0])},
    )


def get_school(session: Session, school_id: int) -> dict[str, Any]:
    school = session.get(School, school_id)
    if school is None:
        msg = f"no school with id {school_id}"
        raise NotFound(msg, field="id", value=school_id, message_zh=f"未找到学校 {school_id}")
    campuses = session.execute(
        select(Campus, _geojson(Campus.geom)).where(Campus.school_id == school_id).order_by(Campus.id)
    ).all()
    gates = session.execute(
        select(Gate, _geojson(Gate.geom))
        .join(Campus, Gate.campus_id == Campus.id)
        .where(Campus.school_id == school_id)
        .order_by(Gate.id)
    ).all()
    props = _school_props(school)
    props["campuses"] = [
        {
            "id": c.id,
            "name": c.name,
            "point_only": c.point_only,
            "accuracy_m": c.accuracy_m,
            "district": c.district_adcode,
            "geometry": _load(g),
            "gates": [
                {"id": gt.id, "name": gt.name, "kind": gt.kind, "in_use": gt.in_use, "geometry": _load(gg)}
                for gt, gg in gates
                if gt.campus_id == c.id
            ],
        }
        for c, g in campuses
    ]
    geom = session.execute(select(_geojson(func.ST_Collect(Campus.geom))).where(Campus.school_id == school_id)).scalar()
    return {"id": school.id, "geometry": _load(geom), "properties": props}


def list_premises(
    session: Session,
    *,
    bbox: BBox | None = None,
    district: str | None = None,
    category: str | None = None,
    name: str | None = None,
    after: int | None = None,
    limit: int = 100,
) -> Page:
    stmt = select(Premises, _geojson(Premises.geom))
    if district:
        stmt = stmt.where(district_filter(Premises.district_adcode, district))
    if category:
        stmt = stmt.where(
            Premises.categories.any(category)
            | select(Permit.id).where(Permit.premises_id == Premises.id, Permit.category == category).exists()
        )
    if name:
        stmt = stmt.where(Premises.name.contains(name, autoescape=True))
    if bbox:
        stmt = stmt.where(_bbox_filter(Premises.geom, bbox))
    rows = session.execute(_page(stmt, Premises.id, after, limit)).all()
    ids = [r[0].id for r in rows[:limit]]
    permits: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for p in session.scalars(select(Permit).where(Permit.premises_id.in_(ids)).order_by(Permit.id)):
            permits.setdefault(p.premises_id, []).append(
                {
                    "permit_id": p.permit_id,
                    "category": p.category,
                    "status": p.status,
                    "issued": p.issued.isoformat() if p.issued else None,
                    "expires": p.expires.isoformat() if p.expires else None,
                    "applied": p.applied.isoformat() if p.applied else None,
                }
            )

    def build(r: Any) -> dict[str, Any]:
        p: Premises = r[0]
        plist = permits.get(p.id, [])
        cats = sorted(set(p.categories or []) | {x["category"] for x in plist})
        return {
            "id": p.id,
            "geometry": _load(r[1]),
            "properties": {
                "name": p.name,
                "address": p.address,
                "uscc": p.uscc,
                "categories": cats,
                "observed_categories": list(p.categories or []),
                "licensed": bool(plist),
                "permits": plist,
                "protection_distance_m": p.protection_distance_m,
                "district": p.district_adcode,
                "source": p.source,
                "external_id": p.external_id,
                "batch_id": p.batch_id,
            },
        }

    return _finish(rows, limit, build)


def list_districts(
    session: Session,
    *,
    bbox: BBox | None = None,
    level: str | None = None,
    parent: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], str | None]:
    stmt = select(District, _geojson(District.geom))
    conds = []
    if level:
        conds.append(District.level == level)
    if parent:
        conds.append(District.parent_adcode == parent)
    if bbox:
        conds.append(_bbox_filter(District.geom, bbox))
    if after:
        conds.append(District.adcode > after)
    if conds:
        stmt = stmt.where(and_(*conds))
    rows = session.execute(stmt.order_by(District.adcode).limit(limit + 1)).all()
    more = len(rows) > limit
    feats = [
        {
            "id": d.adcode,
            "geometry": _load(g),
            "properties": {"adcode": d.adcode, "name": d.name, "level": d.level, "parent": d.parent_adcode},
        }
        for d, g in rows[:limit]
    ]
    return feats, (feats[-1]["id"] if more and feats else None)


def _load(text: str | None) -> dict[str, Any] | None:
    return json.loads(text) if text else None
