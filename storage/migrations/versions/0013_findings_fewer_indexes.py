"""findings keep the indexes their queries use: the primary key (the lists page through a scan in id order),
district, school and the finding key; the indexes on status, category, rule, lead and cooperating departments go

Within one scan's partition those columns have a few dozen values at most: the lists' plans read the primary key
in id order and filter (a rule with no finding at all still answers in ~30 ms on the 1M-premises demo city), and
the department filter (lead = d OR d = ANY(cooperating)) cannot use a GIN index. Building them cost a full scan
1.6 s of its store step.

Revision ID: 0013_findings_fewer_indexes
Revises: 0012_premises_footprint_index
"""

from __future__ import annotations

from alembic import op

revision = "0013_findings_fewer_indexes"
down_revision = "0012_premises_footprint_index"
branch_labels = None
depends_on = None

_DROPPED = (
    ("ix_findings_scan_status", "(scan_id, status)"),
    ("ix_findings_scan_category", "(scan_id, category)"),
    ("ix_findings_scan_rule", "(scan_id, rule_id)"),
    ("ix_findings_scan_lead", "(scan_id, lead_department)"),
    ("ix_findings_coop", "USING gin (cooperating_departments)"),
)


def upgrade() -> None:
    for name, _ in _DROPPED:
        op.execute(f"DROP INDEX IF EXISTS {name}")


def downgrade() -> None:
    for name, columns in _DROPPED:
        op.execute(f"CREATE INDEX IF NOT EXISTS {name} ON findings {columns}")
