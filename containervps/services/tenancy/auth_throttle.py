"""Failed-authentication throttle: too many wrong tokens from one address, then 429 for a while.

A sliding window per client address: after ``max_failures`` wrong tokens within
``window_seconds``, that address is refused without its token being looked at until the
oldest of those failures leaves the window. Successful authentications neither count nor reset
the window (a valid token must not let a guesser go on). State lives in the API process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from containervps.errors import RateLimited

__all__ = ["FailedAuthThrottle"]

MAX_ADDRESSES = 65_536  # bounds memory when failures come from very many addresses


class FailedAuthThrottle:
    """Thread-safe sliding windows of failed authentications keyed by client address."""

    def __init__(
        self,
        *,
        max_failures: int,
        window_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, address: str) -> None:
        """RateLimited when ``address`` used up its failures in the current window."""
        now = self.clock()
        with self._lock:
            failures = self._recent(address, now)
            if failures is None or len(failures) < self.max_failures:
                return
            retry_after = max(1, math.ceil(failures[0] + self.window_seconds - now))
        raise RateLimited(
            f"too many failed authentications from this address: at most {self.max_failures} "
            f"in {self.window_seconds:g} s",
            details={
                "limit": "failed_authentications",
                "max": self.max_failures,
                "window_seconds": self.window_seconds,
                "retry_after_seconds": retry_after,
            },
            resolution=f"check the token, then retry in {retry_after} s",
        )

    def record_failure(self, address: str) -> None:
        """Count one wrong token from ``address``."""
        now = self.clock()
        with self._lock:
            failures = self._recent(address, now)
            if failures is None:
                if len(self._failures) >= MAX_ADDRESSES:
                    self._prune(now)
                failures = self._failures[address] = deque(maxlen=self.max_failures)
            failures.append(now)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def _prune(self, now: float) -> None:
        for address in list(self._failures):
            self._recent(address, now)
        while len(self._failures) >= MAX_ADDRESSES:  # still full: forget the oldest addresses
            del self._failures[next(iter(self._failures))]
