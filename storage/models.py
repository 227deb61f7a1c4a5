"""The PostGIS schema (SQLAlchemy 2 declarative models).

All geometries are EPSG:4326 (WGS84). Distance predicates use ``geography`` expression indexes.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    event,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, list[str]: ARRAY(Text)}


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _geog_index(table: str) -> Index:
    """A GiST index on the geography of ``geom`` (distance predicates in metres use it)."""
    return Index("ix_" + table + "_geom_geog", text("(geom::geography)"), postgresql_using="gist")


class Department(Base):
    __tablename__ = "departments"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(Text)
    name_en: Mapped[str] = mapped_column(Text)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"))
    created_at: Mapped[dt.datetime] = _now()


class Token(Base):
    """An API token. Only its SHA-256 is stored; the token itself is shown once."""

    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(32))
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = _now()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class ImportBatch(Base):
    """One import: what came in, from where, by whom, with what result."""

    __tablename__ = "import_batches"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)
    file_hash: Mapped[str | None] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    data_date: Mapped[str | None] = mapped_column(Text)
    licence: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    __table_args__ = (Index("ix_import_batches_kind_hash", "kind", "file_hash"),)


class District(Base):
    __tablename__ = "districts"
    adcode: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    level: Mapped[str] = mapped_column(String(16))
    parent_adcode: Mapped[str | None] = mapped_column(String(6))
    geom: Mapped[Any] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=True))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))


class DistrictPart(Base):
    """A piece of a district's outline of at most 64 vertices (``ST_Subdivide``), written by a trigger on
    districts (migration 0011): a site's district is found by testing one small piece."""

    __tablename__ = "district_parts"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    adcode: Mapped[str] = mapped_column(String(6), index=True)
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False)


class School(Base):
    __tablename__ = "schools"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    levels: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    students: Mapped[int | None] = mapped_column(Integer)
    boarders: Mapped[int | None] = mapped_column(Integer)
    staff: Mapped[int | None] = mapped_column(Integer)
    guards: Mapped[int | None] = mapped_column(Integer)
    access_control: Mapped[bool | None] = mapped_column(Boolean)
    arrival: Mapped[dt.time | None] = mapped_column(Time)
    dismissal: Mapped[dt.time | None] = mapped_column(Time)
    opened: Mapped[dt.date | None] = mapped_column(Date)
    closed: Mapped[dt.date | None] = mapped_column(Date)
    licensed: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    source: Mapped[str] = mapped_column(String(32))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    district_adcode: Mapped[str | None] = mapped_column(String(6), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()
    campuses: Mapped[list[Campus]] = relationship(back_populates="school", cascade="all, delete-orphan")
    __table_args__ = (Index("ix_schools_levels", "levels", postgresql_using="gin"),)


class Campus(Base):
    __tablename__ = "campuses"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    school_id: Mapped[int] = mapped_column(ForeignKey("schools.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True))
    point_only: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    district_adcode: Mapped[str | None] = mapped_column(String(6), index=True)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    updated_at: Mapped[dt.datetime] = _now()
    school: Mapped[School] = relationship(back_populates="campuses")
    gates: Mapped[list[Gate]] = relationship(back_populates="campus", cascade="all, delete-orphan")
    __table_args__ = (_geog_index("campuses"),)


class Gate(Base):
    __tablename__ = "gates"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campus_id: Mapped[int] = mapped_column(ForeignKey("campuses.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16), server_default="unknown")
    in_use: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    hours: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    updated_at: Mapped[dt.datetime] = _now()
    campus: Mapped[Campus] = relationship(back_populates="gates")
    __table_args__ = (_geog_index("gates"),)


#: Premises whose stated accuracy is worse than this are paired with the campuses apart, each by its own search
#: box (``storage.scan``), so that a few bad positions do not grow the search box of every campus
PASS1_SITE_ACCURACY_M = 50.0


def paired_apart(alias: str = "") -> str:
    """The premises a scan may pair apart (a poor position, a protection distance of their own, a point outside
    its footprint's box), as the predicate of their partial index (that pass reads them, not every premises); its
    columns qualified with ``alias``."""
    q = f"{alias}." if alias else ""
    return (
        f"{q}accuracy_m > {PASS1_SITE_ACCURACY_M:g} OR {q}protection_distance_m IS NOT NULL"
        f" OR ({q}footprint IS NOT NULL AND NOT {q}footprint ~ {q}geom)"
    )


class Premises(Base):
    __tablename__ = "premises"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    footprint: Mapped[Any | None] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True))
    protection_distance_m: Mapped[float | None] = mapped_column(Float)
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    district_adcode: Mapped[str | None] = mapped_column(String(6), index=True)
    source: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()
    permits: Mapped[list[Permit]] = relationship(back_populates="premises", cascade="all, delete-orphan")
    __table_args__ = (
        _geog_index("premises"),
        Index("ix_premises_categories", "categories", postgresql_using="gin"),
        Index("ix_premises_paired_apart", "id", postgresql_where=text(paired_apart())),
    )


class Permit(Base):
    __tablename__ = "permits"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    permit_id: Mapped[str] = mapped_column(Text, unique=True)
    premises_id: Mapped[int] = mapped_column(ForeignKey("premises.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(32), index=True)
    issued: Mapped[dt.date | None] = mapped_column(Date)
    expires: Mapped[dt.date | None] = mapped_column(Date)
    applied: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    updated_at: Mapped[dt.datetime] = _now()
    premises: Mapped[Premises] = relationship(back_populates="permits")


class ZoneAsset(Base):
    """Police posts, drop-off lanes, water bodies and waterways near schools."""

    __tablename__ = "zone_assets"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True))
    source: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))


class Camera(Base):
    __tablename__ = "cameras"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    direction_deg: Mapped[float] = mapped_column(Float)
    fov_deg: Mapped[float] = mapped_column(Float)
    range_m: Mapped[float] = mapped_column(Float)
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))


