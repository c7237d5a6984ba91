"""`containervps db ...`: schema migrations and online backups."""

from __future__ import annotations

from pathlib import Path

import typer

from containervps.cli import common
from containervps.db import migrate
from containervps.db.backup import backup_database

app = typer.Typer(help="Database schema and maintenance.", no_args_is_help=True)


@app.command("upgrade")
def upgrade(revision: str = typer.Argument("head")) -> None:
    """Apply Alembic migrations up to REVISION (default: head)."""
    s = common.settings()
    migrate.upgrade(s, revision=revision)
    common.console.print(f"database {s.db_url} at revision {migrate.current_revision(s)}")


@app.command("backup")
def backup(destination: Path = typer.Argument(..., help="File to write the copy to.")) -> None:
    """Copy the live SQLite database consistently (online backup API; the API may keep running)."""
    s = common.settings()
    size = backup_database(s, destination)
    common.console.print(f"backed up {s.db_url} to {destination} ({size} bytes)")
