"""vps access: SSH keys, SSH ports, protection, snapshots, usage samples, action params

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ssh_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("public_key", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_ssh_key_tenant_name"),
        sa.UniqueConstraint("tenant_id", "fingerprint", name="uq_ssh_key_tenant_fingerprint"),
    )
    op.create_index("ix_ssh_key_tenant_id", "ssh_key", ["tenant_id"])
    with op.batch_alter_table("server") as batch:
        batch.add_column(sa.Column("ssh_port", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("ssh_keys", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(
            sa.Column("delete_protection", sa.Boolean(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("rebuild_protection", sa.Boolean(), nullable=False, server_default="0")
        )
    op.create_table(
        "snapshot",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("server_id", sa.Integer(), sa.ForeignKey("server.id"), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("server_id", "name", name="uq_snapshot_server_name"),
    )
    op.create_index("ix_snapshot_tenant_id", "snapshot", ["tenant_id"])
    op.create_index("ix_snapshot_server_id", "snapshot", ["server_id"])
    op.create_table(
        "usage_sample",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("server_id", sa.Integer(), sa.ForeignKey("server.id"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=False),
        sa.Column("memory_bytes", sa.Integer(), nullable=False),
        sa.Column("disk_bytes", sa.Integer(), nullable=False),
        sa.Column("net_rx_bytes", sa.Integer(), nullable=False),
        sa.Column("net_tx_bytes", sa.Integer(), nullable=False),
    )
    op.create_index("ix_usage_sample_server_at", "usage_sample", ["server_id", "at"])
    op.create_index("ix_usage_sample_tenant_id", "usage_sample", ["tenant_id"])
    op.create_index("ix_usage_sample_at", "usage_sample", ["at"])
    with op.batch_alter_table("quota") as batch:
        batch.add_column(
            sa.Column("max_snapshots", sa.Integer(), nullable=False, server_default="10")
        )
    with op.batch_alter_table("action") as batch:
        batch.add_column(sa.Column("params", sa.JSON(), nullable=False, server_default="{}"))
    # Two live servers never share a forwarded port (a deleted server frees its port).
    op.create_index(
        "ix_server_ssh_port_live",
        "server",
        ["ssh_port"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL AND ssh_port IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_server_ssh_port_live", table_name="server")
    with op.batch_alter_table("action") as batch:
        batch.drop_column("params")
    with op.batch_alter_table("quota") as batch:
        batch.drop_column("max_snapshots")
    op.drop_index("ix_usage_sample_at", table_name="usage_sample")
    op.drop_index("ix_usage_sample_tenant_id", table_name="usage_sample")
    op.drop_index("ix_usage_sample_server_at", table_name="usage_sample")
    op.drop_table("usage_sample")
    op.drop_index("ix_snapshot_server_id", table_name="snapshot")
    op.drop_index("ix_snapshot_tenant_id", table_name="snapshot")
    op.drop_table("snapshot")
    with op.batch_alter_table("server") as batch:
        batch.drop_column("rebuild_protection")
        batch.drop_column("delete_protection")
        batch.drop_column("ssh_keys")
        batch.drop_column("ssh_port")
    op.drop_index("ix_ssh_key_tenant_id", table_name="ssh_key")
    op.drop_table("ssh_key")
