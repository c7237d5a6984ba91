"""image catalogue

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image",
        sa.Column("name", sa.String(length=63), primary_key=True),
        sa.Column("os", sa.String(), nullable=False),
        sa.Column("release", sa.String(), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("build_seconds", sa.Float(), nullable=False),
        sa.Column("built_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_image_fingerprint", "image", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_image_fingerprint", table_name="image")
    op.drop_table("image")
