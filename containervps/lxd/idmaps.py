"""Whether LXD gave a container a sane isolated idmap, and which one to give it back.

LXD 5.0.2's allocator (``findIdmap``) can hand out a base outside root's subordinate id range:
while one instance's row exists but its map is not allocated yet, another allocation reads that
instance's base as 0 and picks 65536 (fixed in Incus by "Skip instances without idmap
allocation yet"; not in LXD 5.0). Such a container is created fine and then never starts
("newuidmap: uid range [0-65536) -> [65536-131072) not allowed"), so a create checks the base
and makes the container again.

Restores hit the same allocator by another way: LXD runs ``findIdmap`` for every *snapshot* it
creates (``lxcCreate`` does not skip snapshots, and the snapshot's name is not its instance's,
so the instance's own range counts as taken), stores that map in the snapshot's
``volatile.idmap.*`` keys, and a restore copies the snapshot's config, those keys included,
onto the instance. The next start then shifts the whole root filesystem to a map that was free
when the snapshot was taken but was never reserved: another container may hold it by now (two
tenants sharing host ids), or it is 65536 when the snapshot raced a create. ``wanted_base``
picks the map a restored instance must get back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "BASE_KEY",
    "ISOLATED",
    "MAP_SIZE",
    "NEXT_KEY",
    "base_of",
    "free_base",
    "idmap_json",
    "in_subuid_range",
    "root_range",
    "wanted_base",
]

MAP_SIZE = 65536  # LXD's isolated map: 65536 ids per container
SUBUID = Path("/etc/subuid")
BASE_KEY = "volatile.idmap.base"
NEXT_KEY = "volatile.idmap.next"
ISOLATED = "security.idmap.isolated"


def root_range(subuid: Path = SUBUID) -> tuple[int, int] | None:
    """Root's subordinate uid range (start, count), or None."""
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


def base_of(config: dict[str, str]) -> int | None:
    """The instance's ``volatile.idmap.base`` (None when unset or not a number)."""
    base = config.get(BASE_KEY, "")
    return int(base) if base.isdigit() else None


def _fits(base: int, bounds: tuple[int, int]) -> bool:
    start, count = bounds
    # LXD keeps the first MAP_SIZE ids of its range for non-isolated containers.
    return start + MAP_SIZE <= base and base + MAP_SIZE <= start + count


def in_subuid_range(config: dict[str, str], *, subuid: Path = SUBUID) -> bool:
    """True unless the container's isolated map lies outside root's range (no map, or no
    range to compare with, count as fine: LXD then uses its defaults)."""
    base = base_of(config)
    bounds = root_range(subuid)
    if base is None or bounds is None or config.get(ISOLATED) != "true":
        return True
    start, count = bounds
    return start <= base and base + MAP_SIZE <= start + count


def _overlaps(base: int, others: Iterable[int]) -> bool:
    return any(abs(base - other) < MAP_SIZE for other in others if other)


def free_base(others: Iterable[int], bounds: tuple[int, int]) -> int | None:
    """The lowest base in root's range whose map overlaps none of ``others`` (None: full)."""
    taken = sorted(b for b in others if b)
    start, count = bounds
    base = start + MAP_SIZE
    for other in taken:
        if base + MAP_SIZE <= other:
            break
        base = max(base, other + MAP_SIZE)
    return base if base + MAP_SIZE <= start + count else None


def wanted_base(own: int | None, others: Iterable[int], bounds: tuple[int, int]) -> int | None:
    """The base an instance should have: its own when that is in range and shared with no
    other instance, else the lowest free one (None: no room)."""
    others = list(others)
    if own is not None and _fits(own, bounds) and not _overlaps(own, others):
        return own
    return free_base(others, bounds)


def idmap_json(base: int) -> str:
    """``volatile.idmap.next`` for an isolated map at ``base``, as LXD writes it."""
    entries = [
        {"Isuid": True, "Isgid": False, "Hostid": base, "Nsid": 0, "Maprange": MAP_SIZE},
        {"Isuid": False, "Isgid": True, "Hostid": base, "Nsid": 0, "Maprange": MAP_SIZE},
    ]
    return json.dumps(entries, separators=(",", ":"))
