"""server member: the LXD cluster member a server was placed on (NULL on a single host)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("server") as batch:
        batch.add_column(sa.Column("member", sa.String(length=63), nullable=True))
        batch.create_index("ix_server_member", ["member"])


def downgrade() -> None:
    with op.batch_alter_table("server") as batch:
        batch.drop_index("ix_server_member")
        batch.drop_column("member")
