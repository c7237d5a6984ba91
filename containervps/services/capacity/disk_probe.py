"""The host disk's own IOPS, measured once by a bounded probe and stored in the data dir.

The probe does 4 KiB random direct I/O at queue depth 1 on a scratch file beside the storage
pool's backing file (the disk every server's I/O ends on), for a few seconds each way. That is
the rate one stream gets, a conservative figure for what the disk sustains.
"""

from __future__ import annotations

import json
import mmap
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from containervps.config import Settings
from containervps.db.models import utcnow

__all__ = ["DiskIops", "measure", "stored"]

BLOCK = 4096
FILE_BYTES = 256 * 2**20
CACHE_FILE = "disk-iops.json"


@dataclass(frozen=True)
class DiskIops:
    read: int
    write: int
    path: str  # the directory measured
    measured_at: str


def _rate(fd: int, buf: mmap.mmap, *, write: bool, seconds: float) -> int:
    blocks, done = FILE_BYTES // BLOCK, 0
    start = time.monotonic()
    deadline = start + seconds
    while time.monotonic() < deadline:
        offset = random.randrange(blocks) * BLOCK
        if write:
            os.pwrite(fd, buf, offset)
        else:
            os.preadv(fd, [buf], offset)
        done += 1
    return round(done / (time.monotonic() - start))


def measure(settings: Settings, *, directory: Path, seconds: float = 2.0) -> DiskIops:
    """Measure ``directory``'s disk (bounded: ``seconds`` per direction) and store the result."""
    directory.mkdir(parents=True, exist_ok=True)
    scratch = directory / f".containervps-iops-{os.getpid()}"
    fd = os.open(scratch, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o600)
    try:
        os.posix_fallocate(fd, 0, FILE_BYTES)
        buf = mmap.mmap(-1, BLOCK)  # page-aligned, as O_DIRECT needs
        buf.write(os.urandom(BLOCK))
        write = _rate(fd, buf, write=True, seconds=seconds)
        read = _rate(fd, buf, write=False, seconds=seconds)
    finally:
        os.close(fd)
        scratch.unlink(missing_ok=True)
    result = DiskIops(read=read, write=write, path=str(directory), measured_at=utcnow().isoformat())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / CACHE_FILE).write_text(json.dumps(asdict(result)))
    return result


def stored(settings: Settings) -> DiskIops | None:
    """The last measurement, or None when the disk was never measured."""
    try:
        data = json.loads((settings.data_dir / CACHE_FILE).read_text())
        return DiskIops(**data)
    except (OSError, ValueError, TypeError):
        return None
