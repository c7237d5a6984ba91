"""Files only root may read: the database (tokens' digests, actions, audit), its log, daemon and
API logs, backups. Modes are set when a path is made and repaired on every later use."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["private_dir", "private_file"]

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` (and missing parents) as a directory only its owner can enter."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    path.chmod(DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner can read, created empty if missing (an existing file
    keeps its content; a missing directory is made private, an existing one left as it is)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE))
    path.chmod(FILE_MODE)
    return path
