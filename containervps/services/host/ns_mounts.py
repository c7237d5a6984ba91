"""Replace bind mounts inside other mount namespaces (a running container's) without a reboot.

For each namespace: clone the host's mount of a file with ``open_tree(OPEN_TREE_CLONE)`` while in
the host's namespace, ``setns`` into the container's, detach the dead mount
(``umount2(MNT_DETACH)``) and attach the clone in its place with ``move_mount``; then back.
``setns`` into a mount namespace needs a single-threaded process, so this runs as its own
interpreter (``python -m containervps.services.host.ns_mounts``), reading a JSON plan on stdin
and writing one JSON result per line. Only ``os``, ``ctypes`` and ``json`` are imported: the
child starts in tens of milliseconds.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from typing import Any

# x86_64 syscall numbers (the mount API of Linux 5.2); other architectures are not supported.
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
AT_FDCWD = -100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MNT_DETACH = 2
CLONE_NEWNS = 0x00020000

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return ret


def clone_mount(path: str) -> int:
    """A detached copy of the mount at ``path`` (an fd), not attached anywhere yet."""
    flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC
    return _check(
        _libc.syscall(SYS_OPEN_TREE, AT_FDCWD, path.encode(), ctypes.c_uint(flags)),
        f"open_tree {path}",
    )


def attach_mount(fd: int, target: str) -> None:
    """Attach the detached mount ``fd`` at ``target`` in the current mount namespace."""
    _check(
        _libc.syscall(
            SYS_MOVE_MOUNT,
            fd,
            b"",
            AT_FDCWD,
            target.encode(),
            ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH),
        ),
        f"move_mount {target}",
    )


def detach(target: str) -> None:
    """Lazily unmount ``target`` (a dead FUSE mount cannot be unmounted any other way)."""
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def enter_mount_ns(fd: int) -> None:
    _check(_libc.setns(fd, CLONE_NEWNS), "setns")


def _replace_in(pid: int, mounts: list[dict[str, str]], *, host_ns: int) -> dict[str, Any]:
    """Replace ``mounts`` ({source on the host, target in the namespace}) in pid's namespace."""
    done: list[str] = []
    clones: list[tuple[int, str]] = []
    try:
        for m in mounts:
            clones.append((clone_mount(m["source"]), m["target"]))
        ns = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        try:
            enter_mount_ns(ns)
        finally:
            os.close(ns)
        try:
            for fd, target in clones:
                detach(target)
                attach_mount(fd, target)
                done.append(target)
        finally:
            enter_mount_ns(host_ns)
    except OSError as exc:
        return {"pid": pid, "replaced": done, "error": str(exc)}
    finally:
        for fd, _ in clones:
            os.close(fd)
    return {"pid": pid, "replaced": done, "error": None}


def main() -> int:
    """Read [{"pid": N, "mounts": [{"source": ..., "target": ...}]}] on stdin; one result a line."""
    plan = json.load(sys.stdin)
    host_ns = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    for item in plan:
        result = _replace_in(int(item["pid"]), item["mounts"], host_ns=host_ns)
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
