"""Fair sharing of the API process between tenants: caps on what each holds open, and threads
for guest streams apart from the pool that serves every other request.

Long polls hold no thread (they wait asynchronously). Execs and consoles block on LXD streams,
so they run on ``guest_threads``, a limiter of their own: even every tenant at its caps cannot
take a thread from anyio's default pool, which serves list/show and every other route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import anyio
import anyio.to_thread
from starlette.requests import HTTPConnection

from containervps.api.auth import rate_limit_key
from containervps.config import Settings
from containervps.services.tenancy.concurrency import (
    CONSOLES,
    EXECS,
    LONG_POLLS,
    ConcurrencyCaps,
)
from containervps.services.tenancy.tokens import Identity

__all__ = ["CONSOLES", "EXECS", "LONG_POLLS", "FairShare", "fair_share"]

T = TypeVar("T")


class FairShare:
    """Per-tenant caps on long polls, execs and consoles, and the guest-stream threads."""

    def __init__(self, settings: Settings) -> None:
        self.caps = ConcurrencyCaps(
            {
                LONG_POLLS: settings.api_max_concurrent_long_polls,
                EXECS: settings.api_max_concurrent_execs,
                CONSOLES: settings.api_max_concurrent_consoles,
            }
        )
        # An adapter until first use: it binds to the running event loop then.
        self.guest_threads = anyio.CapacityLimiter(settings.api_guest_threads)

    @contextmanager
    def hold(self, ident: Identity, *, limit: str) -> Iterator[None]:
        """One of the caller's ``limit`` slots for a ``with`` block; 429 naming the cap."""
        with self.caps.hold(rate_limit_key(ident), limit=limit):
            yield

    async def in_guest_thread(self, func: Callable[[], T]) -> T:
        """Run a blocking guest-stream call on the guest threads."""
        return await anyio.to_thread.run_sync(func, limiter=self.guest_threads)


def fair_share(conn: HTTPConnection) -> FairShare:
    """The app's FairShare (for websocket routes, which take no dependencies here)."""
    share: FairShare = conn.app.state.fair_share
    return share
