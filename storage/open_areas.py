"""What the open-areas map and the decision notice read: a district's boundary, the campuses that reach
into it, and the outlines of the campuses a stored decision names."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from geoalchemy2.shape import to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from geo.errors import NotFound
from storage import checks
from storage.models import Campus, District, Gate, School


def district(session: Session, adcode: str) -> dict[str, Any]:
    """The district's adcode, name, level, boundary (shapely, WGS84) and its sub-districts' adcodes."""
    row = session.execute(
        select(District.adcode, District.name, District.level, District.geom).where(District.adcode == adcode)
    ).one_or_none()
    if row is None:
        msg = f"no district with adcode {adcode}"
        raise NotFound(msg, field="district", value=adcode, message_zh=f"未找到行政区 {adcode}")
    children = session.scalars(
        select(District.adcode).where(District.parent_adcode == adcode).order_by(District.adcode)
    ).all()
    return {
        "adcode": row.adcode,
        "name": row.name,
        "level": row.level,
        "geometry": to_shape(row.geom),
        "children": list(children),
    }


def campuses_reaching(session: Session, area: BaseGeometry, radius_m: float) -> list[dict[str, Any]]:
    """Open campuses within ``radius_m`` of ``area`` (inside it or beside it), with their gates.

    The rows are those of :func:`storage.checks.campuses_near`, the pre-check's own query (geography
    ``ST_DWithin``), so the map and the check read the same campuses.
    """
    return checks.campuses_near(session, area, radius_m)


def campus_outlines(session: Session, campus_ids: Iterable[int]) -> list[dict[str, Any]]:
    """Today's outline, school name and gates of each campus (for the decision notice's map)."""
    ids = sorted({int(i) for i in campus_ids})
    if not ids:
        return []
    rows = session.execute(
        select(Campus.id, Campus.name, Campus.geom, Campus.point_only, School.name.label("school_name"))
        .join(School, School.id == Campus.school_id)
        .where(Campus.id.in_(ids))
        .order_by(Campus.id)
    ).all()
    gates: dict[int, list[dict[str, Any]]] = {}
    for g in session.execute(
        select(Gate.id, Gate.campus_id, Gate.kind, Gate.in_use, Gate.geom).where(Gate.campus_id.in_(ids))
    ):
        gates.setdefault(g.campus_id, []).append(
            {"id": g.id, "kind": g.kind, "in_use": g.in_use, "point": to_shape(g.geom)}
        )
    return [
        {
            "campus_id": r.id,
            "campus_name": r.name,
            "school_name": r.school_name,
            "point_only": r.point_only,
            "outline": to_shape(r.geom),
            "gates": gates.get(r.id, []),
        }
        for r in rows
    ]
