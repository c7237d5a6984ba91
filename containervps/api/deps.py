"""FastAPI dependencies as ``Annotated`` aliases: settings, caller identity, LXD, worker."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from containervps.api.auth import identify
from containervps.api.fair_share import FairShare
from containervps.config import Settings, get_settings
from containervps.errors import Forbidden
from containervps.lxd import Lxd, connect
from containervps.services.actions.worker import ActionWorker
from containervps.services.tenancy.tokens import Identity

__all__ = [
    "AdminDep",
    "FairShareDep",
    "IdempotencyKeyDep",
    "IdentityDep",
    "LxdDep",
    "SettingsDep",
    "TenantDep",
    "WorkerDep",
]

SettingsDep = Annotated[Settings, Depends(get_settings)]


async def _identity(
    request: Request,
    authorization: str | None = Header(default=None),  # read in auth.py; declared for OpenAPI
) -> Identity:
    return await identify(request)  # the Authenticate middleware's answer, stored on the request


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


async def _fair_share(request: Request) -> FairShare:
    share: FairShare = request.app.state.fair_share
    return share


FairShareDep = Annotated[FairShare, Depends(_fair_share)]


def _idempotency_key(
    idempotency_key: str | None = Header(default=None, max_length=255),
) -> str | None:
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(_idempotency_key)]
