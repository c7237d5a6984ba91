"""Actions: long work recorded before it runs, its progress, its outcome, and waiting on it."""

from __future__ import annotations

import logging
import os
import time
from functools import partial
from typing import Any

import anyio
import anyio.to_thread
from sqlmodel import Session, col, select

from containervps.config import Settings
from containervps.db.engine import scrub_wal, session_scope
from containervps.db.models import Action, Server, utcnow
from containervps.errors import NotFound
from containervps.services.actions.commands import PASSWORD_HASH, ActionStatus

log = logging.getLogger(__name__)

__all__ = [
    "finish",
    "get_action",
    "list_actions",
    "merge_params",
    "runner_alive",
    "set_progress",
    "this_runner",
    "wait_action",
]


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            # Field 22 (start time in clock ticks) follows the parenthesised command name.
            return fh.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_runner() -> str:
    """This process as a runner id: pid and start time (a reused pid does not match)."""
    pid = os.getpid()
    return f"{pid}:{_start_time(pid)}"


def runner_alive(runner: str | None) -> bool:
    """Whether the process that claimed an action is still running."""
    if not runner or ":" not in runner:
        return False
    pid, started = runner.split(":", 1)
    return pid.isdigit() and _start_time(int(pid)) == started


def _scoped(session: Session, action_id: int, tenant_id: int | None) -> Action:
    action = session.get(Action, action_id)
    if action is None or (tenant_id is not None and action.tenant_id != tenant_id):
        raise NotFound(f"action {action_id} not found")
    return action


def get_action(settings: Settings, *, action_id: int, tenant_id: int | None) -> Action:
    """One action; another tenant's id is NotFound (``tenant_id`` None: admin)."""
    with session_scope(settings) as session:
        return _scoped(session, action_id, tenant_id)


def list_actions(
    settings: Settings, *, tenant_id: int | None, server_id: int | None = None, limit: int = 100
) -> list[Action]:
    """Newest actions first, of a tenant and optionally one server."""
    with session_scope(settings) as session:
        query = select(Action).order_by(col(Action.id).desc()).limit(limit)
        if tenant_id is not None:
            query = query.where(Action.tenant_id == tenant_id)
        if server_id is not None:
            query = query.where(Action.server_id == server_id)
        return list(session.exec(query).all())


POLL_SECONDS = 0.25


async def wait_action(
    settings: Settings, *, action_id: int, tenant_id: int | None, timeout: float
) -> Action:
    """Wait until the action is no longer running or ``timeout`` seconds passed."""
    # Asynchronous, so a waiter holds no thread: only each poll's short read takes one. Any
    # process may finish the action, so it is polled, not signalled.
    deadline = time.monotonic() + max(0.0, timeout)
    read = partial(get_action, settings, action_id=action_id, tenant_id=tenant_id)
    while True:
        action = await anyio.to_thread.run_sync(read)
        remaining = deadline - time.monotonic()
        if action.status != ActionStatus.RUNNING or remaining <= 0:
            return action
        await anyio.sleep(min(remaining, POLL_SECONDS))


def set_progress(settings: Settings, action_id: int, progress: int) -> None:
    """Record how far a running action got (0-100)."""
    with session_scope(settings, immediate=True) as session:
        action = session.get(Action, action_id)
        if action is not None and action.status == ActionStatus.RUNNING:
            action.progress = progress
            session.add(action)


def merge_params(settings: Settings, action_id: int, values: dict[str, Any]) -> None:
    """Remember facts a resumed run needs (e.g. the power state before the action)."""
    with session_scope(settings, immediate=True) as session:
        action = session.get(Action, action_id)
        if action is not None:
            action.params = {**action.params, **values}
            session.add(action)


def finish(
    settings: Settings,
    action_id: int,
    *,
    error: tuple[str, str] | None = None,
    server_update: dict[str, Any] | None = None,
) -> Action:
    """Close an action (success, or error (code, message)) and update its server in one go."""
    with session_scope(settings, immediate=True) as session:
        action = session.get(Action, action_id)
        if action is None:
            raise NotFound(f"action {action_id} not found")
        action.finished = utcnow()
        had_secret = PASSWORD_HASH in action.params  # kept only while the action needs it
        if had_secret:
            action.params = {k: v for k, v in action.params.items() if k != PASSWORD_HASH}
        if error is None:
            action.status, action.progress = ActionStatus.SUCCESS, 100
        else:
            action.status = ActionStatus.ERROR
            action.error_code, action.error_message = error
        session.add(action)
        if server_update and action.server_id is not None:
            server = session.get(Server, action.server_id)
            if server is not None:
                for key, value in server_update.items():
                    setattr(server, key, value)
                session.add(server)
    if had_secret and not scrub_wal(settings):
        log.info("database log in use; the reconciler loop empties it", extra={"action": action_id})
    return action
