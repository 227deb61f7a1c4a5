"""findings' two secondary indexes lose their leading ``scan_id``: each partition holds the findings of one scan
(migration 0010), so a query naming its scan reads one partition, where every row has that scan id

A school's findings are read by ``school_id`` (the school's lists, warnings, edits of its campuses), a finding's
key by ``(premises_id, rule_id, campus_id)`` (the diff of two scans, a rescan's new findings). Without the
constant prefix the indexes are smaller (the school index's duplicates are deduplicated) and a full scan of the
1M-premises demo city builds them faster when it attaches its partition (0.17-0.32 → 0.13 s and 0.24-0.27 →
0.21-0.25 s for its 370,519 findings).

Revision ID: 0017_findings_no_scan_prefix
Revises: 0016_premises_paired_apart
"""

from __future__ import annotations

from alembic import op

revision = "0017_findings_no_scan_prefix"
down_revision = "0016_premises_paired_apart"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_findings_scan_school")
    op.execute("DROP INDEX IF EXISTS ix_findings_scan_key")
    op.execute("CREATE INDEX IF NOT EXISTS ix_findings_school ON findings (school_id)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_findings_key ON findings (premises_id, rule_id, campus_id)")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_findings_school")
    op.execute("DROP INDEX IF EXISTS ix_findings_key")
    op.execute("CREATE INDEX IF NOT EXISTS ix_findings_scan_school ON findings (scan_id, school_id)")
    op.execute("CREATE INDEX IF NOT EXISTS ix_findings_scan_key ON findings (scan_id, premises_id, rule_id, campus_id)")
