"""Editing schools, campuses and gates, and patching the latest scan with the findings an edit changes.

Geometry arrives as shapely objects in WGS84 (the service converted it); districts are given by
``ST_Covers`` on entry as the imports do. After an edit, :func:`patch_latest_scan` re-judges the edited
campuses with the scan's own statements (:func:`storage.scan.judge_campuses`) and reconciles the result
with the latest scan's findings of those campuses **in that scan**: findings that stay keep their id (their
distance, status or school name are refreshed), new ones are added and warn their school, gone ones are
removed. ``GET /v1/findings`` (the latest scan) therefore shows the city as it is after the edit.

Every function flushes into the caller's transaction; the caller commits. Rows leave as plain values.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from geoalchemy2.shape import from_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from geo.errors import NotFound
from storage import scan as scan_store
from storage.models import Campus, Gate, Scan, School

#: School columns an edit may set (the API's field names are the column names).
SCHOOL_FIELDS = (
    "name", "levels", "flags", "students", "boarders", "staff", "guards", "access_control", "arrival", "dismissal",
    "opened", "closed", "licensed", "accuracy_m",
)  # fmt: skip


def _not_found(what: str, zh: str, ident: int) -> NotFound:
    return NotFound(f"no {what} with id {ident}", field="id", value=ident, message_zh=f"未找到{zh} {ident}")


def _school(session: Session, school_id: int) -> School:
    school = session.get(School, school_id, with_for_update=True)
    if school is None:
        raise _not_found("school", "学校", school_id)
    return school


def _campus(session: Session, campus_id: int) -> Campus:
    campus = session.get(Campus, campus_id, with_for_update=True)
    if campus is None:
        raise _not_found("campus", "校区", campus_id)
    return campus


def _assign_districts(session: Session, school_id: int) -> None:
    """Campuses get the most specific district covering a point on their surface; the school its first's."""
    session.execute(
        text(
            """
            UPDATE campuses c SET district_adcode = (
                SELECT d.adcode FROM districts d WHERE ST_Covers(d.geom, ST_PointOnSurface(c.geom))
                ORDER BY d.adcode DESC LIMIT 1)
            WHERE c.school_id = :school
            """
        ),
        {"school": school_id},
    )
    session.execute(
        text(
            """
            UPDATE schools s SET district_adcode = (
                SELECT c.district_adcode FROM campuses c WHERE c.school_id = s.id ORDER BY c.id LIMIT 1)
            WHERE s.id = :school
            """
        ),
        {"school": school_id},
    )


def _add_campus(session: Session, school: School, campus: Mapping[str, Any]) -> int:
    geom: BaseGeometry = campus["geometry"]
    row = Campus(
        school_id=school.id,
        external_id=campus.get("external_id") or f"api:campus:{uuid.uuid4().hex}",
        name=campus.get("name") or school.name,
        geom=from_shape(geom, srid=4326),
        point_only=geom.geom_type in ("Point", "MultiPoint"),
        accuracy_m=campus.get("accuracy_m"),
    )
    session.add(row)
    session.flush()
    for gate in campus.get("gates", ()):
        _add_gate(session, row.id, gate)
    return row.id


def _add_gate(session: Session, campus_id: int, gate: Mapping[str, Any]) -> int:
    row = Gate(
        campus_id=campus_id,
        external_id=gate.get("external_id") or f"api:gate:{uuid.uuid4().hex}",
        name=gate.get("name"),
        kind=gate.get("kind") or "unknown",
        in_use=gate.get("in_use", True),
        hours=gate.get("hours"),
        geom=from_shape(gate["geometry"], srid=4326),
    )
    session.add(row)
    session.flush()
    return row.id


def create_school(session: Session, *, fields: Mapping[str, Any], campuses: Sequence[Mapping[str, Any]]) -> int:
    """A school with its campuses (each with its gates); returns the school id."""
    school = School(
        external_id=fields.get("external_id") or f"api:school:{uuid.uuid4().hex}",
        source="api",
        **{k: v for k, v in fields.items() if k in SCHOOL_FIELDS and v is not None},
    )
    session.add(school)
    session.flush()
    for campus in campuses:
        _add_campus(session, school, campus)
    _assign_districts(session, school.id)
    session.flush()
    return school.id


def update_school(session: Session, school_id: int, fields: Mapping[str, Any]) -> list[int]:
    """Set the given fields of a school; returns the ids of its campuses (all of them may judge differently)."""
    school = _school(session, school_id)
    for key, value in fields.items():
        if key in SCHOOL_FIELDS:
            setattr(school, key, value)
    if "levels" in fields:  # an unknown level is flagged (and protected by every rule); other flags stay
        flags = set(school.flags or ()) - {"level_unknown"}
        school.flags = sorted(flags | (set() if fields["levels"] else {"level_unknown"}))
    session.flush()
    return campus_ids_of_school(session, school_id)


