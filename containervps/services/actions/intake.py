"""The one intake of every action request: Idempotency-Key replay, the server lock, the
allowed states, then the action written as intent in the same transaction."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from containervps.config import Settings
from containervps.db.engine import session_scope
from containervps.db.models import Action, IdempotencyKey, Server
from containervps.errors import Conflict, Locked
from containervps.services.actions import replay
from containervps.services.actions.commands import ActionStatus, Command
from containervps.services.actions.store import this_runner
from containervps.services.servers.queries import live_server
from containervps.services.servers.states import TRANSITIONS, check_state

__all__ = ["Accepted", "ActionRequest", "Prepared", "ensure_idle", "replayed", "submit"]


@dataclass(frozen=True)
class Accepted:
    """A request written as intent: the server and its running action."""

    server: Server
    action: Action
    replayed: bool = False  # True when an Idempotency-Key repeated an earlier request
    root_password: str | None = None  # generated when no SSH keys were given; shown once


@dataclass(frozen=True)
class ActionRequest:
    """Who asks for what; ``payload`` is what makes two requests the same one."""

    command: Command
    tenant_id: int | None  # None: an admin, acting for the server's tenant
    payload: dict[str, Any]
    server_id: int | None = None  # None: the action makes a new server
    request_id: str | None = None
    idempotency_key: str | None = None

    @property
    def hash(self) -> str:
        return hashlib.sha256(json.dumps(self.payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Prepared:
    """What a command's own checks return: its server (a new one for create) and parameters."""

    server: Server | None = None
    params: dict[str, Any] = field(default_factory=dict)
    root_password: str | None = None


SEALED_PASSWORD = "sealed_root_password"

# (session, the live server or None for a create) -> what the action needs
Prepare = Callable[[Session, Server | None], Prepared]


def ensure_idle(session: Session, server_id: int) -> None:
    """Locked while another action runs on the server."""
    busy = session.exec(
        select(Action).where(Action.server_id == server_id, Action.status == ActionStatus.RUNNING)
    ).first()
    if busy is not None:
        raise Locked(
            f"server {server_id} is locked by running action {busy.id} ({busy.command})",
            details={"action_id": busy.id, "command": busy.command},
            resolution="wait for that action (GET /v1/actions/{id}) and retry",
        )


def _replay(session: Session, request: ActionRequest, tenant_id: int) -> Accepted | None:
    if not request.idempotency_key:
        return None
    key = request.idempotency_key
    row = session.exec(
        select(IdempotencyKey).where(
            IdempotencyKey.tenant_id == tenant_id, IdempotencyKey.key == replay.key_digest(key)
        )
    ).first()
    if row is None:
        return None
    if row.request_hash != request.hash:
        raise Conflict(
            "this Idempotency-Key was used for a different request",
            details={"idempotency_key": key},
            resolution="use a new key for a new request",
        )
    server = session.get(Server, row.response["server_id"])
    action = session.get(Action, row.response["action_id"])
    assert server is not None and action is not None
    sealed = row.response.get(SEALED_PASSWORD)
    password = replay.open_password(sealed, key=key, scope=request.hash) if sealed else None
    return Accepted(server, action, replayed=True, root_password=password)


def replayed(settings: Settings, request: ActionRequest) -> Accepted | None:
    """The earlier answer to a repeated Idempotency-Key, before costly preparation."""
    if not request.idempotency_key or request.tenant_id is None:
        return None
    with session_scope(settings) as session:
        return _replay(session, request, request.tenant_id)


def submit(settings: Settings, request: ActionRequest, prepare: Prepare) -> Accepted:
    """Admit ``request`` in one BEGIN IMMEDIATE transaction and write its running action.

    For an existing server: load it (another tenant's id is NotFound), replay a repeated
    Idempotency-Key, refuse while another action runs or when its state does not allow the
    command, run the command's own checks (``prepare``) and set the server's transitional state.
    """
    transition = TRANSITIONS[request.command]
    with session_scope(settings, immediate=True) as session:
        current = None
        if request.server_id is not None:
            current = live_server(session, server_id=request.server_id, tenant_id=request.tenant_id)
        owner = current.tenant_id if current is not None else request.tenant_id
        assert owner is not None
        earlier = _replay(session, request, owner)
        if earlier:
            return earlier
        if current is not None and current.id is not None:
            ensure_idle(session, current.id)
            check_state(current, transition.allowed)
        prepared = prepare(session, current)
        server = prepared.server or current
        assert server is not None
        if transition.during is not None:
            server.status = transition.during
        session.add(server)
        session.flush()
        return _accept(session, server, request, prepared)


def _accept(
    session: Session, server: Server, request: ActionRequest, prepared: Prepared
) -> Accepted:
    action = Action(
        tenant_id=server.tenant_id,
        server_id=server.id,
        command=request.command,
        request_id=request.request_id,
        runner=this_runner(),
        params=prepared.params,
    )
    session.add(action)
    session.flush()
    key = request.idempotency_key
    if key:
        response: dict[str, Any] = {"server_id": server.id, "action_id": action.id}
        if prepared.root_password:  # a repeat of this create shows the same password
            response[SEALED_PASSWORD] = replay.seal_password(
                prepared.root_password, key=key, scope=request.hash
            )
        session.add(
            IdempotencyKey(
                tenant_id=server.tenant_id,
                key=replay.key_digest(key),
                request_hash=request.hash,
                status_code=202,
                response=response,
            )
        )
    return Accepted(server, action, root_password=prepared.root_password)
