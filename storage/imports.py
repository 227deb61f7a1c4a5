"""Writing imports into PostGIS: one transaction per import, idempotent, set-based.

Every function here flushes into the caller's transaction and never commits: the caller (CLI, API, job)
commits once, so an import killed half-way leaves nothing behind. Rows are upserted by their external
id (``osm:way/…``, ``permit:…``, ``register:…``); each knows its batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import shapely
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from storage import premises_grid
from storage.bulk import analyze_if_outgrown, copy_into_temp
from storage.models import ImportBatch

Progress = Callable[[int, int], None]
OSM_LICENCE = "© OpenStreetMap contributors, ODbL 1.0"


@dataclass
class ImportSummary:
    """What an import did: per kind of row, how many were added, updated and skipped (and why)."""

    kind: str
    source: str
    batch_id: int | None = None
    already_imported: bool = False
    added: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.source,
            "batch_id": self.batch_id,
            "already_imported": self.already_imported,
            "added": self.added,
            "updated": self.updated,
            "skipped": self.skipped,
            "notes": self.notes,
        }


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find_batch(session: Session, *, kind: str, digest: str) -> ImportBatch | None:
    """The earlier batch that imported the same content (batches exist only once committed)."""
    return session.scalars(
        select(ImportBatch).where(ImportBatch.kind == kind, ImportBatch.file_hash == digest).order_by(ImportBatch.id)
    ).first()


def begin_batch(
    session: Session,
    *,
    kind: str,
    source: str,
    digest: str | None,
    options: dict[str, Any] | None = None,
    created_by: str | None = None,
    data_date: str | None = None,
    licence: str | None = None,
) -> ImportBatch:
    batch = ImportBatch(
        kind=kind,
        source=source,
        file_hash=digest,
        options=options or {},
        created_by=created_by,
        data_date=data_date,
        licence=licence,
    )
    session.add(batch)
    session.flush()
    return batch


def finish_batch(session: Session, batch: ImportBatch, summary: ImportSummary) -> None:
    """Record the batch's counts and recount the premises grid cells the import changed (same transaction)."""
    batch.counts = {"added": summary.added, "updated": summary.updated, "skipped": summary.skipped}
    session.flush()
    grid = premises_grid.refresh(session)
    if grid is not None:
        summary.notes.append(grid.note())


def _wkb(geom: Any) -> str | None:
    return None if geom is None else shapely.to_wkb(geom, hex=True, include_srid=False)


def _count(rows: Iterable[Any]) -> tuple[int, int]:
    added = updated = 0
    for (inserted,) in rows:
        if inserted:
            added += 1
        else:
            updated += 1
    return added, updated


#: the table each summary key counts rows of, where the two names differ
_TABLES: Final = {"assets": "zone_assets"}


def _record(session: Session, summary: ImportSummary, what: str, result: Any) -> None:
    """Count the rows a write added and updated, and refresh the table's statistics if it outgrew them."""
    added, updated = _count(result)
    summary.added[what] = summary.added.get(what, 0) + added
    summary.updated[what] = summary.updated.get(what, 0) + updated
    analyze_if_outgrown(session, _TABLES.get(what, what), added + updated)


# -- districts ------------------------------------------------------------------------------------------