class StreetEdge(Base):
    """The walkable street network: undirected edges between node ids, geodesic lengths."""

    __tablename__ = "street_edges"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source_ref: Mapped[str] = mapped_column(Text)
    u: Mapped[int] = mapped_column(BigInteger, index=True)
    v: Mapped[int] = mapped_column(BigInteger, index=True)
    length_m: Mapped[float] = mapped_column(Float)
    highway: Mapped[str | None] = mapped_column(String(32))
    name: Mapped[str | None] = mapped_column(Text)
    geom: Mapped[Any] = mapped_column(Geometry("LINESTRING", srid=4326, spatial_index=True))
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))
    __table_args__ = (
        UniqueConstraint("source_ref", "u", "v", name="uq_street_edges_ref_u_v"),
        _geog_index("street_edges"),
    )


class Decision(Base):
    """Every pre-check answer, with its inputs, the pack version and the data batches used."""

    __tablename__ = "decisions"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    created_at: Mapped[dt.datetime] = _now()
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    category: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))
    pack_version: Mapped[str] = mapped_column(String(32))
    batch_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    district_adcode: Mapped[str | None] = mapped_column(String(6))
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=True))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    result: Mapped[dict[str, Any]] = mapped_column(JSONB)


class Job(Base):
    """A background job's public state (the queue itself is procrastinate's)."""

    __tablename__ = "jobs"
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), server_default="queued")
    done: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    total: Mapped[int | None] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    created_at: Mapped[dt.datetime] = _now()
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


# --- scans and findings ---


class Scan(Base):
    """One city-wide scan: when, over which district, with which rule-pack version, and its counts."""

    __tablename__ = "scans"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    started_at: Mapped[dt.datetime] = _now()
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), server_default="running")
    pack_version: Mapped[str] = mapped_column(String(32))
    scan_date: Mapped[dt.date] = mapped_column(Date)
    district: Mapped[str | None] = mapped_column(String(6))
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    token_id: Mapped[int | None] = mapped_column(ForeignKey("tokens.id"))
    actor: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))


def _scan_partition(parent: str, scan_id: int) -> tuple[str, str, str]:
    n = int(scan_id)
    table = f"{parent}_s{n}"
    create = f"CREATE TABLE {table} (LIKE {parent} INCLUDING DEFAULTS, CHECK (scan_id = {n}))"
    return table, create, f"ALTER TABLE {parent} ATTACH PARTITION {table} FOR VALUES IN ({n})"


def findings_partition(scan_id: int) -> tuple[str, str, str]:
    """Scan ``scan_id``'s partition of ``findings``: its name, the statement creating it (apart, empty) and the
    one attaching it.

    Attaching locks ``findings`` only against other schema changes: readers and writers of other scans'
    findings go on.
    """
    return _scan_partition("findings", scan_id)


def warnings_partition(scan_id: int) -> tuple[str, str, str]:
    """Scan ``scan_id``'s partition of ``school_warnings``, as :func:`findings_partition`."""
    return _scan_partition("school_warnings", scan_id)


