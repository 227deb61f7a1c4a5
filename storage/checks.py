"""What a pre-check reads (campuses, gates, streets near a site; its district) and the decision audit."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from geo.errors import NotFound
from storage import audit as audit_store
from storage.database import driver_sql, execute_on_driver
from storage.models import Decision

# The statements of a pre-check run on the driver's connection: in a thread (storage.database.execute_on_driver)
# or on the event loop (storage.database.LoopPool), as :class:`Statement` values the caller runs.


class Statement(NamedTuple):
    """A statement of the pre-check and how to read its rows: run it with :func:`run` or
    :meth:`storage.database.LoopPool.run` (``read`` None: a write, nothing read)."""

    sql: str
    params: dict[str, Any]
    read: Callable[[list[tuple[Any, ...]]], Any] | None = None


def run(session: Session | Connection, stmt: Statement) -> Any:
    """Run ``stmt`` in ``session``'s transaction (on its driver connection); what its ``read`` makes of the rows."""
    cursor = execute_on_driver(session, stmt.sql, stmt.params)
    return None if stmt.read is None else stmt.read(cursor.fetchall())


# the most specific district covering the point (:x, :y), among the districts' pieces
_DISTRICT_OF_POINT = (
    "SELECT adcode FROM district_parts WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4326)) "
    "ORDER BY adcode DESC LIMIT 1"
)
_DISTRICT_AT = driver_sql(text(_DISTRICT_OF_POINT))


def district_at(session: Session | Connection, geom: BaseGeometry) -> str | None:
    """The most specific district covering the geometry's representative point (None outside all).

    Tested against the districts' small pieces (``district_parts``): a point on a cut between two pieces is
    covered by both, so the answer is the whole outline's.
    """
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    row = execute_on_driver(session, _DISTRICT_AT, {"x": point.x, "y": point.y}).fetchone()
    return None if row is None else row[0]


# campuses within :radius of the site (geography index), their schools and their gates (as JSON)
_CAMPUSES = """
    SELECT n.id, n.name, ST_AsBinary(n.geom) AS geom, n.point_only, n.accuracy_m, n.batch_id,
           s.id AS school_id, s.name AS school_name, s.levels, s.flags, s.opened, s.licensed,
           s.batch_id AS school_batch,
           (SELECT coalesce(json_agg(json_build_object(
                'id', g.id, 'name', g.name, 'kind', g.kind, 'in_use', g.in_use,
                'x', ST_X(g.geom), 'y', ST_Y(g.geom), 'batch_id', g.batch_id) ORDER BY g.id), '[]'::json)
            FROM gates g WHERE g.campus_id = n.id) AS gates
    FROM campuses n JOIN schools s ON s.id = n.school_id
    WHERE ST_DWithin(n.geom::geography, ST_GeogFromWKB(:wkb), :radius)
      AND (s.closed IS NULL OR s.closed > current_date)
"""
_NEAR = driver_sql(text(_CAMPUSES + " ORDER BY n.id"))
# the same, with the district of the site's point in the first column (one row of NULLs when no campus is near)
_DISTRICT_AND_NEAR = driver_sql(
    text(
        f"SELECT here.adcode, c.* FROM (SELECT ({_DISTRICT_OF_POINT}) AS adcode) here "
        f"LEFT JOIN ({_CAMPUSES}) c ON true ORDER BY c.id"
    )
)


def campuses_near_stmt(geom: BaseGeometry, radius_m: float) -> Statement:
    """Campuses whose outline lies within ``radius_m`` of the site (geography index), with their gates.

    One round trip: campuses, their schools and their gates (as JSON); read as :func:`_campus_rows`.
    """
    return Statement(_NEAR, {"wkb": shapely.to_wkb(geom), "radius": radius_m}, _campus_rows)


def campuses_near(session: Session | Connection, geom: BaseGeometry, radius_m: float) -> list[dict[str, Any]]:
    """:func:`campuses_near_stmt`, run in ``session``."""
    return run(session, campuses_near_stmt(geom, radius_m))


def district_and_campuses_near_stmt(geom: BaseGeometry, radius_m: float) -> Statement:
    """:func:`district_at` and :func:`campuses_near_stmt` in one round trip (a pre-check's reads):
    read as ``(adcode or None, campus rows)``."""
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    return Statement(
        _DISTRICT_AND_NEAR,
        {"wkb": shapely.to_wkb(geom), "radius": radius_m, "x": point.x, "y": point.y},
        lambda rows: (rows[0][0], _campus_rows([r[1:] for r in rows if r[1] is not None])),
    )