def write_districts(session: Session, rows: Iterable[Any], *, batch_id: int, summary: ImportSummary) -> None:
    copy_into_temp(
        session,
        "stage_districts",
        [("adcode", "text"), ("name", "text"), ("level", "text"), ("parent", "text"), ("wkb", "text")],
        ((r.adcode, r.name, r.level, r.parent, _wkb(r.geometry)) for r in rows),
    )
    result = session.execute(
        text(
            """
            INSERT INTO districts (adcode, name, level, parent_adcode, geom, batch_id)
            SELECT adcode, name, level, parent, ST_Multi(ST_GeomFromWKB(decode(wkb, 'hex'), 4326)), :batch
            FROM stage_districts
            ON CONFLICT (adcode) DO UPDATE SET name = EXCLUDED.name, level = EXCLUDED.level,
                parent_adcode = EXCLUDED.parent_adcode, geom = EXCLUDED.geom, batch_id = EXCLUDED.batch_id
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "districts", result)
    assign_districts(session)


_ASSIGN = {
    "campuses": """
        UPDATE campuses c SET district_adcode = m.adcode FROM (
            SELECT DISTINCT ON (c2.id) c2.id, d.adcode
            FROM campuses c2 JOIN district_parts d ON ST_Covers(d.geom, ST_PointOnSurface(c2.geom))
            WHERE (CAST(:batch AS bigint) IS NULL OR c2.batch_id = :batch)
            ORDER BY c2.id, d.adcode DESC) m
        WHERE m.id = c.id AND c.district_adcode IS DISTINCT FROM m.adcode""",
    "schools": """
        UPDATE schools s SET district_adcode = m.adcode FROM (
            SELECT DISTINCT ON (c.school_id) c.school_id, c.district_adcode AS adcode
            FROM campuses c ORDER BY c.school_id, c.id) m
        WHERE m.school_id = s.id AND s.district_adcode IS DISTINCT FROM m.adcode
          AND (CAST(:batch AS bigint) IS NULL OR s.batch_id = :batch)""",
    "premises": """
        UPDATE premises p SET district_adcode = m.adcode FROM (
            SELECT DISTINCT ON (p2.id) p2.id, d.adcode
            FROM premises p2 JOIN district_parts d ON ST_Covers(d.geom, p2.geom)
            WHERE (CAST(:batch AS bigint) IS NULL OR p2.batch_id = :batch)
            ORDER BY p2.id, d.adcode DESC) m
        WHERE m.id = p.id AND p.district_adcode IS DISTINCT FROM m.adcode""",
}


def assign_districts(session: Session, *, batch_id: int | None = None) -> None:
    """Give rows their district by ``ST_Covers`` (the most specific district: counties sort last).

    GB/T 2260 adcodes sort county (XXXXYY) after city (XXXX00) after province (XX0000) within one branch,
    so the greatest covering adcode is the most specific one. Boundaries are cut into small pieces
    (``ST_Subdivide``) with their own index, so each point-in-polygon test touches a few dozen vertices.
    """
    _district_parts(session)
    for table in ("campuses", "schools"):
        session.execute(text(_ASSIGN[table]), {"batch": batch_id})
    # premises whose district changes are counted under another district in the premises grid
    premises_grid.mark(session, _ASSIGN["premises"] + " RETURNING p.geom", {"batch": batch_id})


def _district_parts(session: Session) -> None:
    """Bring the statistics of the districts' pieces up to date for the joins that follow.

    ``district_parts`` (migration 0011) is kept by a trigger on ``districts``, in this import's transaction
    too; fresh statistics let the planner probe its index rather than scan it for every row.
    """
    session.execute(text("ANALYZE district_parts"))


# -- schools (register or OSM) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SchoolRecord:
    """A school with one campus, from any source (the register or OSM)."""

    school_ext: str
    campus_ext: str
    name: str
    campus_name: str
    levels: list[str]
    flags: list[str]
    geometry: Any
    point_only: bool
    source: str
    accuracy_m: float | None = None
    students: int | None = None
    boarders: int | None = None
    staff: int | None = None
    guards: int | None = None
    access_control: bool | None = None
    arrival: Any = None
    dismissal: Any = None
    opened: Any = None
    closed: Any = None
    licensed: bool = True


def write_schools(session: Session, records: list[SchoolRecord], *, batch_id: int, summary: ImportSummary) -> None:
    cols = [
        ("school_ext", "text"), ("campus_ext", "text"), ("name", "text"), ("campus_name", "text"),
        ("levels", "text[]"), ("flags", "text[]"), ("wkb", "text"), ("point_only", "boolean"),
        ("source", "text"), ("accuracy_m", "double precision"), ("students", "integer"),
        ("boarders", "integer"), ("staff", "integer"), ("guards", "integer"), ("access_control", "boolean"),
        ("arrival", "time"), ("dismissal", "time"), ("opened", "date"), ("closed", "date"),
        ("licensed", "boolean"), ("ord", "integer"),
    ]  # fmt: skip
    copy_into_temp(
        session,
        "stage_schools",
        cols,
        (
            (
                r.school_ext, r.campus_ext, r.name, r.campus_name, r.levels, r.flags, _wkb(r.geometry),
                r.point_only, r.source, r.accuracy_m, r.students, r.boarders, r.staff, r.guards,
                r.access_control, r.arrival, r.dismissal, r.opened, r.closed, r.licensed, i,
            )
            for i, r in enumerate(records)
        ),
    )  # fmt: skip
    result = session.execute(
        text(
            """
            INSERT INTO schools (external_id, name, levels, flags, students, boarders, staff, guards,
                                 access_control, arrival, dismissal, opened, closed, licensed, source,
                                 accuracy_m, batch_id)
            SELECT DISTINCT ON (school_ext) school_ext, name, levels, flags, students, boarders, staff, guards,
                   access_control, arrival, dismissal, opened, closed, licensed, source, accuracy_m, :batch
            FROM stage_schools ORDER BY school_ext, ord DESC
            ON CONFLICT (external_id) DO UPDATE SET name = EXCLUDED.name, levels = EXCLUDED.levels,
                flags = EXCLUDED.flags, students = EXCLUDED.students, boarders = EXCLUDED.boarders,
                staff = EXCLUDED.staff, guards = EXCLUDED.guards, access_control = EXCLUDED.access_control,
                arrival = EXCLUDED.arrival, dismissal = EXCLUDED.dismissal, opened = EXCLUDED.opened,
                closed = EXCLUDED.closed, licensed = EXCLUDED.licensed, source = EXCLUDED.source,
                accuracy_m = EXCLUDED.accuracy_m, batch_id = EXCLUDED.batch_id, updated_at = now()
            WHERE (schools.name, schools.levels, schools.flags, schools.students, schools.boarders, schools.staff,
                   schools.guards, schools.access_control, schools.arrival, schools.dismissal, schools.opened,
                   schools.closed, schools.licensed, schools.accuracy_m)
                  IS DISTINCT FROM
                  (EXCLUDED.name, EXCLUDED.levels, EXCLUDED.flags, EXCLUDED.students, EXCLUDED.boarders,
                   EXCLUDED.staff, EXCLUDED.guards, EXCLUDED.access_control, EXCLUDED.arrival, EXCLUDED.dismissal,
                   EXCLUDED.opened, EXCLUDED.closed, EXCLUDED.licensed, EXCLUDED.accuracy_m)
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "schools", result)
    result = session.execute(
        text(
            """
            INSERT INTO campuses (school_id, external_id, name, geom, point_only, accuracy_m, batch_id)
            SELECT s.id, st.campus_ext, st.campus_name, ST_GeomFromWKB(decode(st.wkb, 'hex'), 4326),
                   st.point_only, st.accuracy_m, :batch
            FROM stage_schools st JOIN schools s ON s.external_id = st.school_ext
            ON CONFLICT (external_id) DO UPDATE SET school_id = EXCLUDED.school_id, name = EXCLUDED.name,
                geom = EXCLUDED.geom, point_only = EXCLUDED.point_only, accuracy_m = EXCLUDED.accuracy_m,
                batch_id = EXCLUDED.batch_id, updated_at = now()
            WHERE (campuses.school_id, campuses.name, campuses.point_only, campuses.accuracy_m)
                  IS DISTINCT FROM (EXCLUDED.school_id, EXCLUDED.name, EXCLUDED.point_only, EXCLUDED.accuracy_m)
               OR NOT ST_Equals(campuses.geom, EXCLUDED.geom)
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "campuses", result)
    assign_districts(session, batch_id=batch_id)


@dataclass(frozen=True)
class GateRecord:
    gate_ext: str
    campus_ext: str
    name: str | None
    kind: str
    in_use: bool
    geometry: Any


def write_gates(session: Session, records: list[GateRecord], *, batch_id: int, summary: ImportSummary) -> None:
    copy_into_temp(
        session,
        "stage_gates",
        [("gate_ext", "text"), ("campus_ext", "text"), ("name", "text"), ("kind", "text"), ("in_use", "boolean"),
         ("wkb", "text")],
        ((g.gate_ext, g.campus_ext, g.name, g.kind, g.in_use, _wkb(g.geometry)) for g in records),
    )  # fmt: skip
    result = session.execute(
        text(
            """
            INSERT INTO gates (campus_id, external_id, name, kind, in_use, geom, batch_id)
            SELECT c.id, g.gate_ext, g.name, g.kind, g.in_use, ST_GeomFromWKB(decode(g.wkb, 'hex'), 4326), :batch
            FROM stage_gates g JOIN campuses c ON c.external_id = g.campus_ext
            ON CONFLICT (external_id) DO UPDATE SET campus_id = EXCLUDED.campus_id, name = EXCLUDED.name,
                kind = EXCLUDED.kind, in_use = EXCLUDED.in_use, geom = EXCLUDED.geom, batch_id = EXCLUDED.batch_id,
                updated_at = now()
            WHERE (gates.campus_id, gates.name, gates.kind, gates.in_use)
                  IS DISTINCT FROM (EXCLUDED.campus_id, EXCLUDED.name, EXCLUDED.kind, EXCLUDED.in_use)
               OR NOT ST_Equals(gates.geom, EXCLUDED.geom)
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "gates", result)


# -- premises and permits -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PremisesRecord:
    premises_ext: str
    name: str
    address: str | None
    uscc: str | None
    categories: list[str]
    lon: float
    lat: float
    footprint: Any
    protection_distance_m: float | None
    accuracy_m: float | None
    source: str


def write_premises(
    session: Session, records: Iterable[PremisesRecord], *, batch_id: int, summary: ImportSummary
) -> None:
    copy_into_temp(
        session,
        "stage_premises",
        [("ext", "text"), ("name", "text"), ("address", "text"), ("uscc", "text"), ("categories", "text[]"),
         ("lon", "double precision"), ("lat", "double precision"), ("footprint", "text"),
         ("protection", "double precision"), ("accuracy", "double precision"), ("source", "text")],
        ((r.premises_ext, r.name, r.address, r.uscc, r.categories, r.lon, r.lat, _wkb(r.footprint),
          r.protection_distance_m, r.accuracy_m, r.source) for r in records),
    )  # fmt: skip
    _district_parts(session)
    # the premises grid recounts the cells a premises leaves (here) and the ones it enters (below)
    premises_grid.mark(
        session,
        "SELECT p.geom FROM stage_premises s JOIN premises p ON p.external_id = s.ext"
        " WHERE ST_X(p.geom) <> s.lon OR ST_Y(p.geom) <> s.lat",
    )
    # new rows are written in the geometry's sort order (a Hilbert curve since PostGIS 3.0): neighbours share
    # heap pages, which halves the cost of the scan's index probes (bench/scan.py)
    result = session.execute(
        text(
            """
            INSERT INTO premises (external_id, name, address, uscc, categories, geom, footprint,
                                  protection_distance_m, accuracy_m, source, batch_id, district_adcode)
            SELECT s.ext, s.name, s.address, s.uscc, s.categories, s.pt,
                   ST_GeomFromWKB(decode(s.footprint, 'hex'), 4326), s.protection, s.accuracy, s.source, :batch,
                   (SELECT d.adcode FROM district_parts d WHERE ST_Covers(d.geom, s.pt)
                    ORDER BY d.adcode DESC LIMIT 1)
            FROM (SELECT *, ST_SetSRID(ST_MakePoint(lon, lat), 4326) AS pt FROM stage_premises) s
            ORDER BY s.pt
            ON CONFLICT (external_id) DO UPDATE SET name = EXCLUDED.name, address = EXCLUDED.address,
                uscc = EXCLUDED.uscc, categories = EXCLUDED.categories, geom = EXCLUDED.geom,
                footprint = EXCLUDED.footprint, protection_distance_m = EXCLUDED.protection_distance_m,
                accuracy_m = EXCLUDED.accuracy_m, source = EXCLUDED.source, batch_id = EXCLUDED.batch_id,
                district_adcode = EXCLUDED.district_adcode, updated_at = now()
            WHERE (premises.name, premises.address, premises.uscc, premises.categories,
                   premises.protection_distance_m, premises.accuracy_m)
                  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.address, EXCLUDED.uscc, EXCLUDED.categories,
                   EXCLUDED.protection_distance_m, EXCLUDED.accuracy_m)
               OR NOT ST_Equals(premises.geom, EXCLUDED.geom)
               OR NOT (premises.footprint IS NOT DISTINCT FROM EXCLUDED.footprint)
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "premises", result)
    premises_grid.mark(session, "SELECT geom FROM premises WHERE batch_id = :batch", {"batch": batch_id})


@dataclass(frozen=True)
class PermitRecord:
    permit_id: str
    premises_ext: str
    category: str
    issued: Any
    expires: Any
    applied: Any
    status: str


def write_permits(session: Session, records: Iterable[PermitRecord], *, batch_id: int, summary: ImportSummary) -> None:
    copy_into_temp(
        session,
        "stage_permits",
        [("permit_id", "text"), ("ext", "text"), ("category", "text"), ("issued", "date"), ("expires", "date"),
         ("applied", "date"), ("status", "text")],
        ((r.permit_id, r.premises_ext, r.category, r.issued, r.expires, r.applied, r.status) for r in records),
    )  # fmt: skip
    # a permit gives its premises a category (when none was observed) and decides whether it is licensed:
    # the premises grid recounts the premises a permit leaves (here) and those whose permits change (below)
    premises_grid.mark(
        session,
        "SELECT p.geom FROM stage_permits s JOIN permits pm ON pm.permit_id = s.permit_id"
        " JOIN premises p ON p.id = pm.premises_id WHERE p.external_id <> s.ext",
    )
    result = session.execute(
        text(
            """
            INSERT INTO permits (permit_id, premises_id, category, issued, expires, applied, status, batch_id)
            SELECT s.permit_id, p.id, s.category, s.issued, s.expires, s.applied, s.status, :batch
            FROM stage_permits s JOIN premises p ON p.external_id = s.ext
            ON CONFLICT (permit_id) DO UPDATE SET premises_id = EXCLUDED.premises_id, category = EXCLUDED.category,
                issued = EXCLUDED.issued, expires = EXCLUDED.expires, applied = EXCLUDED.applied,
                status = EXCLUDED.status, batch_id = EXCLUDED.batch_id, updated_at = now()
            WHERE (permits.premises_id, permits.category, permits.issued, permits.expires, permits.applied,
                   permits.status)
                  IS DISTINCT FROM (EXCLUDED.premises_id, EXCLUDED.category, EXCLUDED.issued, EXCLUDED.expires,
                   EXCLUDED.applied, EXCLUDED.status)
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "permits", result)
    premises_grid.mark(
        session,
        "SELECT p.geom FROM permits pm JOIN premises p ON p.id = pm.premises_id WHERE pm.batch_id = :batch",
        {"batch": batch_id},
    )


# -- assets, cameras, streets ----------------------------------------------------------------------------


def write_assets(
    session: Session, records: Iterable[tuple[str, str, str | None, Any, str]], *, batch_id: int,
    summary: ImportSummary,
) -> None:  # fmt: skip
    """Zone assets as (external id, kind, name, geometry, source)."""
    copy_into_temp(
        session,
        "stage_assets",
        [("ext", "text"), ("kind", "text"), ("name", "text"), ("wkb", "text"), ("source", "text")],
        ((ext, kind, name, _wkb(geom), source) for ext, kind, name, geom, source in records),
    )
    result = session.execute(
        text(
            """
            INSERT INTO zone_assets (external_id, kind, name, geom, source, batch_id)
            SELECT ext, kind, name, ST_GeomFromWKB(decode(wkb, 'hex'), 4326), source, :batch FROM stage_assets
            ON CONFLICT (external_id) DO UPDATE SET kind = EXCLUDED.kind, name = EXCLUDED.name, geom = EXCLUDED.geom,
                source = EXCLUDED.source, batch_id = EXCLUDED.batch_id
            WHERE (zone_assets.kind, zone_assets.name) IS DISTINCT FROM (EXCLUDED.kind, EXCLUDED.name)
               OR NOT ST_Equals(zone_assets.geom, EXCLUDED.geom)
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "assets", result)


def write_cameras(session: Session, rows: Iterable[Any], *, batch_id: int, summary: ImportSummary) -> None:
    copy_into_temp(
        session,
        "stage_cameras",
        [("ext", "text"), ("name", "text"), ("lon", "double precision"), ("lat", "double precision"),
         ("direction", "double precision"), ("fov", "double precision"), ("range", "double precision")],
        ((f"camera:{r.camera_id}", r.name, r.lon, r.lat, r.direction_deg, r.fov_deg, r.range_m) for r in rows),
    )  # fmt: skip
    result = session.execute(
        text(
            """
            INSERT INTO cameras (external_id, name, geom, direction_deg, fov_deg, range_m, batch_id)
            SELECT ext, name, ST_SetSRID(ST_MakePoint(lon, lat), 4326), direction, fov, range, :batch
            FROM stage_cameras
            ON CONFLICT (external_id) DO UPDATE SET name = EXCLUDED.name, geom = EXCLUDED.geom,
                direction_deg = EXCLUDED.direction_deg, fov_deg = EXCLUDED.fov_deg, range_m = EXCLUDED.range_m,
                batch_id = EXCLUDED.batch_id
            WHERE (cameras.name, cameras.direction_deg, cameras.fov_deg, cameras.range_m)
                  IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.direction_deg, EXCLUDED.fov_deg, EXCLUDED.range_m)
               OR NOT ST_Equals(cameras.geom, EXCLUDED.geom)
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "cameras", result)


def write_streets(
    session: Session, edges: Iterable[tuple[str, int, int, float, str | None, str | None, Any]], *, batch_id: int,
    summary: ImportSummary,
) -> None:  # fmt: skip
    """Street edges as (source ref, u, v, geodesic length, highway, name, LineString)."""
    copy_into_temp(
        session,
        "stage_streets",
        [("ref", "text"), ("u", "bigint"), ("v", "bigint"), ("length_m", "double precision"), ("highway", "text"),
         ("name", "text"), ("wkb", "text")],
        ((ref, u, v, length, hw, name, _wkb(geom)) for ref, u, v, length, hw, name, geom in edges),
    )  # fmt: skip
    result = session.execute(
        text(
            """
            INSERT INTO street_edges (source_ref, u, v, length_m, highway, name, geom, batch_id)
            SELECT DISTINCT ON (ref, u, v) ref, u, v, length_m, highway, name,
                   ST_GeomFromWKB(decode(wkb, 'hex'), 4326), :batch
            FROM stage_streets ORDER BY ref, u, v, length_m
            ON CONFLICT (source_ref, u, v) DO UPDATE SET length_m = EXCLUDED.length_m, highway = EXCLUDED.highway,
                name = EXCLUDED.name, geom = EXCLUDED.geom, batch_id = EXCLUDED.batch_id
            WHERE (street_edges.length_m, street_edges.highway, street_edges.name)
                  IS DISTINCT FROM (EXCLUDED.length_m, EXCLUDED.highway, EXCLUDED.name)
            RETURNING (xmax = 0)
            """
        ),
        {"batch": batch_id},
    )
    _record(session, summary, "street_edges", result)