@event.listens_for(Scan, "after_insert")
def _findings_partition(mapper: Any, connection: Connection, target: Scan) -> None:
    """Every scan row gets its findings and warnings partitions, unless the scan makes its own
    (``partition_later``)."""
    if not getattr(target, "partition_later", False):
        for _, create, attach in (findings_partition(target.id), warnings_partition(target.id)):
            connection.execute(text(create))
            connection.execute(text(attach))


class Finding(Base):
    """One permit (or observed category) × rule × campus found in a zone by a scan.

    Partitioned by scan (migration 0010): each scan row gets a partition (``findings_s<id>``). A full scan
    writes its findings into that table before attaching it, and indexes it in bulk (``storage.scan``).
    """

    __tablename__ = "findings"
    id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=True, server_default=text("nextval('findings_id_seq')")
    )
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    premises_id: Mapped[int] = mapped_column(BigInteger)
    permit_id: Mapped[int | None] = mapped_column(BigInteger)
    permit_no: Mapped[str | None] = mapped_column(Text)
    premises_name: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    school_id: Mapped[int] = mapped_column(BigInteger)
    school_name: Mapped[str] = mapped_column(Text)
    campus_id: Mapped[int] = mapped_column(BigInteger)
    distance_m: Mapped[float] = mapped_column(Float)
    limit_m: Mapped[float] = mapped_column(Float)
    u_m: Mapped[float] = mapped_column(Float)
    margin_m: Mapped[float] = mapped_column(Float)
    method: Mapped[str] = mapped_column(String(16))
    district_adcode: Mapped[str | None] = mapped_column(String(6))
    lead_department: Mapped[str] = mapped_column(String(64))
    cooperating_departments: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    flags: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    from_geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    to_geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=False))
    created_at: Mapped[dt.datetime] = _now()
    __table_args__ = (
        # no scan_id prefix: a partition holds one scan (migration 0017)
        Index("ix_findings_school", "school_id"),
        Index("ix_findings_key", "premises_id", "rule_id", "campus_id"),
        {"postgresql_partition_by": "LIST (scan_id)"},
    )


class SchoolWarning(Base):
    """A school told of a new finding in its zone (Guilin 五(四): 第一时间通报学校).

    Partitioned by scan (migration 0015), as findings are: a full scan writes its warnings into a table of
    their own and attaches it (``storage.scan.finish_scan``), so that their scan is checked once for all of them.
    """

    __tablename__ = "school_warnings"
    id: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=True, server_default=text("nextval('school_warnings_id_seq')")
    )
    school_id: Mapped[int] = mapped_column(BigInteger, index=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"), primary_key=True)
    finding_id: Mapped[int | None] = mapped_column(BigInteger)
    finding_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = ({"postgresql_partition_by": "LIST (scan_id)"},)


# --- operations ---


class AuditEntry(Base):
    """Who did what, when and from where: every write and every check (written before the answer leaves)."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[dt.datetime] = _now()
    token_id: Mapped[int | None] = mapped_column(Integer)
    token_name: Mapped[str | None] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    route: Mapped[str | None] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    object_ids: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    client: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[float | None] = mapped_column(Float)
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_token_at", "token_id", "at"),
        Index("ix_audit_log_object_ids", "object_ids", postgresql_using="gin"),
    )


class RateWindow(Base):
    """Requests counted per caller and fixed one-minute window."""

    __tablename__ = "rate_windows"
    key: Mapped[str] = mapped_column(String(80), primary_key=True)
    window_start: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class IdempotencyRecord(Base):
    """The first answer to a request sent with an ``Idempotency-Key``, per token."""

    __tablename__ = "idempotency_keys"
    token_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), server_default="pending")
    response_status: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[dt.datetime] = _now()
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (Index("ix_idempotency_keys_created_at", "created_at"),)


# --- ledger ---


class Case(Base):
    """A ledger case (台账条目): a hazard running the closed loop, with the 五落实 fields."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    rule_id: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    finding_status: Mapped[str | None] = mapped_column(String(16))
    premises_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    school_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    campus_id: Mapped[int | None] = mapped_column(BigInteger)
    district_adcode: Mapped[str | None] = mapped_column(String(6), index=True)
    geom: Mapped[Any | None] = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    lead_department: Mapped[str] = mapped_column(String(64), index=True)
    cooperating_departments: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    responsible_department: Mapped[str | None] = mapped_column(String(64))
    responsible_person: Mapped[str | None] = mapped_column(Text)
    measures: Mapped[str | None] = mapped_column(Text)
    funds_yuan: Mapped[float | None] = mapped_column(Float)
    plan: Mapped[str | None] = mapped_column(Text)
    deadline: Mapped[dt.date | None] = mapped_column(Date)
    deadline_source: Mapped[str | None] = mapped_column(String(16))
    overdue: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    overdue_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    remediation_by: Mapped[str | None] = mapped_column(Text)
    dismissed_reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    last_scan_id: Mapped[int | None] = mapped_column(BigInteger)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    # --- the overdue ladder --- (0008: 0 not escalated, 1 the deadline passed, 2… the next authorities)
    escalation_level: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    escalated_to: Mapped[str | None] = mapped_column(Text)
    escalation_level_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index(
            "uq_cases_open_subject_rule",
            "subject",
            "rule_id",
            unique=True,
            postgresql_where=text("state NOT IN ('closed', 'dismissed')"),
        ),
        Index("ix_cases_coop", "cooperating_departments", postgresql_using="gin"),
        Index("ix_cases_state_deadline", "state", "deadline"),
        Index("ix_cases_escalation_level", "escalation_level", postgresql_where=text("escalation_level > 0")),
    )


