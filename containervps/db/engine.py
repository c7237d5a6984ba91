"""Engine and sessions: SQLite in WAL mode with a busy timeout and foreign keys on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, create_engine

from containervps.config import Settings
from containervps.errors import HostSetupError
from containervps.private_paths import private_dir, private_file


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Python's sqlite3 would otherwise BEGIN implicitly (DEFERRED); we issue BEGIN ourselves.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    # Deleted content is zeroed, not left in free space (secrets such as a password hash are
    # dropped from rows once used; scrub_wal then empties the log that held their old pages).
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def _begin(conn: Any) -> None:
    # "BEGIN IMMEDIATE" takes the write lock up front: used for quota/capacity admission.
    conn.exec_driver_sql(conn.get_execution_options().get("sqlite_begin", "BEGIN"))


def make_engine(url: str) -> Engine:
    """An engine; for SQLite the file's directory is created and pragmas are set per connection."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        private_dir(path.parent)
        # SQLite gives its -wal and -shm files the database file's mode: 0600 covers all three.
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if file == path or file.exists():
                private_file(file)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _begin)
        return engine
    return create_engine(url)


def scrub_wal(settings: Settings) -> bool:
    """Checkpoint the SQLite log into the database and truncate it, so that page versions
    holding deleted secrets are gone; False while readers still need the log (a later call
    retries)."""
    engine = get_engine(settings)
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as conn:
        busy, _, _ = conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
    return not busy


@lru_cache
def _engine_for(url: str) -> Engine:
    return make_engine(url)


def get_engine(settings: Settings) -> Engine:
    """The process-wide engine for these settings."""
    return _engine_for(settings.db_url)


@contextmanager
def session_scope(settings: Settings, *, immediate: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    ``immediate=True`` starts the transaction with BEGIN IMMEDIATE so that concurrent
    admission checks serialise instead of overshooting a quota.
    """
    engine = get_engine(settings)
    if immediate:
        engine = engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except OperationalError as exc:
            session.rollback()
            if "no such table" in str(exc):
                raise HostSetupError(
                    "the database schema is missing or old",
                    resolution="run `containervps db upgrade`",
                ) from exc
            raise
        except BaseException:
            session.rollback()
            raise
