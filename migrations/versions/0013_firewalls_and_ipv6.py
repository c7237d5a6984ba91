"""tenant firewalls; a fixed IPv6 address per server

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Servers made before keep no IPv6 address until a rebuild gives them one.
    with op.batch_alter_table("server") as batch:
        batch.add_column(sa.Column("ipv6", sa.String(), nullable=True))
    op.create_index(
        "ix_server_ipv6_live",
        "server",
        ["ipv6"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL AND ipv6 IS NOT NULL"),
    )
    op.create_table(
        "firewall",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("apply_to", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("tenant_id", "name", name="uq_firewall_tenant_name"),
    )
    op.create_index("ix_firewall_tenant_id", "firewall", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_firewall_tenant_id", table_name="firewall")
    op.drop_table("firewall")
    op.drop_index("ix_server_ipv6_live", table_name="server")
    with op.batch_alter_table("server") as batch:
        batch.drop_column("ipv6")
