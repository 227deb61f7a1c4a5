"""What a pre-check reads (campuses, gates, streets near a site; its district) and the decision audit."""

from __future__ import annotations

import uuid
from typing import Any

from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from geo.errors import NotFound
from storage.models import Campus, Decision, Gate, School, StreetEdge


def district_at(session: Session, geom: BaseGeometry) -> str | None:
    """The most specific district covering the geometry's representative point (None outside all)."""
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    return session.execute(
        text(
            "SELECT adcode FROM districts WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
            "ORDER BY adcode DESC LIMIT 1"
        ),
        {"x": point.x, "y": point.y},
    ).scalar()


def campuses_near(session: Session, geom: BaseGeometry, radius_m: float) -> list[dict[str, Any]]:
    """Campuses whose outline lies within ``radius_m`` of the site (geography index), with their gates."""
    site = func.ST_GeogFromWKB(func.ST_AsBinary(from_shape(geom, srid=4326)))
    rows = session.execute(
        select(Campus, School)
        .join(School, School.id == Campus.school_id)
        .where(func.ST_DWithin(func.geography(Campus.geom), site, radius_m))
        .where((School.closed.is_(None)) | (School.closed > func.current_date()))
        .order_by(Campus.id)
    ).all()
    ids = [c.id for c, _ in rows]
    gates: dict[int, list[dict[str, Any]]] = {}
    if ids:
        for g in session.scalars(select(Gate).where(Gate.campus_id.in_(ids)).order_by(Gate.id)):
            gates.setdefault(g.campus_id, []).append(
                {"id": g.id, "name": g.name, "kind": g.kind, "in_use": g.in_use, "point": to_shape(g.geom),
                 "batch_id": g.batch_id}
            )  # fmt: skip
    return [
        {
            "school_id": s.id,
            "school_name": s.name,
            "levels": list(s.levels or []),
            "flags": list(s.flags or []),
            "opened": s.opened,
            "licensed": s.licensed,
            "campus_id": c.id,
            "campus_name": c.name,
            "outline": to_shape(c.geom),
            "point_only": c.point_only,
            "accuracy_m": c.accuracy_m,
            "batch_ids": sorted({b for b in (c.batch_id, s.batch_id) if b is not None}),
            "gates": gates.get(c.id, []),
        }
        for c, s in rows
    ]


def street_edges_near(
    session: Session, geom: BaseGeometry, radius_m: float
) -> list[tuple[int, int, BaseGeometry, int | None]]:
    """Walkable street edges within ``radius_m`` of the site: (u, v, LineString, batch id)."""
    site = func.ST_GeogFromWKB(func.ST_AsBinary(from_shape(geom, srid=4326)))
    rows = session.execute(
        select(StreetEdge.u, StreetEdge.v, StreetEdge.geom, StreetEdge.batch_id).where(
            func.ST_DWithin(func.geography(StreetEdge.geom), site, radius_m)
        )
    ).all()
    return [(u, v, to_shape(g), b) for u, v, g, b in rows]


def save_decision(
    session: Session,
    *,
    decision_id: uuid.UUID,
    token_id: int | None,
    category: str,
    outcome: str,
    pack_version: str,
    batch_ids: list[int],
    district: str | None,
    geom: BaseGeometry,
    inputs: dict[str, Any],
    result: dict[str, Any],
) -> None:
    session.add(
        Decision(
            id=decision_id, token_id=token_id, category=category, outcome=outcome, pack_version=pack_version,
            batch_ids=batch_ids, district_adcode=district, geom=from_shape(geom, srid=4326), inputs=inputs,
            result=result,
        )
    )  # fmt: skip
    session.flush()


def get_decision(session: Session, decision_id: uuid.UUID) -> dict[str, Any]:
    row = session.get(Decision, decision_id)
    if row is None:
        msg = f"no decision with id {decision_id}"
        raise NotFound(msg, field="id", value=str(decision_id), message_zh=f"未找到决定 {decision_id}")
    return {"token_id": row.token_id, "inputs": row.inputs, "result": row.result, "created_at": row.created_at}
