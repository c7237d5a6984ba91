"""Host-wide serialisation of LXD instance creation.

LXD 5.0.2 allocates isolated idmaps (``security.idmap.isolated``) racily: concurrent creates on
this host got duplicate ``volatile.idmap.base`` values and bases outside root's subuid range,
whose start then fails with "newuidmap ... not allowed". Creating one instance at a time keeps
every map unique and valid; starts still run in parallel.
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["file_lock", "instance_create_lock"]

_in_process = threading.Lock()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing) against other processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def instance_create_lock(path: Path) -> Iterator[None]:
    """Hold the host-wide create lock (threads of this process, then other processes)."""
    with _in_process, file_lock(path):
        yield
