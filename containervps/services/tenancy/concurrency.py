"""Per-tenant caps on requests that stay open: long polls, execs and consoles.

The rate limiter counts requests; these caps count what one tenant holds open at once, so no
tenant can tie up the API process (its threads, its LXD streams) at the others' expense.
Counters live in the API process's memory, like the rate-limit buckets.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from containervps.errors import RateLimited

__all__ = ["CONSOLES", "EXECS", "LONG_POLLS", "ConcurrencyCaps"]

LONG_POLLS = "concurrent_long_polls"
EXECS = "concurrent_execs"
CONSOLES = "concurrent_consoles"
RETRY_AFTER_SECONDS = 1  # a hint: these slots free up as soon as one request ends

_NOUNS = {LONG_POLLS: "long polls", EXECS: "execs", CONSOLES: "consoles"}


class ConcurrencyCaps:
    """Thread-safe counters of open requests per (caller, limit); a cap of 0 means no cap."""

    def __init__(self, caps: Mapping[str, int]) -> None:
        self.caps = dict(caps)
        self._open: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str, *, limit: str) -> None:
        """Take one slot of ``limit`` for ``key``; RateLimited naming the cap when all are held."""
        cap = self.caps.get(limit, 0)
        with self._lock:
            held = self._open.get((key, limit), 0)
            if cap <= 0 or held < cap:
                self._open[(key, limit)] = held + 1
                return
        noun = _NOUNS.get(limit, limit)
        raise RateLimited(
            f"at most {cap} {noun} at once per tenant; {held} are open",
            details={"limit": limit, "max": cap, "retry_after_seconds": RETRY_AFTER_SECONDS},
            resolution=f"wait until one of your {noun} ends, then retry",
        )

    def release(self, key: str, *, limit: str) -> None:
        """Give back a slot taken by ``acquire``."""
        with self._lock:
            held = self._open.get((key, limit), 0) - 1
            if held > 0:
                self._open[(key, limit)] = held
            else:
                self._open.pop((key, limit), None)

    def held(self, key: str, *, limit: str) -> int:
        """How many slots of ``limit`` ``key`` holds now."""
        with self._lock:
            return self._open.get((key, limit), 0)

    @contextmanager
    def hold(self, key: str, *, limit: str) -> Iterator[None]:
        """One slot for the duration of a ``with`` block."""
        self.acquire(key, limit=limit)
        try:
            yield
        finally:
            self.release(key, limit=limit)
