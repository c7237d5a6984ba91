"""control plane: tenants, quotas, tokens, plans, servers, actions, idempotency, audit, orphans

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# name, description, vcpus, memory MiB, disk GiB, read iops, write iops, in Mbit, out Mbit,
# max processes, monthly transfer GiB
SEED_PLANS = [
    ("nano", "1 vCPU, 256 MiB, 2 GiB", 1, 256, 2, 500, 250, 50, 50, 256, 500),
    ("micro", "1 vCPU, 512 MiB, 5 GiB", 1, 512, 5, 1000, 500, 100, 100, 512, 1000),
    ("small", "2 vCPU, 1 GiB, 10 GiB", 2, 1024, 10, 2000, 1000, 200, 200, 1024, 2000),
    ("medium", "2 vCPU, 2 GiB, 20 GiB", 2, 2048, 20, 4000, 2000, 500, 500, 2048, 4000),
]


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "tenant",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("lxd_project", sa.String(), nullable=False, unique=True),
        sa.Column("status", sa.String(), nullable=False),
        _created(),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
    )
    op.create_index(
        "ix_tenant_name_live",
        "tenant",
        ["name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "quota",
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), primary_key=True),
        sa.Column("max_servers", sa.Integer(), nullable=False),
        sa.Column("max_vcpus", sa.Integer(), nullable=False),
        sa.Column("max_memory_mib", sa.Integer(), nullable=False),
        sa.Column("max_disk_gib", sa.Integer(), nullable=False),
        sa.Column("max_processes", sa.Integer(), nullable=False),
    )
    op.create_table(
        "api_token",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("prefix", sa.String(), nullable=False),
        sa.Column("token_hash", sa.String(), nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        _created(),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_api_token_tenant_id", "api_token", ["tenant_id"])
    plan = op.create_table(
        "plan",
        sa.Column("name", sa.String(length=63), primary_key=True),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("disk_gib", sa.Integer(), nullable=False),
        sa.Column("disk_read_iops", sa.Integer(), nullable=False),
        sa.Column("disk_write_iops", sa.Integer(), nullable=False),
        sa.Column("net_ingress_mbit", sa.Integer(), nullable=False),
        sa.Column("net_egress_mbit", sa.Integer(), nullable=False),
        sa.Column("max_processes", sa.Integer(), nullable=False),
        sa.Column("transfer_gib", sa.Integer(), nullable=False),
        _created(),
    )
    op.create_table(
        "server",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("plan", sa.String(length=63), sa.ForeignKey("plan.name"), nullable=False),
        sa.Column("image", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("lxd_project", sa.String(), nullable=False),
        sa.Column("lxd_name", sa.String(), nullable=False),
        sa.Column("vcpus", sa.Integer(), nullable=False),
        sa.Column("memory_mib", sa.Integer(), nullable=False),
        sa.Column("disk_gib", sa.Integer(), nullable=False),
        sa.Column("processes", sa.Integer(), nullable=False),
        sa.Column("limits", sa.JSON(), nullable=False),
        sa.Column("ipv4", sa.String(), nullable=True),
        sa.Column("status_detail", sa.String(), nullable=True),
        _created(),
        sa.Column("deleted_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_server_tenant_id", "server", ["tenant_id"])
    op.create_index("ix_server_status", "server", ["status"])
    op.create_index("ix_server_deleted_at", "server", ["deleted_at"])
    op.create_index(
        "ix_server_tenant_name_live",
        "server",
        ["tenant_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "action",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("server_id", sa.Integer(), sa.ForeignKey("server.id"), nullable=True),
        sa.Column("command", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=False),
        sa.Column("finished", sa.DateTime(), nullable=True),
        sa.Column("error_code", sa.String(), nullable=True),
        sa.Column("error_message", sa.String(), nullable=True),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("runner", sa.String(), nullable=True),
    )
    op.create_index("ix_action_tenant_id", "action", ["tenant_id"])
    op.create_index("ix_action_server_id", "action", ["server_id"])
    op.create_index("ix_action_status", "action", ["status"])
    op.create_table(
        "idempotency_key",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response", sa.JSON(), nullable=False),
        _created(),
        sa.UniqueConstraint("tenant_id", "key", name="uq_idempotency_tenant_key"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=True),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_tenant_id", "audit_log", ["tenant_id"])
    op.create_table(
        "orphan",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("lxd_project", sa.String(), nullable=False),
        sa.Column("lxd_name", sa.String(), nullable=False),
        sa.Column("server_id", sa.String(), nullable=True),
        sa.Column("first_seen", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("lxd_project", "lxd_name", name="uq_orphan_instance"),
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    keys = (  # noqa: SIM905 (a split string reads better than an 11-item list here)
        "name description vcpus memory_mib disk_gib disk_read_iops disk_write_iops "
        "net_ingress_mbit net_egress_mbit max_processes transfer_gib"
    ).split()
    op.bulk_insert(
        plan, [{**dict(zip(keys, row, strict=True)), "created_at": now} for row in SEED_PLANS]
    )


def downgrade() -> None:
    for table in (
        "orphan",
        "audit_log",
        "idempotency_key",
        "action",
        "server",
        "plan",
        "api_token",
        "quota",
        "tenant",
    ):
        op.drop_table(table)
