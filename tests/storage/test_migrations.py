"""Migrations run up and down on a real PostGIS, and the models match them."""

from __future__ import annotations

import os

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from storage.database import downgrade, drop_database, ensure_database, make_engine, migrate, migration_state
from storage.models import Base

EXPECTED_TABLES = {
    "districts",
    "schools",
    "campuses",
    "gates",
    "premises",
    "permits",
    "zone_assets",
    "cameras",
    "street_edges",
    "decisions",
    "import_batches",
    "departments",
    "users",
    "tokens",
    "jobs",
    "procrastinate_jobs",
}


@pytest.fixture
def scratch_url(template_url: str):  # noqa: ANN201
    from sqlalchemy.engine import make_url

    url = (
        make_url(template_url).set(database=f"safezone_migrations_{os.getpid()}").render_as_string(hide_password=False)
    )
    drop_database(url)
    ensure_database(url)
    yield url
    drop_database(url)


def _tables(url: str) -> set[str]:
    eng = make_engine(url, pool_size=1)
    try:
        return set(inspect(eng).get_table_names()) - {"spatial_ref_sys"}
    finally:
        eng.dispose()


def test_upgrade_downgrade_upgrade(scratch_url: str) -> None:
    migrate(scratch_url)
    assert _tables(scratch_url) >= EXPECTED_TABLES
    downgrade(scratch_url, "base")
    assert _tables(scratch_url) <= {"alembic_version"}
    eng = make_engine(scratch_url, pool_size=1)
    with eng.connect() as conn:
        leftovers = conn.execute(text("SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%'")).scalar()
    eng.dispose()
    assert leftovers == 0
    migrate(scratch_url)
    eng = make_engine(scratch_url, pool_size=1)
    assert migration_state(eng)["at_head"] is True
    eng.dispose()


def test_models_match_migrations(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        # a scan's findings partition is the model's table (``findings``), not a table of its own
        partitions = set(conn.execute(text("SELECT relname FROM pg_class WHERE relispartition")).scalars())

    def include(obj, name, type_, reflected, compare_to):  # noqa: ANN001, ANN202
        if type_ == "table" and (name == "spatial_ref_sys" or (name or "").startswith("procrastinate")):
            return False
        if name in partitions or (type_ == "index" and obj.table.name in partitions):
            return False
        return not (type_ == "index" and (name or "").startswith(("idx_", "procrastinate")))

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"include_object": include, "compare_type": False})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []


def test_spatial_indexes_exist(engine) -> None:  # noqa: ANN001
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT tablename, indexdef FROM pg_indexes WHERE indexdef ILIKE '%gist%'")).all()
    by_table: dict[str, list[str]] = {}
    for table, indexdef in rows:
        by_table.setdefault(table, []).append(indexdef)
    for table in ("campuses", "gates", "premises", "districts", "street_edges", "cameras", "zone_assets"):
        assert table in by_table, f"no GiST index on {table}"
    for table in ("campuses", "gates", "premises"):
        assert any("geography" in d for d in by_table[table]), f"no geography index on {table}"


def test_school_warnings_partitions_keep_the_warnings_stored(scratch_url: str) -> None:
    migrate(scratch_url, "0014_findings_no_district_index")
    eng = make_engine(scratch_url, pool_size=1)
    try:
        with eng.begin() as conn:
            scan = conn.execute(
                text("INSERT INTO scans (pack_version, scan_date) VALUES ('v', '2026-11-23') RETURNING id")
            ).scalar_one()
            conn.execute(
                text("INSERT INTO school_warnings (school_id, scan_id, finding_key) VALUES (7, :s, '1:-:r:2')"),
                {"s": scan},
            )
        migrate(scratch_url)
        with eng.begin() as conn:
            parts = conn.execute(
                text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = 'school_warnings'::regclass")
            ).scalars()
            assert list(parts) == ["school_warnings_legacy"]
            assert conn.execute(text("SELECT school_id, finding_key FROM school_warnings")).all() == [(7, "1:-:r:2")]
            # a later warning of that scan lands in the legacy partition; its ids go on from the same sequence
            conn.execute(
                text("INSERT INTO school_warnings (school_id, scan_id, finding_key) VALUES (8, :s, '3:-:r:4')"),
                {"s": scan},
            )
            ids = conn.execute(text("SELECT id FROM school_warnings_legacy ORDER BY id")).scalars().all()
            assert len(ids) == 2 and ids[0] < ids[1]
        downgrade(scratch_url, "0014_findings_no_district_index")
        with eng.begin() as conn:
            rows = conn.execute(text("SELECT school_id FROM school_warnings ORDER BY id")).scalars().all()
            assert rows == [7, 8]
            assert conn.execute(text("SELECT relkind FROM pg_class WHERE relname = 'school_warnings'")).scalar() == "r"
    finally:
        eng.dispose()
