"""Running Alembic migrations from code (`containervps db upgrade`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from containervps.config import Settings

# Installed from a wheel, the scripts ship inside the package; in a checkout (editable install)
# they sit at the top of the repository.
_PACKAGED = Path(__file__).resolve().parents[1] / "migrations"
MIGRATIONS_DIR = (
    _PACKAGED if _PACKAGED.is_dir() else Path(__file__).resolve().parents[2] / "migrations"
)


def alembic_config(settings: Settings) -> Config:
    """Alembic configuration pointing at migrations/ and the configured database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", settings.db_url)
    return cfg


def upgrade(settings: Settings, *, revision: str = "head") -> None:
    """Bring the database schema up to ``revision``."""
    command.upgrade(alembic_config(settings), revision)


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    from containervps.db.engine import get_engine

    with get_engine(settings).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
