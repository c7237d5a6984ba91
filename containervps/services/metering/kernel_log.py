"""OOM kills as the kernel logs them (/dev/kmsg), for every server in one read.

The kernel's per-cgroup counters lose a kill when the cgroup goes: a server stopped by the
kill of its init, or (on cgroup v1, where a kill counts only in the victim's own cgroup) a
service or session cgroup systemd removed. The log names the cgroup at its limit and the victim
in either case. It is a ring buffer and the kernel rate-limits these lines (10 per 5 s
host-wide), so it is a lower bound too: the watch takes the larger of the two.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["KMSG", "KernelLog", "OomKill", "parse_record", "read_oom_kills"]

log = logging.getLogger(__name__)

KMSG = Path("/dev/kmsg")
INITS = frozenset({"init", "systemd"})  # a server's PID 1: busybox init, systemd
SUMMARY = re.compile(
    r"^oom-kill:.*,oom_memcg=(?P<memcg>[^,]*),task_memcg=(?P<task_memcg>[^,]*),"
    r"task=(?P<task>.*),pid=(?P<pid>\d+),uid=\d+$"
)


@dataclass(frozen=True)
class OomKill:
    seq: int  # the kernel log record's sequence number
    memcg: str  # the memory cgroup whose limit was hit, e.g. /lxc.payload.<project>_<name>
    task_memcg: str  # the victim's own cgroup, at or below ``memcg``
    task: str
    pid: int
    usec: int = 0  # when it was logged, in microseconds since the host booted

    @property
    def of_init(self) -> bool:
        """The victim was the server's init: what stops it."""
        return self.task in INITS and self.task_memcg in (self.memcg, f"{self.memcg}/init.scope")


@dataclass(frozen=True)
class KernelLog:
    kills: list[OomKill] = field(default_factory=list)
    last_seq: int = -1  # the newest record read; -1: the log could not be read

    def kills_of(self, memcg: str, *, after: int) -> list[OomKill]:
        """Kills at ``memcg``'s limit logged after record ``after``."""
        return [k for k in self.kills if k.memcg == memcg and k.seq > after]


def parse_record(record: bytes) -> OomKill | None:
    """The OOM kill a /dev/kmsg record ("prio,seq,usec,flags;message") reports, if any."""
    head, _, body = record.decode(errors="replace").partition(";")
    fields = head.split(",")
    match = SUMMARY.match(body.split("\n", 1)[0])
    if match is None or len(fields) < 2 or not fields[1].isdigit():
        return None
    return OomKill(
        seq=int(fields[1]),
        memcg=match["memcg"],
        task_memcg=match["task_memcg"],
        task=match["task"],
        pid=int(match["pid"]),
        usec=int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0,
    )


def _seq(record: bytes) -> int:
    fields = record.split(b";", 1)[0].split(b",")
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else -1


def read_oom_kills(path: Path = KMSG) -> KernelLog:
    """Every OOM kill still in the kernel's log (one read of the ring buffer, a few ms)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        log.warning("kernel log unreadable; OOM kills counted from cgroups only: %s", exc)
        return KernelLog()
    kills, last = [], -1
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BrokenPipeError:  # records overwritten while reading: go on with the next
                continue
            except BlockingIOError:  # read to the end
                break
            if not record:  # end of file
                break
            last = max(last, _seq(record))
            if (kill := parse_record(record)) is not None:
                kills.append(kill)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return KernelLog(kills=kills, last_seq=last)
