"""`containervps db ...`: schema migrations."""

from __future__ import annotations

import typer

from containervps.cli import common
from containervps.db import migrate

app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply Alembic migrations up to REVISION (default: head)."""
    s = common.settings()
    migrate.upgrade(s, revision=revision)
    common.console.print(f"database {s.db_url} at revision {migrate.current_revision(s)}")
