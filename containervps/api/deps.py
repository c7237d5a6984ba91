"""FastAPI dependencies as ``Annotated`` aliases: settings, caller identity, LXD, worker."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from containervps.config import Settings, get_settings
from containervps.errors import Forbidden
from containervps.lxd import Lxd, connect
from containervps.services.actions.worker import ActionWorker
from containervps.services.tenancy.rate_limits import RateLimiter
from containervps.services.tenancy.tokens import Identity, authenticate

__all__ = [
    "AdminDep",
    "IdempotencyKeyDep",
    "IdentityDep",
    "LxdDep",
    "SettingsDep",
    "TenantDep",
    "WorkerDep",
]

SettingsDep = Annotated[Settings, Depends(get_settings)]


def _identity(
    request: Request, settings: SettingsDep, authorization: str | None = Header(default=None)
) -> Identity:
    scheme, _, token = (authorization or "").partition(" ")
    ident = authenticate(settings, token.strip() if scheme.lower() == "bearer" else None)
    request.state.actor = ident.actor
    request.state.tenant_id = ident.tenant_id
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    if limiter is not None:  # one bucket per tenant, like a cloud project; admins per token
        key = f"tenant:{ident.tenant_id}" if ident.tenant_id is not None else ident.actor
        request.state.rate_limit = limiter.take(key)
    return ident


IdentityDep = Annotated[Identity, Depends(_identity)]


def _tenant(ident: IdentityDep) -> Identity:
    if ident.tenant_id is None:
        raise Forbidden("this route needs a tenant token", resolution="admins use /v1/admin/...")
    return ident


def _admin(ident: IdentityDep) -> Identity:
    if not ident.is_admin:
        raise Forbidden("this route needs an admin token")
    return ident


TenantDep = Annotated[Identity, Depends(_tenant)]
AdminDep = Annotated[Identity, Depends(_admin)]


def _lxd(settings: SettingsDep) -> Lxd:
    return connect(settings)  # LxdUnavailable (503) at once when LXD is down


LxdDep = Annotated[Lxd, Depends(_lxd)]


def _worker(request: Request) -> ActionWorker:
    worker: ActionWorker = request.app.state.worker
    return worker


WorkerDep = Annotated[ActionWorker, Depends(_worker)]


def _idempotency_key(
    idempotency_key: str | None = Header(default=None, max_length=255),
) -> str | None:
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(_idempotency_key)]
