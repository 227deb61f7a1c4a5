"""findings lose the (scan_id, district_adcode) index: the district filters of the lists, maps and exports are
prefix matches for a city or province (``LIKE '4503%'``), which a btree in the database's C.UTF-8 collation
cannot serve, so only a county's equality used it

In one scan's partition of the 1M-premises demo city a county holds 11-13 % of the findings: its list reads the
primary key in id order and filters; a district with no finding reads the partition once (0.1 s there, what a
city's prefix match always did). Building the index cost a full scan 0.25 s of its store step.

Revision ID: 0014_findings_no_district_index
Revises: 0013_findings_fewer_indexes
"""

from __future__ import annotations

from alembic import op

revision = "0014_findings_no_district_index"
down_revision = "0013_findings_fewer_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_findings_scan_district")


def downgrade() -> None:
    op.execute("CREATE INDEX IF NOT EXISTS ix_findings_scan_district ON findings (scan_id, district_adcode)")
