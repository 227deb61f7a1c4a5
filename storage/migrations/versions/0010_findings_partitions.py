"""findings partitioned by scan: each scan's findings are written into a table of their own, indexed in bulk
and then attached (storage/scan.py), instead of maintaining nine indexes row by row

The findings already stored become one partition (``findings_legacy``) holding every scan that exists at
this revision; a scan made later has a partition of its own (``storage.models``: made with the scan row, or
by the scan itself). There is no default partition: attaching a partition would lock it against every reader
of findings until the scan commits. The primary key becomes (id, scan_id), as a partitioned table requires;
ids stay unique (one sequence) and keep their values.

Revision ID: 0010_findings_partitions
Revises: 0009_premises_grid
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import text

revision = "0010_findings_partitions"
down_revision = "0009_premises_grid"
branch_labels = None
depends_on = None

_INDEXES = (
    ("ix_findings_scan_status", "scan_id, status"),
    ("ix_findings_scan_category", "scan_id, category"),
    ("ix_findings_scan_rule", "scan_id, rule_id"),
    ("ix_findings_scan_district", "scan_id, district_adcode"),
    ("ix_findings_scan_school", "scan_id, school_id"),
    ("ix_findings_scan_lead", "scan_id, lead_department"),
    ("ix_findings_scan_key", "scan_id, premises_id, rule_id, campus_id"),
)


def upgrade() -> None:
    op.execute("ALTER TABLE findings RENAME TO findings_legacy")
    op.execute("ALTER TABLE findings_legacy RENAME CONSTRAINT findings_pkey TO findings_legacy_pkey")
    for name, _ in (*_INDEXES, ("ix_findings_scan_id_id", ""), ("ix_findings_coop", "")):
        op.execute(f"ALTER INDEX {name} RENAME TO {name.replace('ix_findings', 'ix_findings_legacy')}")
    op.execute("CREATE TABLE findings (LIKE findings_legacy INCLUDING DEFAULTS) PARTITION BY LIST (scan_id)")
    op.execute("ALTER SEQUENCE findings_id_seq OWNED BY findings.id")
    op.execute("ALTER TABLE findings ADD PRIMARY KEY (id, scan_id)")
    op.execute("ALTER TABLE findings ADD FOREIGN KEY (scan_id) REFERENCES scans (id) ON DELETE CASCADE")
    for name, cols in _INDEXES:
        op.execute(f"CREATE INDEX {name} ON findings ({cols})")
    op.execute("CREATE INDEX ix_findings_coop ON findings USING gin (cooperating_departments)")
    scans = op.get_bind().execute(text("SELECT id FROM scans ORDER BY id")).scalars().all()
    if scans:
        # the primary key (id, scan_id), built as the table is attached, replaces both
        op.execute("ALTER TABLE findings_legacy DROP CONSTRAINT findings_legacy_pkey")
        op.execute("DROP INDEX ix_findings_legacy_scan_id_id")
        ids = ", ".join(str(int(i)) for i in scans)
        op.execute(f"ALTER TABLE findings ATTACH PARTITION findings_legacy FOR VALUES IN ({ids})")
    else:
        op.execute("DROP TABLE findings_legacy")


def downgrade() -> None:
    op.execute("ALTER TABLE findings RENAME TO findings_partitioned")
    op.execute("ALTER TABLE findings_partitioned RENAME CONSTRAINT findings_pkey TO findings_partitioned_pkey")
    for name, _ in (*_INDEXES, ("ix_findings_coop", "")):
        op.execute(f"ALTER INDEX {name} RENAME TO {name.replace('ix_findings', 'ix_findings_partitioned')}")
    op.execute("CREATE TABLE findings (LIKE findings_partitioned INCLUDING DEFAULTS)")
    op.execute("INSERT INTO findings SELECT * FROM findings_partitioned")
    op.execute("ALTER SEQUENCE findings_id_seq OWNED BY findings.id")
    op.execute("DROP TABLE findings_partitioned CASCADE")
    op.execute("ALTER TABLE findings ADD PRIMARY KEY (id)")
    op.execute("ALTER TABLE findings ADD FOREIGN KEY (scan_id) REFERENCES scans (id) ON DELETE CASCADE")
    for name, cols in (*_INDEXES, ("ix_findings_scan_id_id", "scan_id, id")):
        op.execute(f"CREATE INDEX {name} ON findings ({cols})")
    op.execute("CREATE INDEX ix_findings_coop ON findings USING gin (cooperating_departments)")
