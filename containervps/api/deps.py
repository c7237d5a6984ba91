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


# Dependencies that do no I/O are async: FastAPI runs a sync one in its thread pool, and each
# such hop waits for a CPU on a loaded host (list p99 at 1000 servers, issue 9).
async def _settings() -> Settings:
    return get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


async def _identity(
    request: Request,
    authorization: str | None = Header(default=None),  # read in auth.py; declared for OpenAPI
) -> Identity:
    return await identify(request)  # the Authenticate middleware's answer, stored on the request


IdentityDep = Annotated[Identity, Depends(_identity)]


async def _tenant(ident: IdentityDep) -> Identity:
    if ident.tenant_id is None:
        raise Forbidden("this route needs a tenant token", resolution="admins use /v1/admin/...")
    return ident


async def _admin(ident: IdentityDep) -> Identity:
    if not ident.is_admin:
        raise Forbidden("this route needs an admin token")
    return ident


TenantDep = Annotated[Identity, Depends(_tenant)]
AdminDep = Annotated[Identity, Depends(_admin)]


def _lxd(settings: SettingsDep) -> Lxd:
    return connect(settings)  # LxdUnavailable (503) at once when LXD is down


LxdDep = Annotated[Lxd, Depends(_lxd)]


async def _worker(request: Request) -> ActionWorker:
    worker: ActionWorker = request.app.state.worker
    return worker


WorkerDep = Annotated[ActionWorker, Depends(_worker)]


async def _fair_share(request: Request) -> FairShare:
    share: FairShare = request.app.state.fair_share
    return share


FairShareDep = Annotated[FairShare, Depends(_fair_share)]


async def _idempotency_key(
    idempotency_key: str | None = Header(default=None, max_length=255),
) -> str | None:
    return idempotency_key


IdempotencyKeyDep = Annotated[str | None, Depends(_idempotency_key)]