class CaseEvent(Base):
    """Every change to a case: who, when, why (transitions, findings added, escalations, 五落实 edits)."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(Text)
    role: Mapped[str | None] = mapped_column(String(32))
    token_id: Mapped[int | None] = mapped_column(BigInteger)
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))


class CaseFinding(Base):
    """The scan findings behind a case (a finding that already has an open case adds to it)."""

    __tablename__ = "case_findings"
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True)
    finding_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    scan_id: Mapped[int] = mapped_column(BigInteger, index=True)


class InspectionPlan(Base):
    """A school zone's inspection rhythm (日周月 排查): daily, weekly or monthly, with its items."""

    __tablename__ = "inspection_plans"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    school_id: Mapped[int] = mapped_column(BigInteger, index=True)
    rhythm: Mapped[str] = mapped_column(String(8))
    items: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    department: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()


class InspectionRecord(Base):
    """One inspection done under a plan: which period, which items, by whom."""

    __tablename__ = "inspection_records"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("inspection_plans.id", ondelete="CASCADE"), index=True)
    period_start: Mapped[dt.date] = mapped_column(Date)
    done_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    done_by: Mapped[str] = mapped_column(Text)
    items_done: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    note: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    # --- inspections --- (0006: one record per plan and period)
    __table_args__ = (Index("uq_inspection_records_plan_period", "plan_id", "period_start", unique=True),)


class Campaign(Base):
    """A campaign (专项检查), e.g. the spring and autumn checks of food operators around schools."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(32))
    district: Mapped[str | None] = mapped_column(String(6))
    starts: Mapped[dt.date] = mapped_column(Date)
    ends: Mapped[dt.date] = mapped_column(Date)
    lead_department: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = _now()
    # --- inspections --- (0006: the campaign's scope)
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    radius_m: Mapped[float | None] = mapped_column(Float)


class CampaignCheck(Base):
    """One premises checked in a campaign."""

    __tablename__ = "campaign_checks"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    premises_id: Mapped[int] = mapped_column(BigInteger)
    checked_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    checked_by: Mapped[str] = mapped_column(Text)
    result: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("campaign_id", "premises_id", name="uq_campaign_checks_premises"),)


class PremisesGridCell(Base):
    """Premises counted per grid cell and district, drawn by the premises tiles below zoom 14.

    A cell at tile zoom ``zoom`` is the tile ``(zoom + 5, cx, cy)``; ``district_adcode`` is ``''`` for
    premises outside every district; ``categories`` maps a category to its count; ``x``/``y`` are the
    mean Web-Mercator position of the cell's premises. Kept set-based by ``storage.premises_grid``.
    """

    __tablename__ = "premises_grid"
    zoom: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cx: Mapped[int] = mapped_column(Integer, primary_key=True)
    cy: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_adcode: Mapped[str] = mapped_column(String(6), primary_key=True)
    premises: Mapped[int] = mapped_column(Integer)
    unlicensed: Mapped[int] = mapped_column(Integer)
    categories: Mapped[dict[str, Any]] = mapped_column(JSONB)
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    # a tile's 32 × 32 cells: (zoom, cx >> 5, cy >> 5) = (z, x, y)
    __table_args__ = (Index("ix_premises_grid_tile", "zoom", text("(cx >> 5)"), text("(cy >> 5)")),)
