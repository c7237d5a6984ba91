"""API rate limits: a token bucket per tenant (or per admin token), as Hetzner Cloud does.

A bucket holds ``per_hour`` requests and refills one every ``3600 / per_hour`` seconds, so a
client may burst, then goes on at the steady rate. Buckets live in the API process's memory.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from containervps.errors import RateLimited

__all__ = ["Allowance", "RateLimiter"]


@dataclass(frozen=True)
class Allowance:
    limit: int
    remaining: int
    reset_at: float  # unix time when the bucket is full again


class RateLimiter:
    """Thread-safe token buckets keyed by caller."""

    def __init__(self, per_hour: int, *, clock: Callable[[], float] = time.time) -> None:
        self.per_hour = per_hour
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: str) -> Allowance:
        """Spend one request of ``key``'s bucket; RateLimited when it is empty."""
        rate = self.per_hour / 3600.0
        now = self.clock()
        with self._lock:
            tokens = self._refilled(key, now)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                retry_after = math.ceil((1.0 - tokens) / rate)
                raise RateLimited(
                    f"rate limit of {self.per_hour} requests per hour exceeded",
                    details={"limit": self.per_hour, "retry_after_seconds": retry_after},
                    resolution=f"retry in {retry_after} s",
                )
            tokens -= 1.0
            self._buckets[key] = (tokens, now)
        return self._allowance(tokens, now)

    def allowance(self, key: str) -> Allowance:
        """What ``key``'s bucket holds now, spending nothing (the headers of a refusal)."""
        now = self.clock()
        with self._lock:
            return self._allowance(self._refilled(key, now), now)

    def _refilled(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(self.per_hour), now))
        return min(float(self.per_hour), tokens + (now - at) * self.per_hour / 3600.0)

    def _allowance(self, tokens: float, now: float) -> Allowance:
        return Allowance(
            limit=self.per_hour,
            remaining=int(tokens),
            reset_at=now + (self.per_hour - tokens) * 3600.0 / self.per_hour,
        )
