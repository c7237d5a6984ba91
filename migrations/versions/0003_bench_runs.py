"""bench runs: one row per density benchmark run

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bench_run",
        sa.Column("id", sa.String(length=63), primary_key=True),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("workload", sa.String(), nullable=False),
        sa.Column("kinds", sa.String(), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("report_dir", sa.String(), nullable=False),
        sa.Column("error", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_bench_run_status", "bench_run", ["status"])
    op.create_index("ix_bench_run_started_at", "bench_run", ["started_at"])


def downgrade() -> None:
    op.drop_index("ix_bench_run_started_at", table_name="bench_run")
    op.drop_index("ix_bench_run_status", table_name="bench_run")
    op.drop_table("bench_run")
