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
    String,
    Text,
    Time,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONB, list[str]: ARRAY(Text)}


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


def _geog_index(table: str, column: str = "geom") -> Index:
    return Index(f"ix_{table}_{column}_geog", text(f"({column}::geography)"), postgresql_using="gist")


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


class Premises(Base):
    __tablename__ = "premises"
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    external_id: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    address: Mapped[str | None] = mapped_column(Text)
    uscc: Mapped[str | None] = mapped_column(String(18), index=True)
    categories: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    geom: Mapped[Any] = mapped_column(Geometry("POINT", srid=4326, spatial_index=True))
    footprint: Mapped[Any | None] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False))
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
    __table_args__ = (UniqueConstraint("source_ref", "u", "v", name="uq_street_edges_ref_u_v"),)


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
