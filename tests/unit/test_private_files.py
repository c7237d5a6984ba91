"""The database, its log, backups and daemon logs are readable by their owner only, also when an
earlier version left them world-readable."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

from containervps.config import Settings
from containervps.db import migrate
from containervps.db.backup import backup_database
from containervps.db.engine import make_engine
from containervps.shell import spawn


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_are_private_and_repaired(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    migrate.upgrade(settings)
    db = data / "containervps.db"
    assert (_mode(data), _mode(db)) == (0o700, 0o600)

    holder = sqlite3.connect(db)  # keeps the -wal and -shm files in place
    holder.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {f.name for f in data.iterdir()} == {db.name, f"{db.name}-wal", f"{db.name}-shm"}
    data.chmod(0o755)
    for f in data.iterdir():
        f.chmod(0o644)
    make_engine(f"sqlite:///{db}")  # what every process start does
    assert _mode(data) == 0o700
    assert {_mode(f) for f in data.iterdir()} == {0o600}
    holder.close()

    copy = tmp_path / "backups" / "copy.db"
    backup_database(settings, copy)
    assert _mode(copy) == 0o600


def test_daemon_logs_are_private(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "daemon.log"
    log.parent.mkdir(mode=0o755)
    log.write_text("earlier\n")
    log.chmod(0o644)
    spawn(["echo", "hello"], log_file=log).wait()
    assert (_mode(log.parent), _mode(log)) == (0o700, 0o600)
    assert log.read_text() == "earlier\nhello\n"