def _campus_rows(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    outlines = shapely.from_wkb([r[2] for r in rows])
    out = []
    for r, outline in zip(rows, outlines, strict=True):
        (campus_id, campus_name, _, point_only, accuracy_m, batch_id, school_id, school_name, levels, flags,
         opened, licensed, school_batch, gates) = r  # fmt: skip
        out.append(
            {
                "school_id": school_id,
                "school_name": school_name,
                "levels": list(levels or []),
                "flags": list(flags or []),
                "opened": opened,
                "licensed": licensed,
                "campus_id": campus_id,
                "campus_name": campus_name,
                "outline": outline,
                "point_only": point_only,
                "accuracy_m": accuracy_m,
                "batch_ids": sorted({b for b in (batch_id, school_batch) if b is not None}),
                "gates": [
                    {
                        "id": g["id"],
                        "name": g["name"],
                        "kind": g["kind"],
                        "in_use": g["in_use"],
                        "point": Point(g["x"], g["y"]),
                        "batch_id": g["batch_id"],
                    }
                    for g in gates
                ],
            }
        )
    return out


_EDGES_NEAR = driver_sql(
    text(
        "SELECT u, v, ST_AsBinary(geom) AS geom, batch_id FROM street_edges "
        "WHERE ST_DWithin(geom::geography, ST_GeogFromWKB(:wkb), :radius)"
    )
)


def _edges(rows: list[tuple[Any, ...]]) -> list[tuple[int, int, BaseGeometry, int | None]]:
    lines = shapely.from_wkb([r[2] for r in rows])
    return [(u, v, line, batch_id) for (u, v, _, batch_id), line in zip(rows, lines, strict=True)]


def street_edges_near_stmt(geom: BaseGeometry, radius_m: float) -> Statement:
    """Walkable street edges within ``radius_m`` of the site: read as (u, v, LineString, batch id)."""
    return Statement(_EDGES_NEAR, {"wkb": shapely.to_wkb(geom), "radius": radius_m}, _edges)


def save_decision_stmt(
    *,
    decision_id: uuid.UUID,
    token_id: int | None,
    category: str,
    outcome: str,
    pack_version: str,
    batch_ids: list[int],
    district: str | None,
    geom: BaseGeometry,
    inputs: str,
    result: str,
    audit: dict[str, Any] | None = None,
) -> Statement:
    """Store a decision (``inputs`` and ``result`` as JSON text); with ``audit``
    (``storage.audit.params(prefix="a_")``) its audit row too, in the same statement."""
    return Statement(
        _INSERT_DECISION_AUDITED if audit is not None else _INSERT_DECISION,
        (audit or {}) | {
            "id": decision_id, "token_id": token_id, "category": category, "outcome": outcome,
            "pack_version": pack_version, "batch_ids": batch_ids, "district": district,
            "wkb": shapely.to_wkb(geom), "inputs": inputs, "result": result,
        },
    )  # fmt: skip


_INSERT_DECISION_TEXT = (
    "INSERT INTO decisions (id, token_id, category, outcome, pack_version, batch_ids, district_adcode, geom, "
    "inputs, result) VALUES (:id, :token_id, :category, :outcome, :pack_version, CAST(:batch_ids AS bigint[]), "
    ":district, ST_GeomFromWKB(:wkb, 4326), CAST(:inputs AS jsonb), CAST(:result AS jsonb))"
)
_INSERT_DECISION = driver_sql(text(_INSERT_DECISION_TEXT))
# the decision and its audit row in one statement (both texts are constants of this code)
_INSERT_DECISION_AUDITED = driver_sql(
    text("WITH decision AS (" + _INSERT_DECISION_TEXT + ") " + audit_store.insert_sql("a_"))
)


def get_decision(session: Session, decision_id: uuid.UUID) -> dict[str, Any]:
    row = session.get(Decision, decision_id)
    if row is None:
        msg = f"no decision with id {decision_id}"
        raise NotFound(msg, field="id", value=str(decision_id), message_zh=f"未找到决定 {decision_id}")
    return {"token_id": row.token_id, "inputs": row.inputs, "result": row.result, "created_at": row.created_at}
