"""school warnings partitioned by scan, as findings are: a full scan writes its warnings into a table of their
own and attaches it, so that their scan is checked once for all of them (one query) instead of once per row

A first scan of the 1M-premises demo city warns of 370,519 findings: the foreign key's check per row cost 1.4 s
of the 2.6 s their insert took, and the two indexes maintained row by row most of the rest.

The warnings already stored become one partition (``school_warnings_legacy``) holding every scan that exists at
this revision; a scan made later has a partition of its own (``storage.models``: made with the scan row, or by
the scan itself). The primary key becomes (id, scan_id), as a partitioned table requires; ids stay unique (one
sequence) and keep their values.

Revision ID: 0015_school_warnings_partitions
Revises: 0014_findings_no_district_index
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0015_school_warnings_partitions"
down_revision = "0014_findings_no_district_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE school_warnings RENAME TO school_warnings_legacy")
    op.execute(
        "ALTER TABLE school_warnings_legacy RENAME CONSTRAINT school_warnings_pkey TO school_warnings_legacy_pkey"
    )
    op.execute("ALTER INDEX ix_school_warnings_school_id RENAME TO ix_school_warnings_legacy_school_id")
    op.execute(
        "CREATE TABLE school_warnings (LIKE school_warnings_legacy INCLUDING DEFAULTS) PARTITION BY LIST (scan_id)"
    )
    op.execute("ALTER SEQUENCE school_warnings_id_seq OWNED BY school_warnings.id")
    op.execute("ALTER TABLE school_warnings ADD PRIMARY KEY (id, scan_id)")
    op.execute("ALTER TABLE school_warnings ADD FOREIGN KEY (scan_id) REFERENCES scans (id) ON DELETE CASCADE")
    op.execute("CREATE INDEX ix_school_warnings_school_id ON school_warnings (school_id)")
    scans = op.get_bind().execute(text("SELECT id FROM scans ORDER BY id")).scalars().all()
    if scans:
        # the primary key (id, scan_id) and the school index, built as the table is attached, replace its own
        op.execute("ALTER TABLE school_warnings_legacy DROP CONSTRAINT school_warnings_legacy_pkey")
        op.execute("DROP INDEX ix_school_warnings_legacy_school_id")
        ids = ", ".join(str(int(i)) for i in scans)
        op.execute(f"ALTER TABLE school_warnings ATTACH PARTITION school_warnings_legacy FOR VALUES IN ({ids})")
    else:
        op.execute("DROP TABLE school_warnings_legacy")


def downgrade() -> None:
    op.execute("ALTER TABLE school_warnings RENAME TO school_warnings_partitioned")
    op.execute(
        "ALTER TABLE school_warnings_partitioned RENAME CONSTRAINT school_warnings_pkey "
        "TO school_warnings_partitioned_pkey"
    )
    op.execute("ALTER INDEX ix_school_warnings_school_id RENAME TO ix_school_warnings_partitioned_school_id")
    op.execute("CREATE TABLE school_warnings (LIKE school_warnings_partitioned INCLUDING DEFAULTS)")
    op.execute("INSERT INTO school_warnings SELECT * FROM school_warnings_partitioned")
    op.execute("ALTER SEQUENCE school_warnings_id_seq OWNED BY school_warnings.id")
    op.execute("DROP TABLE school_warnings_partitioned CASCADE")
    op.execute("ALTER TABLE school_warnings ADD PRIMARY KEY (id)")
    op.execute("ALTER TABLE school_warnings ADD FOREIGN KEY (scan_id) REFERENCES scans (id) ON DELETE CASCADE")
    op.execute("CREATE INDEX ix_school_warnings_school_id ON school_warnings (school_id)")
