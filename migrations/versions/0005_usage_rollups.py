"""usage roll-ups: per-sample counter deltas, hourly and monthly roll-ups of old samples

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DELTAS = (("cpu_seconds", "cpu_delta"), ("net_rx_bytes", "rx_delta"), ("net_tx_bytes", "tx_delta"))


def upgrade() -> None:
    with op.batch_alter_table("usage_sample") as batch:
        batch.add_column(sa.Column("cpu_delta", sa.Float(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rx_delta", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("tx_delta", sa.BigInteger(), nullable=False, server_default="0"))
    _backfill_deltas()
    op.create_table(
        "usage_rollup",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("server_id", sa.Integer(), sa.ForeignKey("server.id"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("start", sa.DateTime(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("net_rx_bytes", sa.BigInteger(), nullable=False),
        sa.Column("net_tx_bytes", sa.BigInteger(), nullable=False),
        sa.Column("memory_bytes_max", sa.BigInteger(), nullable=False),
        sa.Column("disk_bytes_last", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("server_id", "period", "start", name="uq_usage_rollup_bucket"),
    )
    op.create_index(
        "ix_usage_rollup_tenant_period_start", "usage_rollup", ["tenant_id", "period", "start"]
    )


def _backfill_deltas() -> None:
    """Each existing sample's growth since the previous sample of its server."""
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT id, server_id, cpu_seconds, net_rx_bytes, net_tx_bytes FROM usage_sample "
            "ORDER BY server_id, at, id"
        )
    ).all()
    previous: dict[int, tuple[float, int, int]] = {}
    for row_id, server_id, cpu, rx, tx in rows:
        before = previous.get(server_id)
        previous[server_id] = (cpu, rx, tx)
        if before is None:
            continue
        deltas = [
            now - then if now >= then else now
            for now, then in zip((cpu, rx, tx), before, strict=True)
        ]
        conn.execute(
            sa.text("UPDATE usage_sample SET cpu_delta=:c, rx_delta=:r, tx_delta=:t WHERE id=:i"),
            {"c": deltas[0], "r": deltas[1], "t": deltas[2], "i": row_id},
        )


def downgrade() -> None:
    op.drop_index("ix_usage_rollup_tenant_period_start", table_name="usage_rollup")
    op.drop_table("usage_rollup")
    with op.batch_alter_table("usage_sample") as batch:
        for _, column in DELTAS:
            batch.drop_column(column)
