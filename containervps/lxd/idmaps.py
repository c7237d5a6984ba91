"""Whether LXD gave a container an isolated idmap inside root's subordinate id range.

LXD 5.0.2's allocator (``findIdmap``) can hand out a base outside that range: while one
instance's row exists but its map is not allocated yet, another allocation reads that
instance's base as 0 and picks 65536 (fixed in Incus by "Skip instances without idmap
allocation yet"; not in LXD 5.0). Such a container is created fine and then never starts
("newuidmap: uid range [0-65536) -> [65536-131072) not allowed"), so a create checks the base
and makes the container again.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["MAP_SIZE", "in_subuid_range", "root_range"]

MAP_SIZE = 65536  # LXD's isolated map: 65536 ids per container
SUBUID = Path("/etc/subuid")


def root_range(subuid: Path = SUBUID) -> tuple[int, int] | None:
    """(first id, count) of root's subordinate uid range, if any."""
    try:
        lines = subuid.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        user, _, rest = line.partition(":")
        start, _, count = rest.partition(":")
        if user == "root" and start.isdigit() and count.isdigit():
            return int(start), int(count)
    return None


def in_subuid_range(config: dict[str, str], *, subuid: Path = SUBUID) -> bool:
    """True unless the container's isolated map lies outside root's range (no map, or no
    range to compare with, count as fine: LXD then uses its defaults)."""
    base = config.get("volatile.idmap.base", "")
    bounds = root_range(subuid)
    if not base.isdigit() or bounds is None or config.get("security.idmap.isolated") != "true":
        return True
    start, count = bounds
    return start <= int(base) and int(base) + MAP_SIZE <= start + count
