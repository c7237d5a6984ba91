"""Online SQLite backup (sqlite3's backup API: consistent while writers keep going)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from containervps.config import Settings
from containervps.errors import InvalidInput
from containervps.private_paths import private_file

__all__ = ["backup_database"]


def backup_database(settings: Settings, destination: Path) -> int:
    """Copy the database to ``destination``; return its size in bytes."""
    url = settings.db_url
    if not url.startswith("sqlite:///"):
        raise InvalidInput("db backup supports SQLite databases only", details={"url": url})
    source_path = Path(url.removeprefix("sqlite:///"))
    if not source_path.exists():
        raise InvalidInput(
            f"no database at {source_path}", resolution="run `containervps db upgrade`"
        )
    if destination.resolve() == source_path.resolve():
        raise InvalidInput("the backup must not overwrite the live database")
    destination.parent.mkdir(parents=True, exist_ok=True)
    tmp = private_file(destination.with_name(destination.name + ".partial"))
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(tmp)
    try:
        source.backup(target, pages=1024)
    finally:
        target.close()
        source.close()
    tmp.replace(destination)  # never leave a half-written backup under the final name
    return destination.stat().st_size
