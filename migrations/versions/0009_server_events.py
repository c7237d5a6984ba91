"""server events: what the platform saw or did to a server, for its tenant to read

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant_id", sa.Integer(), sa.ForeignKey("tenant.id"), nullable=False),
        sa.Column("server_id", sa.Integer(), sa.ForeignKey("server.id"), nullable=True),
        sa.Column("type", sa.String(length=63), nullable=False),
        sa.Column("severity", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_event_tenant_id", "event", ["tenant_id", "id"])
    op.create_index("ix_event_server_id", "event", ["server_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_event_server_id", table_name="event")
    op.drop_index("ix_event_tenant_id", table_name="event")
    op.drop_table("event")
