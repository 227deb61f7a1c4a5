"""district outlines cut into small pieces (``ST_Subdivide``, at most 64 vertices each), kept by a trigger on
districts: finding the district of a site (every pre-check does) tests one small piece instead of whole
boundaries of hundreds or thousands of vertices, stored compressed; and a decision's stored answer compressed
with lz4 (where the server has it) instead of pglz, which costs the pre-check's insert a tenth of its CPU

Stop every process of the previous version before upgrading: its importers built a temporary table of the
same name and dropped ``district_parts`` with it.

Revision ID: 0011_district_parts
Revises: 0010_findings_partitions
"""

from __future__ import annotations

from alembic import op

revision = "0011_district_parts"
down_revision = "0010_findings_partitions"
branch_labels = None
depends_on = None

#: the most vertices of a piece
_VERTICES = 64
#: an import sets every row again: only a changed outline (or code) is cut again. A function, not the
#: geometry ``=`` operator: pg_restore reads the trigger back with an empty search path, where no operator
#: can be named with its schema in ``IS DISTINCT FROM``
_ON_UPDATE = (
    "AFTER UPDATE OF adcode, geom ON districts FOR EACH ROW WHEN (OLD.adcode IS DISTINCT FROM NEW.adcode "
    "OR (OLD.geom IS NULL) <> (NEW.geom IS NULL) OR NOT ST_OrderingEquals(OLD.geom, NEW.geom))"
)


def upgrade() -> None:
    op.execute(
        "CREATE TABLE district_parts (id bigserial PRIMARY KEY, adcode varchar(6) NOT NULL, "
        "geom geometry(GEOMETRY, 4326) NOT NULL)"
    )
    op.execute("CREATE INDEX ix_district_parts_adcode ON district_parts (adcode)")
    op.execute("CREATE INDEX idx_district_parts_geom ON district_parts USING gist (geom)")
    # the functions keep the search path of this migration: a data-only pg_restore runs with an empty one
    op.execute(
        f"""
        CREATE FUNCTION district_parts_sync() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
        BEGIN
            IF TG_OP IN ('UPDATE', 'DELETE') THEN
                DELETE FROM district_parts WHERE adcode = OLD.adcode;
            END IF;
            IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.geom IS NOT NULL THEN
                INSERT INTO district_parts (adcode, geom) SELECT NEW.adcode, ST_Subdivide(NEW.geom, {_VERTICES});
            END IF;
            RETURN NULL;
        END $$
        """
    )
    op.execute(
        "CREATE FUNCTION district_parts_clear() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$ "
        "BEGIN TRUNCATE district_parts; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER districts_parts AFTER INSERT OR DELETE ON districts "
        "FOR EACH ROW EXECUTE FUNCTION district_parts_sync()"
    )
    op.execute(f"CREATE TRIGGER districts_parts_update {_ON_UPDATE} EXECUTE FUNCTION district_parts_sync()")
    op.execute(
        "CREATE TRIGGER districts_parts_truncate AFTER TRUNCATE ON districts "
        "FOR EACH STATEMENT EXECUTE FUNCTION district_parts_clear()"
    )
    op.execute(
        f"INSERT INTO district_parts (adcode, geom) SELECT adcode, ST_Subdivide(geom, {_VERTICES}) "
        "FROM districts WHERE geom IS NOT NULL"
    )
    # a server built without lz4 keeps pglz
    op.execute(
        "DO $$ BEGIN ALTER TABLE decisions ALTER COLUMN result SET COMPRESSION lz4; "
        "EXCEPTION WHEN feature_not_supported THEN NULL; END $$"
    )


def downgrade() -> None:
    op.execute("ALTER TABLE decisions ALTER COLUMN result SET COMPRESSION default")
    for trigger in ("districts_parts", "districts_parts_update", "districts_parts_truncate"):
        op.execute(f"DROP TRIGGER {trigger} ON districts")
    op.execute("DROP FUNCTION district_parts_sync()")
    op.execute("DROP FUNCTION district_parts_clear()")
    op.execute("DROP TABLE district_parts")
