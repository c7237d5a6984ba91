"""plan disk bandwidth: MB/s read and write on top of IOPS

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# Existing plans get a tenth of their IOPS as MB/s (nano: 500/250 iops -> 50/25 MB/s): the
# rule the seeded plans follow, so a plan's two disk limits stay in proportion.
RULE = "MAX(1, {iops} / 10)"
# Servers show every limit of their plan (services/servers/limits.py says the same).
HOLDS = (
    "blkio throttle (cgroup v1): reads, direct and fsync'd writes; buffered writeback is not "
    "throttled on cgroup v1"
)


def upgrade() -> None:
    # NOT NULL with a default is a plain ALTER TABLE ADD COLUMN in SQLite: recreating the
    # table instead would drop it under the servers' foreign keys.
    with op.batch_alter_table("plan") as batch:
        for column in ("disk_read_mb_s", "disk_write_mb_s"):
            batch.add_column(sa.Column(column, sa.Integer(), nullable=False, server_default="1"))
    op.execute(
        "UPDATE plan SET "
        f"disk_read_mb_s = {RULE.format(iops='disk_read_iops')}, "
        f"disk_write_mb_s = {RULE.format(iops='disk_write_iops')}"
    )
    _backfill_servers()


def _backfill_servers() -> None:
    """Servers' limits blocks get their plan's bandwidth (enforced from their next start)."""
    bind = op.get_bind()
    plans = {
        name: (read, write)
        for name, read, write in bind.execute(
            sa.text("SELECT name, disk_read_mb_s, disk_write_mb_s FROM plan")
        )
    }
    for server_id, plan, raw in list(bind.execute(sa.text("SELECT id, plan, limits FROM server"))):
        limits = json.loads(raw) if isinstance(raw, str) else (raw or {})
        if plan not in plans or "disk_read_mb_s" in limits:
            continue
        for key, value in zip(("disk_read_mb_s", "disk_write_mb_s"), plans[plan], strict=True):
            limits[key] = {"value": value, "unit": "MB/s", "enforced": True, "reason": HOLDS}
        bind.execute(
            sa.text("UPDATE server SET limits = :limits WHERE id = :id"),
            {"limits": json.dumps(limits), "id": server_id},
        )


def downgrade() -> None:
    # SQLite >= 3.35 drops a column in place (a batch recreate trips the servers' foreign keys).
    for column in ("disk_write_mb_s", "disk_read_mb_s"):
        op.execute(f"ALTER TABLE plan DROP COLUMN {column}")
