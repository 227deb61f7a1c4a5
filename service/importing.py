"""Import orchestration shared by the CLI, the admin API and background jobs.

Each import: hash the input; if the same content was imported before, add nothing; else parse and
validate it with ``geo`` (a bad file is rejected whole with every row's problem, unless
``skip_invalid``), write it with ``storage.imports`` and commit ONCE — so an import killed at any point
leaves no row of its batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from geo.categories import load_mapping
from geo.errors import InvalidInput
from geo.osm import OsmExtract, fetch_place, read_osm
from geo.registry import (
    ParsedTable,
    RowError,
    group_premises,
    load_permit_mapping,
    parse_cameras,
    parse_districts,
    parse_permits,
    parse_schools,
    write_rejects,
)
from storage import imports as store
from storage.database import session_scope

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int | None], None]


def _no_progress(stage: str, done: int, total: int | None) -> None:
    return None


class ImportRejected(InvalidInput):
    """A file with invalid rows, rejected whole; ``errors`` names every row, column, value and reason."""

    title = "File rejected"

    def __init__(self, source: str, errors: list[RowError]) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        super().__init__(
            f"{source}: row {first.row}, column {first.column or '-'}, value {first.value!r}: {first.reason_en}{more}",
            message_zh=f"{source}：第 {first.row} 行，列 {first.column or '-'}，值 {first.value!r}：{first.reason_zh}"
            + (f"（另有 {len(errors) - 1} 处问题）" if len(errors) > 1 else ""),
            field=first.column,
            row=first.row,
            value=first.value,
        )
        self.errors = errors

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["errors"] = [
            {"row": e.row, "column": e.column, "value": e.value, "reason_en": e.reason_en, "reason_zh": e.reason_zh}
            for e in self.errors[:1000]
        ]
        out["error_count"] = len(self.errors)
        return out


@dataclass(frozen=True)
class ImportOptions:
    created_by: str | None = None
    skip_invalid: bool = False
    rejects_path: Path | None = None
    crs: str | None = None
    data_dir: Path | None = None


def _check(table: ParsedTable[Any], source: str, opts: ImportOptions, summary: store.ImportSummary) -> None:
    if not table.errors:
        return
    if not opts.skip_invalid:
        raise ImportRejected(source, table.errors)
    summary.skipped["rows"] = len(table.rejected_rows)
    reasons: dict[str, int] = {}
    for e in table.errors:
        reasons[e.reason_en.split(":")[0][:80]] = reasons.get(e.reason_en.split(":")[0][:80], 0) + 1
    summary.notes += [f"skipped: {n} × {why}" for why, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:10]]
    if opts.rejects_path is not None:
        n = write_rejects(table, opts.rejects_path)
        summary.notes.append(f"{n} rejected rows written to {opts.rejects_path}")


def _begin(session: Session, kind: str, source: str, digest: str, opts: ImportOptions, **extra: Any):  # noqa: ANN202
    summary = store.ImportSummary(kind=kind, source=source)
    earlier = store.find_batch(session, kind=kind, digest=digest)
    if earlier is not None:
        summary.batch_id = earlier.id
        summary.already_imported = True
        summary.notes.append(f"the same content was imported as batch {earlier.id}; nothing added")
        return summary, None
    options = {"crs": opts.crs, "skip_invalid": opts.skip_invalid}
    batch = store.begin_batch(
        session, kind=kind, source=source, digest=digest, options=options, created_by=opts.created_by, **extra
    )
    summary.batch_id = batch.id
    return summary, batch


def _import_table(
    factory: sessionmaker[Session],
    kind: str,
    path: Path,
    opts: ImportOptions,
    read: Callable[[Path], ParsedTable[Any]],
    write: Callable[[Session, list[Any], int, store.ImportSummary], None],
) -> store.ImportSummary:
    """The shape every table import shares: hash, skip if seen, read and check, write, finish the batch."""
    digest = store.file_hash(path)
    with session_scope(factory) as session:
        summary, batch = _begin(session, kind, path.name, digest, opts)
        if batch is None:
            return summary
        table = read(path)
        _check(table, path.name, opts, summary)
        write(session, table.rows, batch.id, summary)
        store.finish_batch(session, batch, summary)
    return summary


def import_districts(factory: sessionmaker[Session], path: Path, opts: ImportOptions) -> store.ImportSummary:
    def write(session: Session, rows: list[Any], batch_id: int, summary: store.ImportSummary) -> None:
        store.write_districts(session, rows, batch_id=batch_id, summary=summary)

    return _import_table(factory, "districts", path, opts, parse_districts, write)


def import_schools(factory: sessionmaker[Session], path: Path, opts: ImportOptions) -> store.ImportSummary:
    def write(session: Session, rows: list[Any], batch_id: int, summary: store.ImportSummary) -> None:
        records = [
            store.SchoolRecord(
                school_ext=f"register:{r.school_id}",
                campus_ext=f"register:{r.school_id}:{r.campus}",
                name=r.name,
                campus_name=r.campus,
                levels=sorted(r.levels),
                flags=sorted(
                    ({"level_unknown"} if not r.levels else set())
                    | ({"point_only"} if r.point_only else set())
                    | ({"unlicensed"} if not r.licensed else set())
                ),
                geometry=r.geometry,
                point_only=r.point_only,
                source="register",
                accuracy_m=r.accuracy_m,
                students=r.students,
                boarders=r.boarders,
                staff=r.staff,
                guards=r.guards,
                access_control=r.access_control,
                arrival=r.arrival,
                dismissal=r.dismissal,
                opened=r.opened,
                closed=r.closed,
                licensed=r.licensed,
            )
            for r in rows
        ]
        store.write_schools(session, records, batch_id=batch_id, summary=summary)

    return _import_table(factory, "schools", path, opts, lambda p: parse_schools(p, crs=opts.crs), write)


def import_gates_frame(session: Session, frame: Any, *, batch_id: int, summary: store.ImportSummary) -> None:
    """Gates from a GeoDataFrame with school_id, campus, gate_id, name, kind, in_use (register ids)."""
    records = [
        store.GateRecord(
            gate_ext=f"register:{r.school_id}:{r.campus}:{r.gate_id}",
            campus_ext=f"register:{r.school_id}:{r.campus}",
            name=r.name,
            kind=r.kind,
            in_use=bool(r.in_use),
            geometry=r.geometry,
        )
        for r in frame.itertuples(index=False)
    ]
    store.write_gates(session, records, batch_id=batch_id, summary=summary)


def import_permits(
    factory: sessionmaker[Session], path: Path, opts: ImportOptions, progress: Progress = _no_progress
) -> store.ImportSummary:
    digest = store.file_hash(path)
    mapping = load_permit_mapping(opts.data_dir / "mappings" / "permit_categories.yaml" if opts.data_dir else None)
    with session_scope(factory) as session:
        summary, batch = _begin(session, "permits", path.name, digest, opts)
        if batch is None:
            return summary
        progress("reading", 0, None)
        table = parse_permits(path, crs=opts.crs, mapping=mapping)
        groups, group_errors = group_premises(table.rows)
        if group_errors:
            table.errors.extend(group_errors)
            table.errors.sort(key=lambda e: e.row)
            bad = {e.row for e in group_errors}
            groups = [g for g in groups if not any(p.row in bad for p in g.permits)]
        _check(table, path.name, opts, summary)
        total = len(groups)
        progress("premises", 0, total)
        store.write_premises(
            session,
            (
                store.PremisesRecord(
                    premises_ext=f"permit:{g.key}",
                    name=g.name,
                    address=g.address,
                    uscc=g.uscc,
                    categories=[],
                    lon=g.lon,
                    lat=g.lat,
                    footprint=g.footprint,
                    protection_distance_m=max(
                        (p.protection_distance_m for p in g.permits if p.protection_distance_m is not None),
                        default=None,
                    ),
                    accuracy_m=max(p.accuracy_m for p in g.permits),
                    source="permits",
                )
                for g in groups
            ),
            batch_id=batch.id,
            summary=summary,
        )
        progress("permits", total // 2, total)
        store.write_permits(
            session,
            (
                store.PermitRecord(
                    permit_id=p.permit_id,
                    premises_ext=f"permit:{g.key}",
                    category=p.category,
                    issued=p.issued,
                    expires=p.expires,
                    applied=p.applied,
                    status=p.status,
                )
                for g in groups
                for p in g.permits
            ),
            batch_id=batch.id,
            summary=summary,
        )
        progress("committing", total, total)
        store.finish_batch(session, batch, summary)
    return summary


def import_cameras(factory: sessionmaker[Session], path: Path, opts: ImportOptions) -> store.ImportSummary:
    def write(session: Session, rows: list[Any], batch_id: int, summary: store.ImportSummary) -> None:
        store.write_cameras(session, rows, batch_id=batch_id, summary=summary)

    return _import_table(factory, "cameras", path, opts, lambda p: parse_cameras(p, crs=opts.crs), write)


def _write_osm(session: Session, extract: OsmExtract, batch_id: int, summary: store.ImportSummary) -> None:
    records = [
        store.SchoolRecord(
            school_ext=f"osm:{s.ref}",
            campus_ext=f"osm:{s.ref}",
            name=s.name or "（未命名学校）",
            campus_name=s.name or "",
            levels=sorted(s.levels),
            flags=sorted(set(s.flags)),
            geometry=s.geometry,
            point_only="point_only" in s.flags,
            source="osm",
        )
        for s in extract.schools
    ]
    store.write_schools(session, records, batch_id=batch_id, summary=summary)
    store.write_gates(
        session,
        [
            store.GateRecord(
                gate_ext=f"osm:{g.ref}", campus_ext=f"osm:{g.school_ref}", name=g.name, kind=g.kind, in_use=True,
                geometry=g.point,
            )
            for g in extract.gates
        ],
        batch_id=batch_id,
        summary=summary,
    )  # fmt: skip
    store.write_premises(
        session,
        (
            store.PremisesRecord(
                premises_ext=f"osm:{p.ref}", name=p.name or "", address=p.tags.get("addr:full"), uscc=None,
                categories=list(p.categories), lon=p.point.x, lat=p.point.y, footprint=p.footprint,
                protection_distance_m=None, accuracy_m=None, source="osm",
            )
            for p in extract.premises
        ),
        batch_id=batch_id,
        summary=summary,
    )  # fmt: skip
    kinds = {"police": "police_post"}
    store.write_assets(
        session,
        ((f"osm:{a.ref}", kinds.get(a.kind, a.kind), a.name, a.geometry, "osm") for a in extract.assets),
        batch_id=batch_id,
        summary=summary,
    )
    store.write_streets(
        session,
        ((f"osm:{e.way_ref}", e.u, e.v, e.length_m, e.highway, e.name, e.geometry) for e in extract.edges),
        batch_id=batch_id,
        summary=summary,
    )
    for x in extract.excluded:
        key = f"not a school: {x.reason}"
        summary.skipped[key] = summary.skipped.get(key, 0) + 1
    merged = sum(len(s.merged_refs) for s in extract.schools)
    if merged:
        summary.notes.append(f"{merged} school points merged into their outlines")
    summary.notes.append("© OpenStreetMap contributors (ODbL)")


def import_osm(
    factory: sessionmaker[Session],
    path: Path | None,
    opts: ImportOptions,
    *,
    place: str | None = None,
    progress: Progress = _no_progress,
) -> store.ImportSummary:
    """Import an OSM extract file, or (with ``place``) fetch one through osmnx — the only network use."""
    mapping = load_mapping(opts.data_dir / "mappings" / "osm_categories.yaml" if opts.data_dir else None)
    if place is not None:
        extract = fetch_place(place, mapping=mapping)
        digest, source = None, f"place:{place}"
    else:
        assert path is not None
        digest, source = store.file_hash(path), path.name
    with session_scope(factory) as session:
        if digest is not None:
            summary, batch = _begin(session, "osm", source, digest, opts)
            if batch is None:
                return summary
            extract = read_osm(path, mapping=mapping, progress=lambda n: progress("reading", n, None))
            batch.data_date = extract.data_date
            batch.licence = store.OSM_LICENCE
        else:
            summary = store.ImportSummary(kind="osm", source=source)
            batch = store.begin_batch(
                session, kind="osm", source=source, digest=None, created_by=opts.created_by,
                data_date=extract.data_date, licence=store.OSM_LICENCE,
            )  # fmt: skip
            summary.batch_id = batch.id
        progress("writing", 0, None)
        _write_osm(session, extract, batch.id, summary)
        store.finish_batch(session, batch, summary)
    return summary
