"""idempotency keys stored as digests: the raw key unseals a replayed create's root password

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The same digest services/actions/replay.py computes; a repeated key still matches.
    conn = op.get_bind()
    for row_id, key in conn.execute(sa.text("SELECT id, key FROM idempotency_key")).all():
        digest = hashlib.sha256(key.encode()).hexdigest()
        conn.execute(
            sa.text("UPDATE idempotency_key SET key = :d WHERE id = :i"), {"d": digest, "i": row_id}
        )


def downgrade() -> None:
    # Digests cannot be turned back into keys: earlier keys simply stop replaying.
    pass
