"""Runs actions' LXD work on a thread pool inside the API process."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from containervps.config import Settings
from containervps.db.models import Action
from containervps.services.actions.intake import Accepted
from containervps.services.actions.runner import run_action

log = logging.getLogger(__name__)

__all__ = ["ActionWorker"]


class ActionWorker:
    """A bounded pool; ``in_flight`` lets the reconciler skip actions this process runs."""

    def __init__(self, settings: Settings, *, workers: int) -> None:
        self.settings = settings
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cvps-action")
        self._lock = threading.Lock()
        self._in_flight: set[int] = set()

    def submit(self, action_id: int, *, resume: bool = False) -> Future[Action] | None:
        """Queue an action unless it is already queued or running here."""
        with self._lock:
            if action_id in self._in_flight:
                return None
            self._in_flight.add(action_id)
        return self._pool.submit(self._run, action_id, resume)

    def submit_in_order(self, action_ids: list[int]) -> Future[None]:
        """Run actions one after another on one thread (a drain's moves: one outage at a
        time, as its notice says, and one LXD migration at a time)."""
        with self._lock:
            self._in_flight.update(action_ids)
        return self._pool.submit(self._run_in_order, action_ids)

    def _run_in_order(self, action_ids: list[int]) -> None:
        try:
            for action_id in action_ids:
                try:
                    self._run(action_id, False)
                except Exception:  # one action's failure must not stop the rest
                    log.exception("action failed outside its runner", extra={"action": action_id})
        finally:
            with self._lock:
                self._in_flight.difference_update(action_ids)

    def start(self, accepted: Accepted) -> None:
        """Run a newly accepted request's action (a replayed Idempotency-Key runs nothing)."""
        if not accepted.replayed:
            self.submit(accepted.action.id or 0)

    def in_flight(self) -> set[int]:
        with self._lock:
            return set(self._in_flight)

    def _run(self, action_id: int, resume: bool) -> Action:
        try:
            return run_action(self.settings, action_id, resume=resume)
        finally:
            with self._lock:
                self._in_flight.discard(action_id)

    def shutdown(self, *, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