def campus_ids_of_school(session: Session, school_id: int) -> list[int]:
    return list(session.scalars(select(Campus.id).where(Campus.school_id == school_id).order_by(Campus.id)))


def update_campus(session: Session, campus_id: int, fields: Mapping[str, Any]) -> int:
    """Replace a campus's outline (``geometry``), name or accuracy; returns the school id."""
    campus = _campus(session, campus_id)
    if "geometry" in fields:
        geom: BaseGeometry = fields["geometry"]
        campus.geom = from_shape(geom, srid=4326)
        campus.point_only = geom.geom_type in ("Point", "MultiPoint")
    for key in ("name", "accuracy_m"):
        if key in fields:
            setattr(campus, key, fields[key])
    session.flush()
    _assign_districts(session, campus.school_id)
    session.flush()
    return campus.school_id


def add_gate(session: Session, campus_id: int, gate: Mapping[str, Any]) -> int:
    """A new gate of a campus; returns its id."""
    _campus(session, campus_id)
    return _add_gate(session, campus_id, gate)


def update_gate(session: Session, gate_id: int, fields: Mapping[str, Any]) -> int:
    """Move a gate (``geometry``), open or close it (``in_use``), rename it; returns its campus id."""
    gate = session.get(Gate, gate_id, with_for_update=True)
    if gate is None:
        raise _not_found("gate", "校门", gate_id)
    if "geometry" in fields:
        gate.geom = from_shape(fields["geometry"], srid=4326)
    for key in ("in_use", "kind", "name", "hours"):
        if key in fields:
            setattr(gate, key, fields[key])
    session.flush()
    return gate.campus_id


def distance_to_campus_m(session: Session, campus_id: int, geometry: BaseGeometry) -> float | None:
    """Geodesic distance (WGS84 spheroid) from a geometry to a campus's outline; 0 on or inside it.

    None for a campus known only as a point (its outline, and so its edge, is unknown).
    """
    row = session.execute(
        text(
            """
            SELECT CASE WHEN c.point_only OR GeometryType(c.geom) IN ('POINT', 'MULTIPOINT') THEN NULL
                        ELSE ST_Distance(c.geom::geography, ST_GeogFromText(:wkt)) END
            FROM campuses c WHERE c.id = :id
            """
        ),
        {"wkt": "SRID=4326;" + geometry.wkt, "id": campus_id},
    ).first()
    if row is None:
        raise _not_found("campus", "校区", campus_id)
    return None if row[0] is None else float(row[0])


# --- the scan after an edit ------------------------------------------------------------------------------


def latest_scan(session: Session) -> tuple[int, Any, str | None] | None:
    """The latest finished scan's id, date and district, locked (edits patch it one after another)."""
    stmt = select(Scan.id, Scan.scan_date, Scan.district).where(Scan.status == "done")
    row = session.execute(stmt.order_by(Scan.id.desc()).limit(1).with_for_update()).first()
    return None if row is None else (row[0], row[1], row[2])


def district_adcodes(session: Session) -> list[str | None]:
    """Every district a premises can be in (premises get theirs from this table), and None (outside all)."""
    return [None, *session.scalars(text("SELECT adcode FROM districts ORDER BY adcode"))]


