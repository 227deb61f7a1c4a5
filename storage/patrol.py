"""Reads for guard posts, patrols and camera coverage: gates with their schools' times, street edges,
open findings of the latest scan, cameras and school zones.

Everything comes back as plain dicts and shapely geometries (no ORM rows leave this module). Area
filters use the ``&&`` bounding-box operator or ``ST_DWithin`` on the indexed ``geom`` columns.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import shapely
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from geo.errors import NotFound
from storage.models import Camera, Campus, Finding, Gate, Scan, School, StreetEdge
from storage.read import district_filter

BBox = tuple[float, float, float, float]
_M_PER_DEG = 111_320.0


def _expand(bbox: BBox, margin_m: float) -> BBox:
    """``bbox`` grown by at least ``margin_m`` on every side (degrees, generous at this latitude)."""
    x0, y0, x1, y1 = bbox
    lat = max(abs(y0), abs(y1))
    dy = margin_m / _M_PER_DEG
    dx = margin_m / (_M_PER_DEG * max(math.cos(math.radians(min(lat + dy, 89.0))), 0.01))
    return (x0 - dx, y0 - dy, x1 + dx, y1 + dy)


def guard_gates(session: Session, *, district: str, on: dt.date) -> list[dict[str, Any]]:
    """In-use gates of the district's schools open on ``on``, with arrival and dismissal times."""
    stmt = (
        select(
            Gate.id,
            Gate.name,
            Gate.kind,
            func.ST_X(Gate.geom),
            func.ST_Y(Gate.geom),
            School.id,
            School.name,
            School.arrival,
            School.dismissal,
        )
        .join(Campus, Gate.campus_id == Campus.id)
        .join(School, Campus.school_id == School.id)
        .where(
            Gate.in_use,
            district_filter(Campus.district_adcode, district),
            or_(School.closed.is_(None), School.closed > on),
            or_(School.opened.is_(None), School.opened <= on),
        )
        .order_by(School.id, Gate.id)
    )
    keys = ("gate_id", "gate_name", "kind", "lon", "lat", "school_id", "school_name", "arrival", "dismissal")
    return [dict(zip(keys, row, strict=True)) for row in session.execute(stmt)]


def street_edges(session: Session, *, bbox: BBox, margin_m: float) -> list[tuple[int, int, int, Any, str | None]]:
    """Street edges whose bounding box meets ``bbox`` grown by ``margin_m``: (id, u, v, line, name)."""
    env = func.ST_MakeEnvelope(*_expand(bbox, margin_m), 4326)
    rows = session.execute(
        select(StreetEdge.id, StreetEdge.u, StreetEdge.v, func.ST_AsBinary(StreetEdge.geom), StreetEdge.name)
        .where(StreetEdge.geom.op("&&")(env))
        .order_by(StreetEdge.id)
    ).all()
    lines = shapely.from_wkb([bytes(r[3]) for r in rows]) if rows else []
    return [(r[0], r[1], r[2], line, r[4]) for r, line in zip(rows, lines, strict=True)]


def latest_scan_for(session: Session, district: str) -> int:
    """The latest finished scan that covered ``district`` (a city-wide scan or one of that district)."""
    scan_id = session.scalar(
        select(Scan.id)
        .where(Scan.status == "done", or_(Scan.district.is_(None), Scan.district == district))
        .order_by(Scan.id.desc())
        .limit(1)
    )
    if scan_id is None:
        msg = f"no scan covers district {district} yet: run `safezone scan` or POST /v1/scans"
        raise NotFound(msg, field="district", value=district, message_zh=f"尚无覆盖行政区 {district} 的排查：请先排查")
    return scan_id


def open_findings(session: Session, *, district: str, scan_id: int) -> list[dict[str, Any]]:
    """One row per premises with findings of ``scan_id`` in ``district``: where, what, which schools."""
    stmt = (
        select(
            Finding.premises_id,
            Finding.premises_name,
            func.ST_X(Finding.geom),
            func.ST_Y(Finding.geom),
            func.array_agg(func.distinct(Finding.status)),
            func.array_agg(func.distinct(Finding.rule_id)),
            func.array_agg(func.distinct(Finding.school_name)),
            func.count(),
        )
        .where(Finding.scan_id == scan_id, district_filter(Finding.district_adcode, district))
        .group_by(Finding.premises_id, Finding.premises_name, Finding.geom)
        .order_by(Finding.premises_id)
    )
    keys = ("premises_id", "name", "lon", "lat", "statuses", "rules", "schools", "findings")
    out = []
    for row in session.execute(stmt):
        item = dict(zip(keys, row, strict=True))
        for key in ("statuses", "rules", "schools"):
            item[key] = sorted(item[key])
        out.append(item)
    return out


def cameras(session: Session, *, bbox: BBox, margin_m: float) -> list[dict[str, Any]]:
    """Cameras within ``bbox`` grown by ``margin_m``."""
    env = func.ST_MakeEnvelope(*_expand(bbox, margin_m), 4326)
    stmt = (
        select(
            Camera.id,
            Camera.external_id,
            Camera.name,
            func.ST_X(Camera.geom),
            func.ST_Y(Camera.geom),
            Camera.direction_deg,
            Camera.fov_deg,
            Camera.range_m,
        )
        .where(Camera.geom.op("&&")(env))
        .order_by(Camera.id)
    )
    keys = ("id", "external_id", "name", "lon", "lat", "direction_deg", "fov_deg", "range_m")
    return [dict(zip(keys, row, strict=True)) for row in session.execute(stmt)]


def school_sites(
    session: Session, *, school_id: int | None = None, district: str | None = None
) -> list[dict[str, Any]]:
    """Schools (one, or those with a campus in ``district``) with campus outlines and in-use gates."""
    conds = []
    if school_id is not None:
        conds.append(School.id == school_id)
    if district is not None:
        conds.append(district_filter(Campus.district_adcode, district))
    rows = session.execute(
        select(
            School.id,
            School.name,
            School.levels,
            func.coalesce(Campus.district_adcode, School.district_adcode),
            Campus.id,
            func.ST_AsBinary(Campus.geom),
        )
        .join(Campus, Campus.school_id == School.id)
        .where(and_(*conds))
        .order_by(School.id, Campus.id)
    ).all()
    if school_id is not None and not rows:
        msg = f"no school with id {school_id}"
        raise NotFound(msg, field="id", value=school_id, message_zh=f"未找到学校 {school_id}")
    schools: dict[int, dict[str, Any]] = {}
    campus_of: dict[int, int] = {}
    for sid, name, levels, adcode, cid, wkb in rows:
        s = schools.setdefault(
            sid,
            {"id": sid, "name": name, "levels": list(levels or []), "district": adcode, "campuses": [], "gates": []},
        )
        s["campuses"].append(shapely.from_wkb(bytes(wkb)))
        campus_of[cid] = sid
    if campus_of:
        gates = session.execute(
            select(Gate.id, Gate.name, Gate.campus_id, func.ST_AsBinary(Gate.geom))
            .where(Gate.campus_id.in_(list(campus_of)), Gate.in_use)
            .order_by(Gate.id)
        )
        for gid, gname, cid, wkb in gates:
            schools[campus_of[cid]]["gates"].append((gid, gname, shapely.from_wkb(bytes(wkb))))
    return list(schools.values())
