"""server addresses owned by the platform: one live server per IPv4 address

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Addresses learnt from DHCP before: a stale duplicate keeps only the newest holder's.
    op.execute(
        "UPDATE server SET ipv4 = NULL WHERE deleted_at IS NULL AND ipv4 IS NOT NULL AND id <"
        " (SELECT MAX(s.id) FROM server s WHERE s.deleted_at IS NULL AND s.ipv4 = server.ipv4)"
    )
    op.create_index(
        "ix_server_ipv4_live",
        "server",
        ["ipv4"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL AND ipv4 IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_server_ipv4_live", table_name="server")