def patch_latest_scan(
    session: Session,
    scan_id: int,
    rules: Sequence[scan_store.ScanRule],
    *,
    settings: scan_store.ScanSettings,
    campus_ids: Sequence[int],
    district: str | None = None,
) -> dict[str, Any]:
    """Re-judge ``campus_ids`` and reconcile scan ``scan_id``'s findings of those campuses.

    Returns ``appeared`` and ``disappeared`` findings (by the key premises × permit × rule × campus, as
    ``GET /v1/scans/{id}/diff`` compares), ``changed`` (same key, other status or due date), the warnings
    sent and what was evaluated (campuses, premises, pairs).
    """
    t0 = time.perf_counter()
    ids = list(campus_ids)
    # the scan's findings of these campuses (their school's findings, by index, then the campuses)
    session.execute(text("DROP TABLE IF EXISTS edit_old"))
    session.execute(
        text(
            """
            CREATE TEMP TABLE edit_old ON COMMIT DROP AS
            SELECT id, premises_id, permit_id, rule_id, campus_id, status, due_date FROM findings
            WHERE scan_id = :scan AND school_id IN (SELECT school_id FROM campuses WHERE id = ANY(:ids))
              AND campus_id = ANY(:ids)
            """
        ),
        {"scan": scan_id, "ids": ids},
    )
    watermark = session.scalar(
        text("SELECT coalesce(max(id), 0) FROM findings WHERE scan_id = :scan"), {"scan": scan_id}
    )
    judged = scan_store.judge_campuses(session, scan_id, rules, settings=settings, campus_ids=ids, district=district)
    # the edit holds the scan's row lock, so the scan's rows above the watermark are this judgement's
    session.execute(text("DROP TABLE IF EXISTS edit_new"))
    session.execute(
        text(
            """
            CREATE TEMP TABLE edit_new ON COMMIT DROP AS
            SELECT id, premises_id, permit_id, rule_id, campus_id, status, due_date FROM findings
            WHERE id > :watermark AND scan_id = :scan
            """
        ),
        {"scan": scan_id, "watermark": watermark},
    )
    session.execute(text("DROP TABLE IF EXISTS edit_match"))
    session.execute(
        text(
            """
            CREATE TEMP TABLE edit_match ON COMMIT DROP AS
            SELECT DISTINCT ON (n.id) o.id AS old_id, n.id AS new_id,
                   (o.status, o.due_date) IS DISTINCT FROM (n.status, n.due_date) AS changed
            FROM edit_new n
            JOIN edit_old o ON o.premises_id = n.premises_id AND coalesce(o.permit_id, -1) = coalesce(n.permit_id, -1)
                           AND o.rule_id = n.rule_id AND o.campus_id = n.campus_id
            ORDER BY n.id, o.id
            """
        )
    )
    appeared = list(
        session.scalars(text("SELECT id FROM edit_new WHERE id NOT IN (SELECT new_id FROM edit_match) ORDER BY id"))
    )
    gone = list(
        session.scalars(text("SELECT id FROM edit_old WHERE id NOT IN (SELECT old_id FROM edit_match) ORDER BY id"))
    )
    changed = list(session.scalars(text("SELECT old_id FROM edit_match WHERE changed ORDER BY old_id")))
    disappeared = scan_store.findings_by_ids(session, gone, scan_id=scan_id)
    # findings that stay keep their id (cases and warnings point at it) and take the re-judged values
    session.execute(
        text(
            """
            UPDATE findings o SET permit_no = n.permit_no, premises_name = n.premises_name, category = n.category,
                   status = n.status, due_date = n.due_date, school_id = n.school_id, school_name = n.school_name,
                   distance_m = n.distance_m, limit_m = n.limit_m, u_m = n.u_m, margin_m = n.margin_m,
                   method = n.method, district_adcode = n.district_adcode, lead_department = n.lead_department,
                   cooperating_departments = n.cooperating_departments, flags = n.flags, geom = n.geom,
                   from_geom = n.from_geom, to_geom = n.to_geom
            FROM edit_match m JOIN findings n ON n.id = m.new_id AND n.scan_id = :scan
            WHERE o.id = m.old_id AND o.scan_id = :scan
            """
        ),
        {"scan": scan_id},
    )
    session.execute(
        text(
            "DELETE FROM findings WHERE scan_id = :scan AND id IN (SELECT new_id FROM edit_match UNION ALL "
            "SELECT unnest(CAST(:gone AS bigint[])))"
        ),
        {"gone": gone, "scan": scan_id},
    )
    warned = session.execute(  # type: ignore[attr-defined]
        text(
            f"""
            INSERT INTO school_warnings (school_id, scan_id, finding_id, finding_key)
            SELECT n.school_id, n.scan_id, n.id, {scan_store.FINDING_KEY}
            FROM findings n WHERE n.scan_id = :scan AND n.id = ANY(:ids)
            """
        ),
        {"ids": appeared, "scan": scan_id},
    ).rowcount
    counts = scan_store.refresh_counts(session, scan_id)
    session.flush()
    return {
        "scan_id": scan_id,
        "appeared": scan_store.findings_by_ids(session, appeared, scan_id=scan_id),
        "disappeared": disappeared,
        "changed": scan_store.findings_by_ids(session, changed, scan_id=scan_id),
        "warnings": warned,
        "evaluated": {
            "campuses": ids,
            "premises": len(judged["premises_ids"]),
            "pairs": judged["pairs"],
            "seconds": round(time.perf_counter() - t0, 3),
        },
        "premises_ids": judged["premises_ids"],
        "scan_total": counts["total"],
    }
