"""Idempotency-Key handling shared by every server request, and the Accepted answer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from containervps.db.models import Action, IdempotencyKey, Server
from containervps.errors import Conflict
from containervps.services.actions import this_runner

__all__ = ["Accepted", "accept", "replay", "request_hash"]


@dataclass(frozen=True)
class Accepted:
    """A request written as intent: the server and its running action."""

    server: Server
    action: Action
    replayed: bool = False  # True when an Idempotency-Key repeated an earlier request
    root_password: str | None = None  # generated when no SSH keys were given; shown once


def request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def replay(
    session: Session, *, tenant_id: int, key: str | None, request_hash: str
) -> Accepted | None:
    if not key:
        return None
    row = session.exec(
        select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == key
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise Conflict(
            "this Idempotency-Key was used for a different request",
            details={"idempotency_key": key},
            resolution="use a new key for a new request",
        )
    server = session.get(Server, row.response["server_id"])
    action = session.get(Action, row.response["action_id"])
    assert server is not None and action is not None
    return Accepted(server, action, replayed=True)


def _remember(
    session: Session, *, tenant_id: int, key: str | None, request_hash: str, accepted: Accepted
) -> None:
    if key:
        session.add(
            IdempotencyKey(
                tenant_id=tenant_id,
                key=key,
                request_hash=request_hash,
                status_code=202,
                response={"server_id": accepted.server.id, "action_id": accepted.action.id},
            )
        )


def accept(
    session: Session,
    server: Server,
    command: str,
    *,
    request_id: str | None,
    key: str | None,
    request_hash: str,
    params: dict[str, Any] | None = None,
    root_password: str | None = None,
) -> Accepted:
    """Write the running action on ``server`` and remember its Idempotency-Key (if any)."""
    action = Action(
        tenant_id=server.tenant_id,
        server_id=server.id,
        command=command,
        request_id=request_id,
        runner=this_runner(),
        params=params or {},
    )
    session.add(action)
    session.flush()
    accepted = Accepted(server, action, root_password=root_password)
    _remember(
        session,
        tenant_id=server.tenant_id,
        key=key,
        request_hash=request_hash,
        accepted=accepted,
    )
    return accepted
